"""The agent's rules over the recording driver double: events, migration, emulated S3, stats."""

from __future__ import annotations

from pathlib import Path

import pytest
from agent_doubles import TOKEN, RecordingHypervisor, make_agent
from fastapi.testclient import TestClient

from consolidator.agent.api.config import load_config
from consolidator.agent.qemu.guestctl import GuestStats
from consolidator.domain.errors import UserError

VM = {"name": "vm0", "mem_mib": 256, "cpu_quota": 0.25, "load": 0.5, "dirty_mib_s": 10}
MIGRATE = {"dst_uri": "tcp:10.77.0.12:49152", "dst_host": "pm2", "method": "precopy", "timeout_s": 5}


def _events(client: TestClient, after: int = 0, wait_s: float = 0.0) -> list[dict[str, object]]:
    body = client.get("/v1/events", params={"after": after, "timeout_s": wait_s}).json()
    events: list[dict[str, object]] = body["events"]
    return events


def _wait_for(client: TestClient, kind: str, state: str | None = None) -> list[dict[str, object]]:
    seen: list[dict[str, object]] = []
    for _ in range(50):
        seen += _events(client, int(seen[-1]["seq"]) if seen else 0, 0.2)
        if any(e["kind"] == kind and (state is None or e.get("power_state") == state) for e in seen):
            return seen
    raise AssertionError(f"no {kind} {state or ''} event in {seen}")


def test_migration_emits_numbered_started_and_finished(
    client: TestClient, driver: RecordingHypervisor
) -> None:
    assert client.post("/v1/vms", json=VM).status_code == 201
    accepted = client.post("/v1/vms/vm0/migrate", json=MIGRATE)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json() == {"vm": "vm0", "src_host": "pm1", "dst_host": "pm2", "method": "precopy"}
    events = _wait_for(client, "migration_finished")
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    started, finished = events[0], events[-1]
    assert (started["kind"], started["vm"], started["src"], started["dst"]) == (
        "migration_started", "vm0", "pm1", "pm2")
    assert finished["outcome"] == "completed" and finished["bytes_sent"] == 1000
    # the source's STOP mark travels with the event (its RESUME half is on the destination)
    stop, start, end = finished["stop_wall_s"], started["start_wall_s"], finished["t_wall_s"]
    assert isinstance(stop, float) and isinstance(start, float) and isinstance(end, float)
    assert start <= stop <= end
    assert finished["downtime_s"] is None
    assert _events(client, after=int(finished["seq"])) == []
    request = next(args[0] for name, args in driver.calls if name == "migrate")
    assert request.options.timeout_s == 5 and request.method.value == "precopy"


def test_long_poll_returns_when_an_event_arrives(client: TestClient) -> None:
    client.post("/v1/vms", json=VM)
    client.post("/v1/vms/vm0/migrate", json=MIGRATE)
    first = _events(client, 0)
    later = _events(client, after=int(first[-1]["seq"]), wait_s=5.0)
    assert [e["kind"] for e in later] == ["migration_finished"]


def test_second_migration_of_same_vm_is_409(client: TestClient, driver: RecordingHypervisor) -> None:
    driver.migrate_s = 1.0
    client.post("/v1/vms", json=VM)
    assert client.post("/v1/vms/vm0/migrate", json=MIGRATE).status_code == 202
    assert client.post("/v1/vms/vm0/migrate", json=MIGRATE).status_code == 409
    assert client.delete("/v1/vms/vm0").status_code == 409
    assert client.post("/v1/vms/vm0/migrate/cancel").status_code == 202


def test_unknown_vm_is_404(client: TestClient) -> None:
    assert client.delete("/v1/vms/nope").status_code == 404
    assert client.post("/v1/vms/nope/migrate", json=MIGRATE).status_code == 404
    response = client.get("/v1/vms/nope/incoming")
    assert response.status_code == 404 and "nope" in response.json()["detail"]


def test_incoming_marks_null_until_seen_then_the_destination_resume(
    client: TestClient, driver: RecordingHypervisor
) -> None:
    assert client.post("/v1/vms/vm0/incoming", json=VM).status_code == 201
    response = client.get("/v1/vms/vm0/incoming")
    assert response.status_code == 200, response.text
    no_faults = {"postcopy_blocktime_s": None, "postcopy_vcpu_blocktime_s": None, "postcopy_latency_s": None,
                 "postcopy_preempt": None}  # a driver without QEMU's fault statistics (this double)
    assert response.json() == {"vm": "vm0", "resume": None, "completed": None, **no_faults}
    driver.marks["vm0"] = {"resume": 1000.25, "completed": 1002.5, "postcopy_blocktime_s": 0.1}
    assert client.get("/v1/vms/vm0/incoming").json() == {"vm": "vm0", "resume": 1000.25, "completed": 1002.5,
                                                         **no_faults}
    assert driver.mutating_calls() == ["prepare_incoming"]  # a read: nothing changed
    assert client.get("/v1/vms/VM0/incoming").status_code == 422  # names are validated as elsewhere


