"""The agent as a process (``consolidator agent --config``): TLS with a certificate, bearer auth over
the wire, and a clean exit 2 on a bad config. No VM is created, so no QEMU is needed."""

from __future__ import annotations

import asyncio
import datetime
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from consolidator.experiments.lab.agents import stop_agent
from consolidator.manager.client import AgentClient, AgentEndpoint, AgentError

TOKEN = "process-test-token-0123456789"


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address(
                "127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_agent_serves_tls_and_refuses_wrong_tokens(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    port = _free_port()
    (tmp_path / "token").write_text(TOKEN + "\n")
    config = tmp_path / "host.toml"
    config.write_text(f'name = "pm7"\nlisten_host = "127.0.0.1"\nport = {port}\ntoken_file = "{tmp_path}/token"\n'
                      f'tls_cert = "{cert}"\ntls_key = "{key}"\nemulated = true\nstate_dir = "{tmp_path}/state"\n')
    proc = subprocess.Popen([sys.executable, "-m", "consolidator.cli.main", "agent", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    async def main() -> None:
        good = AgentClient(AgentEndpoint("pm7", f"https://127.0.0.1:{port}", TOKEN, ca_file=str(cert)))
        wrong = AgentClient(AgentEndpoint("pm7", f"https://127.0.0.1:{port}", "x" * 30, ca_file=str(cert)))
        untrusted = AgentClient(AgentEndpoint("pm7", f"https://127.0.0.1:{port}", TOKEN))
        plain = AgentClient(AgentEndpoint("pm7", f"http://127.0.0.1:{port}", TOKEN))
        for _ in range(100):
            try:
                stats = await good.host_stats()
                break
            except AgentError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("agent did not answer over TLS")
        assert stats.host == "pm7" and stats.emulated
        with pytest.raises(AgentError) as refused:
            await wrong.suspend()
        assert refused.value.status == 401
        assert (await good.host_stats()).power_state.value == "on"  # nothing changed
        with pytest.raises(AgentError) as unverified:
            await untrusted.host_stats()
        assert unverified.value.status is None  # the certificate is not trusted by default
        with pytest.raises(AgentError):
            await plain.host_stats()  # no plain HTTP on a TLS port
        for client in (good, wrong, untrusted, plain):
            await client.close()

    try:
        asyncio.run(main())
    finally:
        stop_agent(proc.pid)
        proc.wait(timeout=10)


def test_agent_with_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "host.toml"
    config.write_text('name = "pm7"\ntoken = "0123456789abcdef0"\ntls_cert = "/nowhere.pem"\n')
    done = subprocess.run([sys.executable, "-m", "consolidator.cli.main", "agent", "--config", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {config}: set both 'tls_cert' and 'tls_key', or neither"


def test_agent_check_prints_the_resolved_config_and_hides_the_token(tmp_path: Path) -> None:
    config = tmp_path / "host.toml"
    config.write_text('name = "pm7"\ntoken = "0123456789abcdef0"\nport = 8799\n[driver]\naccel = "tcg"\n')
    argv = [sys.executable, "-m", "consolidator.cli.main", "agent", "--config", str(config), "--check"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    resolved = json.loads(done.stdout)
    assert resolved["name"] == "pm7" and resolved["port"] == 8799 and resolved["driver"] == {"accel": "tcg"}
    assert resolved["power"]["idle_watts"] == 53.0 and resolved["token"] == "(set)"
    assert "0123456789abcdef0" not in done.stdout
    config.write_text('name = "pm7"\ntoken_file = "/nonexistent/token"\n')
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == (f"error: {config}: token_file: cannot read token file /nonexistent/token: "
                                  "No such file or directory")
