"""API security: auth on every route, validation before any driver call, no shell anywhere."""

from __future__ import annotations

import ast
import asyncio
import time
from pathlib import Path

import pytest
from agent_doubles import TOKEN, RecordingHypervisor, make_agent
from fastapi.testclient import TestClient

from consolidator.agent import power_state
from consolidator.agent.api.app import create_app
from consolidator.agent.host import HostAgent

VM = {"name": "vm0", "mem_mib": 256, "cpu_quota": 0.25, "load": 0.5, "dirty_mib_s": 10}
MIGRATE = {"dst_uri": "tcp:10.77.0.12:49152", "dst_host": "pm2", "method": "postcopy"}

# (method, path, json body): every route of the API
ROUTES = [
    ("GET", "/v1/vms", None),
    ("POST", "/v1/vms", VM),
    ("DELETE", "/v1/vms/vm0", None),
    ("POST", "/v1/vms/vm0/incoming", VM),
    ("GET", "/v1/vms/vm0/incoming", None),
    ("POST", "/v1/vms/vm0/migrate", MIGRATE),
    ("POST", "/v1/vms/vm0/migrate/cancel", None),
    ("POST", "/v1/vms/vm0/migrate/resume", {"dst_uri": "tcp:10.77.0.12:49153", "dst_host": "pm2"}),
    ("POST", "/v1/vms/vm0/incoming/recover", None),
    ("PUT", "/v1/vms/vm0/load", {"load": 1.0, "dirty_mib_s": 80}),
    ("GET", "/v1/vms/vm0/stats", None),
    ("POST", "/v1/vms/vm0/check", None),
    ("GET", "/v1/host/stats", None),
    ("POST", "/v1/host/suspend", None),
    ("POST", "/v1/host/wake", None),
    ("GET", "/v1/events", None),
]


def test_every_route_is_listed_here(agent: HostAgent) -> None:
    schema = create_app(agent, TOKEN).openapi()["paths"]
    paths = {(m.upper(), p) for p, ops in schema.items() for m in ops}
    listed = {(m, p.replace("vm0", "{name}")) for m, p, _ in ROUTES}
    assert paths == listed


