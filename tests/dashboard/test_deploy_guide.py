"""docs/deploy.md is true: its unit files pass ``systemd-analyze verify``, their commands accept the
guide's own configuration files (``--check``), and its certificate recipe gives an agent TLS that a
strict client trusts. Paths under /etc, /var and /usr/local are moved into a temporary folder and the
guide's management address becomes 127.0.0.1; nothing else of the text is changed."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from deploy_guide_blocks import GUIDE, block, commands, guide_blocks, localize


def unit_lines(unit: str, key: str) -> list[list[str]]:
    return [shlex.split(line.split("=", 1)[1]) for line in unit.splitlines() if line.startswith(f"{key}=")]


def write_token(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    token = os.urandom(24).hex()
    path.write_text(token + "\n")
    path.chmod(0o600)
    return token


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_agent_unit_verifies_and_its_commands_accept_the_guides_host_toml(tmp_path: Path) -> None:
    host_toml = tmp_path / "etc" / "host.toml"
    host_toml.parent.mkdir()
    host_toml.write_text(localize(block("/etc/consolidator/host.toml", "toml").text, tmp_path))
    write_token(tmp_path / "etc" / "agent.token")
    unit = tmp_path / "consolidator-agent.service"
    unit.write_text(localize(block("/etc/systemd/system/consolidator-agent.service", "ini").text, tmp_path))
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing: scripts/setup.d/61-deploy-checks.sh installs it")
    verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stderr
    assert str(unit.name) not in verify.stderr, verify.stderr  # no warning about our unit

    argvs = unit_lines(unit.read_text(), "ExecStartPre") + unit_lines(unit.read_text(), "ExecStart")
    assert len(argvs) == 2
    for argv in argvs:
        check = argv if "--check" in argv else [*argv, "--check"]
        done = subprocess.run(check, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        resolved = json.loads(done.stdout)
        assert resolved["name"] == "pm0" and resolved["emulated"] is False
        assert resolved["tls_cert"] == f"{tmp_path}/etc/cert.pem" and resolved["token"] is None
        assert resolved["migration_peers"] == {"pm1": "10.1.0.11", "pm2": "10.1.0.12"}
        assert resolved["migration_ports"] == [49152, 49407]
    assert "KillMode=process" in unit.read_text()  # a restarted agent must find its VMs still running


@pytest.mark.slow
def test_tls_recipe_gives_the_agent_a_certificate_a_strict_client_trusts(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is missing: scripts/setup.d/61-deploy-checks.sh installs it")
    recipe = [b for b in guide_blocks() if b.lang == "sh" and "openssl req -x509" in b.text]
    assert len(recipe) == 1
    for argv in commands(localize(recipe[0].text, tmp_path)):
        assert argv[0] == "openssl"
        subprocess.run(argv, cwd=tmp_path, check=True, capture_output=True, timeout=60)
    etc = tmp_path / "etc"
    etc.mkdir()
    shutil.copy(tmp_path / "pm0.pem", etc / "cert.pem")  # "install pm0.pem/pm0.key on pm0 as cert.pem/key.pem"
    shutil.copy(tmp_path / "pm0.key", etc / "key.pem")
    token = write_token(etc / "agent.token")
    port = free_port()
    config = localize(block("/etc/consolidator/host.toml", "toml").text, tmp_path)
    config = re.sub(r"^port = \d+", f"port = {port}", config, flags=re.MULTILINE)
    (etc / "host.toml").write_text(config)

    log = tmp_path / "agent.log"
    with log.open("wb") as out:
        agent = subprocess.Popen([sys.executable, "-m", "consolidator.cli.main", "agent", "--config",
                                  str(etc / "host.toml")], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    strict = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    strict.verify_flags |= ssl.VERIFY_X509_STRICT
    url = f"https://127.0.0.1:{port}/v1/vms"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, verify=strict, timeout=5)
                break
            except httpx.ConnectError:
                assert agent.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the agent did not answer over TLS"
                time.sleep(0.3)
        assert answer.status_code == 200 and answer.json() == []
        assert httpx.get(url, verify=strict, timeout=5).status_code == 401
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)  # system CAs do not know it
    finally:
        os.kill(agent.pid, signal.SIGTERM)
        agent.wait(timeout=30)


def test_manager_unit_verifies_and_its_commands_accept_the_guides_cluster_toml(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "cluster.toml").write_text(localize(block("/etc/consolidator/cluster.toml", "toml").text, tmp_path))
    for name in ("manager.token", "pm0.token", "pm1.token", "bmc.pw"):
        write_token(etc / name)
    (etc / "ca.pem").write_text("not read by --check, which only checks that the file is there\n")
    unit = tmp_path / "consolidator-manager.service"
    unit.write_text(localize(block("/etc/systemd/system/consolidator-manager.service", "ini").text, tmp_path))
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing: scripts/setup.d/61-deploy-checks.sh installs it")
    verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0 and unit.name not in verify.stderr, verify.stderr

    argvs = unit_lines(unit.read_text(), "ExecStartPre") + unit_lines(unit.read_text(), "ExecStart")
    assert len(argvs) == 2
    for argv in argvs:
        check = argv if "--check" in argv else [*argv, "--check"]
        done = subprocess.run(check, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        resolved = json.loads(done.stdout)
        assert resolved["mode"] == "recommend" and sorted(resolved["hosts"]) == ["pm0", "pm1"]
        assert resolved["hosts"]["pm1"]["sleep"] == "off" and resolved["vms"]["db1"]["pin"] is True
        assert resolved["run_store"] == f"sqlite:///{tmp_path}/var/manager.sqlite"
    # a mistake in the same file: one line naming file and field, exit 2
    broken = (etc / "cluster.toml").read_text().replace('method = "postcopy"', 'method = "teleport"')
    (etc / "cluster.toml").write_text(broken)
    done = subprocess.run([*argvs[-1], "--check"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"error: {etc}/cluster.toml: migration.method") and done.stderr.count("\n") == 1


def test_the_metrics_the_guide_names_are_the_managers() -> None:
    from consolidator.manager.metrics import Metrics

    text = GUIDE.read_text()
    paragraph = text[text.index("Prometheus scrapes `/metrics`"):text.index("```yaml")]
    named = {n if n.startswith("consolidator") else f"consolidator{n}"
             for n in re.findall(r"`(consolidator_\w+|_\w+)[`{]", paragraph)}
    served: set[str] = set()
    for family in Metrics().registry.collect():
        served |= {family.name, f"{family.name}_total"} if family.type == "counter" else {family.name}
    assert len(named) >= 15 and named <= served, sorted(named - served)
    documented = {n.removesuffix("_total") for n in named}
    assert {f.name for f in Metrics().registry.collect()} <= documented  # and none is left out


def test_the_token_recipe_writes_private_tokens_long_enough(tmp_path: Path) -> None:
    recipe = [b for b in guide_blocks() if b.lang == "sh" and "token_hex" in b.text]
    assert len(recipe) == 1
    (tmp_path / "etc").mkdir()
    done = subprocess.run(["bash", "-euc", localize(recipe[0].text, tmp_path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    for name in ("agent.token", "manager.token"):
        path = tmp_path / "etc" / name
        assert path.stat().st_mode & 0o777 == 0o600
        assert re.fullmatch(r"[0-9a-f]{64}\n", path.read_text())