def test_emulated_suspend_refuses_work_meters_s3_and_wakes(
    client: TestClient, driver: RecordingHypervisor
) -> None:
    assert client.post("/v1/host/suspend").json()["power_state"] == "suspending"
    _wait_for(client, "host_power", "suspended")
    stats = client.get("/v1/host/stats").json()
    assert stats["power_state"] == "suspended" and stats["watts"] == 7.0
    assert client.post("/v1/vms", json=VM).status_code == 409
    assert client.post("/v1/vms/vm0/incoming", json=VM).status_code == 409
    assert driver.mutating_calls() == []
    assert client.post("/v1/host/wake").status_code == 202
    events = _wait_for(client, "host_power", "on")
    assert [e["power_state"] for e in events] == ["suspending", "suspended", "resuming", "on"]
    assert client.post("/v1/vms", json=VM).status_code == 201


def test_suspend_with_vms_is_409(client: TestClient) -> None:
    client.post("/v1/vms", json=VM)
    response = client.post("/v1/host/suspend")
    assert response.status_code == 409 and "vm0" in response.json()["detail"]


def test_wake_when_on_is_409(client: TestClient) -> None:
    assert client.post("/v1/host/wake").status_code == 409


def test_host_stats_sum_vm_loads_on_emulated_host(client: TestClient) -> None:
    client.post("/v1/vms", json=VM)
    client.post("/v1/vms", json={**VM, "name": "vm1", "load": 0.25})
    stats = client.get("/v1/host/stats").json()
    assert stats["cpu_load"] == pytest.approx(0.75)
    assert stats["watts"] == pytest.approx(53 + 47 * 0.75)  # cores = 1.0 in the fixture
    assert stats["mem_total_mib"] > 0 and 0 <= stats["proc_cpu_load"] <= 64
    assert sorted(v["name"] for v in stats["vms"]) == ["vm0", "vm1"]


def test_incoming_returns_uri_on_migration_address(client: TestClient) -> None:
    response = client.post("/v1/vms/vm0/incoming", json=VM)
    assert response.status_code == 201
    assert response.json() == {"vm": "vm0", "uri": "tcp:127.0.0.1:49152"}
    assert client.post("/v1/vms/vm9/incoming", json=VM).status_code == 409  # body/path disagree


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('name = "PM0"\ntoken = "0123456789abcdef0"', "name"),
        ('name = "pm0"', None),  # no token at all
        ('name = "pm0"\ntoken = "short"', "token"),
        ('name = "pm0"\ntoken = "0123456789abcdef0"\nport = 0', "port"),
        ('name = "pm0"\ntoken = "0123456789abcdef0"\ncolour = "red"', "colour"),
        ('name = "pm0"\ntoken = "0123456789abcdef0"\n[power]\nidle_watts = -1', "power.idle_watts"),
        ('name = "pm0"\ntoken = "0123456789abcdef0"\ntls_cert = "/c.pem"', None),
        ("name = ", None),
    ],
)
def test_bad_config_is_user_error_naming_file_and_field(tmp_path: Path, text: str, field: str | None) -> None:
    path = tmp_path / "host.toml"
    path.write_text(text)
    with pytest.raises(UserError) as caught:
        load_config(path)
    assert str(path) in str(caught.value)
    if field is not None:
        assert caught.value.field == field


def test_token_file_is_read_and_checked(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("abc\n")
    path = tmp_path / "host.toml"
    path.write_text(f'name = "pm0"\ntoken_file = "{token_file}"\n')
    with pytest.raises(UserError, match="at least 16"):
        load_config(path)
    token_file.write_text("0123456789abcdef-long-enough\n")
    assert load_config(path).read_token() == "0123456789abcdef-long-enough"


class _GuestCounters(RecordingHypervisor):
    """The recording double plus a guest whose counters advance 0.3 s busy per 1 s of uptime."""

    def __init__(self) -> None:
        super().__init__()
        self.uptime_s = 100.0

    async def guest_stats(self, vm: str) -> GuestStats:
        self.uptime_s += 1.0
        done = int(self.uptime_s)
        return GuestStats(pages=100, pages_written=0, tasks=done + 2, busy_s=50.0 + 0.3 * (self.uptime_s - 100.0),
                          uptime_s=self.uptime_s, memfree_kib=0, tasks_done=done, tasks_queued=2,
                          backlog_s=0.04, delay_sum_s=0.5, delay_max_s=0.1, delay_hist={0: done - 1, 30: 1})


def test_guest_load_is_pending_until_a_second_reading(tmp_path: Path) -> None:
    from consolidator.agent.api.app import create_app
    from consolidator.manager.poller import samples_of
    from consolidator.protocol.schemas import HostStatsView

    agent = make_agent(tmp_path, _GuestCounters())
    with TestClient(create_app(agent, TOKEN), headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        c.post("/v1/vms", json=VM)
        first = HostStatsView.model_validate(c.get("/v1/host/stats").json())
        second = HostStatsView.model_validate(c.get("/v1/host/stats").json())
    # first reading covers the guest's whole life (0.5 busy share): not reported as a load
    assert first.vms[0].load_pending and first.vms[0].guest_load is None
    assert samples_of(first, 1.0).vms == ()
    assert second.vms[0].guest_load == pytest.approx(0.3) and not second.vms[0].load_pending
    assert [v.cpu_load for v in samples_of(second, 2.0).vms] == [pytest.approx(0.3)]
    queue = second.vms[0].guest_queue  # the generator's queue travels in the host stats (lab comparison)
    assert queue is not None and (queue.tasks, queue.done, queue.queued) == (104, 102, 2)
    assert queue.delay_hist == {0: 101, 30: 1} and queue.backlog_s == 0.04