@pytest.mark.parametrize("header", [None, "Bearer wrong-token-wrong-token-00", f"Basic {TOKEN}", "Bearer "])
@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_no_or_wrong_token_is_401_and_changes_nothing(
    anon: TestClient, driver: RecordingHypervisor, header: str | None, method: str, path: str, body: object
) -> None:
    headers = {"Authorization": header} if header is not None else {}
    response = anon.request(method, path, json=body, headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert driver.mutating_calls() == []
    assert [name for name, _ in driver.calls if name not in ("adopt",)] == []


def test_unauthenticated_malformed_json_is_still_401(anon: TestClient, driver: RecordingHypervisor) -> None:
    response = anon.post("/v1/vms", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 401
    assert driver.mutating_calls() == []


def test_right_token_works(client: TestClient, driver: RecordingHypervisor) -> None:
    response = client.post("/v1/vms", json=VM)
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "vm0"
    assert driver.mutating_calls() == ["create_vm"]


@pytest.mark.parametrize(
    "body",
    [
        {**VM, "name": "VM0"},
        {**VM, "name": "-vm"},
        {**VM, "name": "vm0; rm -rf /"},
        {**VM, "name": "../../etc/passwd"},
        {**VM, "name": "a" * 33},
        {**VM, "name": ""},
        {**VM, "mem_mib": 0},
        {**VM, "mem_mib": 10**9},
        {**VM, "mem_mib": "lots"},
        {**VM, "cpu_quota": 0},
        {**VM, "load": 1.5},
        {**VM, "dirty_mib_s": -1},
        {**VM, "vcpus": 1000},
        {**VM, "shell": "/bin/sh"},
        {"mem_mib": 256},
        [VM],
    ],
)
def test_bad_vm_body_is_422_with_message(
    client: TestClient, driver: RecordingHypervisor, body: object
) -> None:
    response = client.post("/v1/vms", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"], "422 must say what is wrong"
    assert driver.mutating_calls() == []


def test_malformed_json_is_422(client: TestClient, driver: RecordingHypervisor) -> None:
    response = client.post("/v1/vms", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert "json" in response.text.lower()
    assert driver.mutating_calls() == []


@pytest.mark.parametrize("name", ["VM0", "vm0;id", "a" * 40, "vm%20x"])
def test_bad_name_in_path_is_422(client: TestClient, driver: RecordingHypervisor, name: str) -> None:
    assert client.delete(f"/v1/vms/{name}").status_code == 422
    assert client.put(f"/v1/vms/{name}/load", json={"load": 0.1, "dirty_mib_s": 1}).status_code == 422
    assert driver.mutating_calls() == []


@pytest.mark.parametrize(
    "change",
    [
        {"dst_uri": "exec:/bin/sh -c id"},
        {"dst_uri": "tcp:10.0.0.1:1; id"},
        {"dst_uri": "unix:/tmp/x"},
        {"dst_host": "PM2"},
        {"method": "teleport"},
        {"downtime_limit_s": 0},
        {"timeout_s": -5},
        {"max_bandwidth_bytes_per_s": 0},
        {"on_timeout": "explode"},
    ],
)
def test_bad_migrate_body_is_422(
    client: TestClient, driver: RecordingHypervisor, change: dict[str, object]
) -> None:
    client.post("/v1/vms", json=VM)
    response = client.post("/v1/vms/vm0/migrate", json={**MIGRATE, **change})
    assert response.status_code == 422, response.text
    assert driver.mutating_calls() == ["create_vm"]


def test_vm_larger_than_host_limit_is_409(client: TestClient, driver: RecordingHypervisor) -> None:
    response = client.post("/v1/vms", json={**VM, "mem_mib": 2048})
    assert response.status_code == 409
    assert "max_vm_mem_mib" in response.json()["detail"]
    assert driver.mutating_calls() == []


def test_duplicate_vm_is_409(client: TestClient, driver: RecordingHypervisor) -> None:
    assert client.post("/v1/vms", json=VM).status_code == 201
    assert client.post("/v1/vms", json=VM).status_code == 409
    assert driver.mutating_calls() == ["create_vm"]


SHELL_CALLS = ("system", "popen", "create_subprocess_shell")


def test_no_shell_in_agent_or_manager_code() -> None:
    """No shell=True, os.system, os.popen or create_subprocess_shell anywhere we own."""
    root = Path(__file__).resolve().parents[2] / "consolidator"
    offenders = []
    for area in ("agent", "manager", "experiments/lab"):
        for path in sorted((root / area).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.keyword) and node.arg == "shell":
                    if not (isinstance(node.value, ast.Constant) and node.value.value is False):
                        offenders.append(f"{path}: shell=")
                if isinstance(node, ast.Attribute) and node.attr in SHELL_CALLS:
                    offenders.append(f"{path}: {node.attr}")
    assert offenders == []


@pytest.mark.parametrize(("sleep", "argv"), [("s3", ("systemctl", "suspend")), ("off", ("systemctl", "poweroff"))])
def test_real_suspend_runs_systemctl_as_argv_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sleep: str,
                                                  argv: tuple[str, ...]) -> None:
    """A real (not emulated) host suspends (or, sleep = "off", powers off) with systemctl given as
    argv, never a shell line."""
    seen: list[tuple[object, ...]] = []

    async def fake_exec(*argv: object, **kwargs: object) -> object:
        seen.append(argv)
        assert "shell" not in kwargs
        raise FileNotFoundError("systemctl (test: not run)")

    monkeypatch.setattr(power_state.asyncio, "create_subprocess_exec", fake_exec)
    agent = make_agent(tmp_path, RecordingHypervisor(), emulated=False, sleep=sleep)
    with TestClient(create_app(agent, TOKEN), headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        assert c.post("/v1/host/suspend").status_code == 202
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            asyncio.run(asyncio.sleep(0.01))
        events = c.get("/v1/events", params={"after": 0, "timeout_s": 0}).json()["events"]
    assert seen == [argv]
    assert [e["power_state"] for e in events][:1] == ["suspending"]


def test_openapi_schema_declares_bearer_auth_and_bounds(agent: HostAgent) -> None:
    schema = create_app(agent, TOKEN).openapi()
    assert schema["components"]["securitySchemes"]["HTTPBearer"] == {"type": "http", "scheme": "bearer"}
    vm = schema["components"]["schemas"]["VmBody"]["properties"]
    assert vm["name"]["pattern"] == "^[a-z0-9][a-z0-9-]{0,31}$"
    assert (vm["mem_mib"]["minimum"], vm["mem_mib"]["maximum"]) == (16, 1 << 20)
    for path, ops in schema["paths"].items():
        for op in ops.values():
            assert {"HTTPBearer": []} in op.get("security", []), path
