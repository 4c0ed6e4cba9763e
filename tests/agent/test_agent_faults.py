"""Failures found by attacking the agent (issue 11), each kept fixed: non-finite numbers, huge bodies,
concurrent lifecycles of one name, destinations outside the configuration, bad config files, events
that must survive a restart, and a postcopy half that must not be destroyed. Over the driver double."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from agent_doubles import TOKEN, RecordingHypervisor, make_agent
from fastapi.testclient import TestClient

from consolidator.agent.api.app import create_app
from consolidator.agent.api.config import check_tls_files, load_config
from consolidator.agent.hypervisor import VmInfo
from consolidator.agent.serve import build_driver
from consolidator.domain.errors import UserError
from consolidator.protocol.guards import MAX_BODY_BYTES
from consolidator.protocol.schemas import VmConfig, VmRunState

VM = {"name": "vm0", "mem_mib": 256, "cpu_quota": 0.25, "load": 0.5, "dirty_mib_s": 10}
MIGRATE = {"dst_uri": "tcp:10.77.0.12:49152", "dst_host": "pm2", "method": "postcopy"}
NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e309"]


@pytest.mark.parametrize("number", NON_FINITE)
@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/vms", VM, "cpu_quota"), ("/v1/vms", VM, "load"), ("/v1/vms", VM, "dirty_mib_s"),
    ("/v1/vms", VM, "mem_mib"), ("/v1/vms/vm0/incoming", VM, "cpu_quota"),
    ("/v1/vms/vm0/migrate", MIGRATE, "timeout_s"), ("/v1/vms/vm0/migrate", MIGRATE, "downtime_limit_s"),
    ("/v1/vms/vm0/migrate", MIGRATE, "max_bandwidth_bytes_per_s"),
])
def test_non_finite_numbers_are_422_not_500(client: TestClient, driver: RecordingHypervisor, number: str,
                                            path: str, body: dict[str, object], field: str) -> None:
    import json

    text = json.dumps({**body, field: "@"}).replace('"@"', number)
    response = client.post(path, content=text, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][-1] == field
    assert "input" not in response.text and number not in response.text  # the input is never echoed
    assert driver.mutating_calls() == []


@pytest.mark.parametrize("number", ["nan", "inf", "-inf", "1e309"])
def test_non_finite_query_numbers_are_422(client: TestClient, number: str) -> None:
    response = client.get("/v1/events", params={"timeout_s": number})
    assert response.status_code == 422, response.text


def test_put_load_with_nan_is_422(client: TestClient, driver: RecordingHypervisor) -> None:
    client.post("/v1/vms", json=VM)
    response = client.put("/v1/vms/vm0/load", content=b'{"load": NaN, "dirty_mib_s": 1}',
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert "set_load" not in driver.mutating_calls()


def test_a_body_over_the_cap_is_413_by_length_or_by_stream(client: TestClient, anon: TestClient,
                                                           driver: RecordingHypervisor) -> None:
    big = b'{"name": "' + b"a" * (MAX_BODY_BYTES + 10) + b'"}'
    response = client.post("/v1/vms", content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and len(response.content) < 200

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"name": "'
        for _ in range(20):
            yield b"a" * 65536
        yield b'"}'

    response = client.post("/v1/vms", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    assert anon.post("/v1/vms", content=big).status_code == 413  # cut off before anything else
    assert client.post("/v1/vms", json=VM).status_code == 201  # a normal body still works
    assert driver.mutating_calls() == ["create_vm"]


class _SlowStart(RecordingHypervisor):
    """Creating a VM takes a while (QEMU booting), so concurrent requests overlap."""

    async def create_vm(self, config: VmConfig) -> VmInfo:
        await asyncio.sleep(0.2)
        return await super().create_vm(config)

    async def prepare_incoming(self, config: VmConfig, listen_host: str) -> str:
        await asyncio.sleep(0.2)
        return await super().prepare_incoming(config, listen_host)


def test_concurrent_creates_of_one_name_start_one_vm(tmp_path: Path) -> None:
    driver = _SlowStart()
    app = create_app(make_agent(tmp_path, driver), TOKEN, adopt=False)

    async def main() -> list[int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent",
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            calls = [http.post("/v1/vms", json=VM) for _ in range(8)]
            calls += [http.post("/v1/vms/vm0/incoming", json=VM) for _ in range(4)]
            calls.append(http.delete("/v1/vms/vm0"))
            answers = await asyncio.gather(*calls)
            listed = (await http.get("/v1/vms")).json()
        assert [v["name"] for v in listed] == ["vm0"]
        return sorted(a.status_code for a in answers)

    codes = asyncio.run(main())
    assert codes.count(201) == 1 and all(c in (201, 404, 409) for c in codes), codes
    assert [n for n in driver.mutating_calls() if n in ("create_vm", "prepare_incoming")] == ["create_vm"]


@pytest.mark.parametrize(("body", "why"), [
    ({**MIGRATE, "dst_host": "evil"}, "not a migration peer"),
    ({**MIGRATE, "dst_uri": "tcp:192.0.2.7:49152"}, "migration address is 10.77.0.12"),
    ({**MIGRATE, "dst_uri": "tcp:10.77.0.12:22"}, "outside the migration ports"),
    ({**MIGRATE, "dst_uri": "tcp:10.77.0.12:65535"}, "outside the migration ports"),
    ({**MIGRATE, "dst_uri": "tcp:127.0.0.1:49152"}, "migration address is 10.77.0.12"),
])
def test_migration_goes_only_to_configured_peers_and_ports(client: TestClient, driver: RecordingHypervisor,
                                                            body: dict[str, object], why: str) -> None:
    client.post("/v1/vms", json=VM)
    response = client.post("/v1/vms/vm0/migrate", json=body)
    assert response.status_code == 403, response.text
    assert why in response.json()["detail"]
    assert "migrate" not in driver.mutating_calls()
    resumed = client.post("/v1/vms/vm0/migrate/resume", json={"dst_uri": body["dst_uri"], "dst_host": body["dst_host"]})
    assert resumed.status_code == 403
    assert "resume_migration" not in driver.mutating_calls()


def test_an_agent_without_peers_migrates_nowhere(tmp_path: Path) -> None:
    driver = RecordingHypervisor()
    agent = make_agent(tmp_path, driver, migration_peers={})
    with TestClient(create_app(agent, TOKEN), headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        c.post("/v1/vms", json=VM)
        assert c.post("/v1/vms/vm0/migrate", json=MIGRATE).status_code == 403
    assert "migrate" not in driver.mutating_calls()


def _config(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "host.toml"
    path.write_text(f'name = "pm0"\ntoken = "0123456789abcdef0"\nstate_dir = "{tmp_path / "state"}"\n{extra}\n')
    return path


@pytest.mark.parametrize(("extra", "field"), [
    ("[power]\nmax_watts = inf", "power.max_watts"),
    ("[power]\nmax_watts = nan", "power.max_watts"),
    ("[power]\nidle_watts = 90.0\nmax_watts = 60.0", "power"),
    ("[power]\nsuspend_s = -1.0", "power.suspend_s"),
    ("[power]\nresume_s = nan", "power.resume_s"),
    ("cores = inf", "cores"),
    ("migration_ports = [80, 90]", None),
    ("migration_ports = [50000, 49999]", None),
    ('[migration_peers]\npm1 = "not-an-address"', "migration_peers"),
    ('[migration_peers]\n"Bad Name" = "10.0.0.1"', "migration_peers"),
    ('[migration_tls]\ndir = "/nonexistent-pki"', "migration_tls.dir"),
])
def test_bad_config_values_name_file_and_field(tmp_path: Path, extra: str, field: str | None) -> None:
    path = _config(tmp_path, extra)
    with pytest.raises(UserError) as caught:
        load_config(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    if field is not None:
        assert caught.value.field == field


def test_bad_tls_files_and_state_dir_name_their_field(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate")
    (tmp_path / "key.pem").write_bytes(b"\x00\xff garbage")
    path = _config(tmp_path, f'tls_cert = "{tmp_path / "cert.pem"}"\ntls_key = "{tmp_path / "key.pem"}"')
    with pytest.raises(UserError, match="not a PEM certificate") as caught:
        check_tls_files(load_config(path), str(path))  # as the agent does when it starts
    assert caught.value.field == "tls_cert"
    path = _config(tmp_path, 'tls_cert = "/nonexistent/cert.pem"\ntls_key = "/nonexistent/key.pem"')
    with pytest.raises(UserError, match="not a readable file") as caught:
        check_tls_files(load_config(path), str(path))
    assert caught.value.field == "tls_cert"
    done = subprocess.run([sys.executable, "-m", "consolidator.cli.main", "agent", "--config", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {path}: tls_cert: /nonexistent/cert.pem is not a readable file"
    (tmp_path / "state").write_text("a file, not a folder")
    with pytest.raises(UserError) as caught:
        load_config(_config(tmp_path, ""))
    assert caught.value.field == "state_dir"


@pytest.mark.parametrize("value", ["-1.0", "nan", "inf", "0.0"])
def test_bad_driver_timeout_is_user_error(tmp_path: Path, value: str) -> None:
    path = _config(tmp_path, f"[driver]\nboot_timeout_s = {value}")
    with pytest.raises(UserError) as caught:
        build_driver(load_config(path), str(path))
    assert caught.value.field == "driver" and "boot_timeout_s" in str(caught.value)


def test_binary_config_exits_2_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "host.toml"
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00\xff\xfe" * 50)
    done = subprocess.run([sys.executable, "-m", "consolidator.cli.main", "agent", "--config", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {path}: not UTF-8 text (byte 8): not a host.toml"


def test_event_numbers_continue_across_restarts(tmp_path: Path) -> None:
    def events(after: int) -> dict[str, object]:
        agent = make_agent(tmp_path, RecordingHypervisor())
        with TestClient(create_app(agent, TOKEN), headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            c.post("/v1/host/suspend")
            for _ in range(50):
                body = c.get("/v1/events", params={"after": after, "timeout_s": 0.2}).json()
                if any(e["power_state"] == "suspended" for e in body["events"]):
                    return dict(body)
        raise AssertionError("no suspended event")

    first = events(0)
    seqs = [e["seq"] for e in first["events"]]  # type: ignore[union-attr, index]
    assert seqs == [1, 2]
    (tmp_path / "events.jsonl").open("a").write('{"seq": 3, "cut short by a ki')  # a torn last line
    second = events(2)  # a new agent on the same state folder
    assert [e["seq"] for e in second["events"]] == [3, 4]  # type: ignore[union-attr, index]
    assert second["next_seq"] == 5


class _Postcopy(RecordingHypervisor):
    """An incoming VM whose postcopy is under way (or paused): pages still on the source."""

    def __init__(self, state: VmRunState) -> None:
        super().__init__()
        self.vms["vm0"] = VmInfo("vm0", state, VmConfig("vm0"))


@pytest.mark.parametrize("state", [VmRunState.POSTCOPY, VmRunState.POSTCOPY_PAUSED])
def test_a_postcopy_half_is_not_deleted_without_force(tmp_path: Path, state: VmRunState) -> None:
    driver = _Postcopy(state)
    with TestClient(create_app(make_agent(tmp_path, driver), TOKEN),
                    headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        response = c.delete("/v1/vms/vm0")
        assert response.status_code == 409 and "source" in response.json()["detail"]
        assert "destroy_vm" not in driver.mutating_calls()
        assert c.get("/v1/vms").json()[0]["state"] == state.value  # the API shows the state
        assert c.post("/v1/vms/vm0/incoming/recover").json() == {"vm": "vm0", "uri": "tcp:127.0.0.1:49153"}
        assert c.delete("/v1/vms/vm0", params={"force": "true"}).status_code == 204


def test_a_vm_that_arrived_by_postcopy_preempt_can_leave_by_precopy() -> None:
    """Found by the fault run: a precopy from a QEMU that had postcopy-preempt on (it arrived by
    postcopy) left preempt on, so QEMU refused postcopy-ram off ("Postcopy preempt requires
    postcopy-ram") and every such precopy failed at once. Over a QMP double that records commands
    (the real QEMU run: `lab run --faults` with a slow_link after a postcopy, docs/faults.md)."""
    from consolidator.agent.hypervisor import MigrationRequest
    from consolidator.agent.qemu.migration import PREEMPT, new_progress, run_migration
    from consolidator.domain.types import MigrationMethod

    class Qmp:
        name = "double"

        def __init__(self) -> None:
            self.sent: list[tuple[str, object]] = []

        async def execute(self, cmd: str, args: object = None, timeout_s: float | None = None) -> object:
            self.sent.append((cmd, args))
            return {"status": "completed", "ram": {}} if cmd == "query-migrate" else {}

        def last(self, *_: object, **__: object) -> None:
            return None

    for method, want in ((MigrationMethod.PRECOPY, False), (MigrationMethod.POSTCOPY, True)):
        mon = Qmp()
        request = MigrationRequest("vm0", "tcp:10.77.0.12:49152", method)
        asyncio.run(run_migration(mon, request, new_progress(0.0), preempt=True))  # type: ignore[arg-type]
        caps = next(a for c, a in mon.sent if c == "migrate-set-capabilities")
        states = {c["capability"]: c["state"] for c in caps["capabilities"]}  # type: ignore[index]
        assert states[PREEMPT] is want and states["postcopy-ram"] is want
