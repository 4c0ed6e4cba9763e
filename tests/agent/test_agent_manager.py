"""The manager over agents served in-process (HTTP through httpx's ASGI transport, driver doubles):
the manager service (RemoteCluster, the event forwarder, the poller) drives the control loop
unchanged. The same path over real QEMU agents is in test_agent_live_qemu.py (marker qemu)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest
from agent_doubles import TOKEN, RecordingHypervisor, make_agent
from service_doubles import Cluster

from consolidator.agent.api.app import create_app
from consolidator.agent.host import HostAgent
from consolidator.domain.events import HostPowerChanged, MigrationFinished
from consolidator.domain.types import MigrationMethod, MigrationOutcome, PowerState
from consolidator.manager.client import AgentClient, AgentEndpoint
from consolidator.manager.engine import AgentEngine
from consolidator.manager.events import EventForwarder, measure_downtime, to_domain
from consolidator.manager.service import Hooks, ManagerService
from consolidator.protocol.schemas import EventView, VmBody


def test_to_domain_converts_times_to_run_time() -> None:
    event = EventView(seq=3, t_wall_s=1010.0, kind="migration_finished", host="pm0", vm="vm0", src="pm0",
                      dst="pm1", method=MigrationMethod.POSTCOPY, outcome=MigrationOutcome.COMPLETED,
                      start_wall_s=1002.0, bytes_sent=5, downtime_s=0.02, rounds=1)
    domain = to_domain(event, 1000.0)
    assert isinstance(domain, MigrationFinished)
    assert (domain.t_s, domain.start_s, domain.outcome) == (10.0, 2.0, MigrationOutcome.COMPLETED)
    power = to_domain(EventView(seq=1, t_wall_s=1001.5, kind="host_power", host="pm1",
                                power_state=PowerState.SUSPENDED), 1000.0)
    assert power == HostPowerChanged(t_s=1.5, host="pm1", state=PowerState.SUSPENDED)


async def _run_until(service: ManagerService, until_s: float) -> None:
    await service.run(asyncio.Event(), until_s=until_s)


def test_the_manager_service_drives_the_control_loop_over_agents(tmp_path: Path) -> None:
    """The lab's path: ManagerService (RemoteCluster, forwarder, poller) over two in-process agents,
    the paper policy after a warm-up before t = 0."""
    cluster = Cluster(tmp_path, hosts=("pm0", "pm1"))
    seen: list[object] = []

    async def main() -> None:
        setup = cluster.engines()["pm0"]
        await setup.create_vm(VmBody(name="vm0", mem_mib=256, load=0.1))  # type: ignore[attr-defined]
        await setup.close()
        service = cluster.manager(hooks=Hooks(warmup_s=1.0), window_periods=3, period_s=0.1,
                                  policy={"name": "paper", "args": {"hold_s": 0.5}})
        await service.start()
        service.observers.append(seen.append)
        pm0, pm1 = service.engines["pm0"], service.engines["pm1"]
        await _run_until(service, 0.0)  # warm-up: periods recorded before t = 0, no plan made
        assert service.loop.plans == 0 and service.loop.monitor.average_host("pm0") > 0
        await _run_until(service, 1.0)  # pm1 empty -> suspended
        await pm0.set_load("vm0", 1.0, 0.0)  # type: ignore[attr-defined]
        await _run_until(service, 4.0)  # pm0 overloaded -> wake pm1, vm0 moves, pm0 sleeps
        assert [v.name for v in await pm1.list_vms()] == ["vm0"]
        await pm1.set_load("vm0", 0.1, 0.0)  # type: ignore[attr-defined]
        await _run_until(service, 9.0)  # vm0 idle -> wake pm0, vm0 returns, pm1 sleeps
        assert len(service.step_s) == service.loop.plans
        assert service.cluster.errors == []
        await service.shutdown()

    asyncio.run(main())
    moves = [(e.vm, e.src, e.dst, e.outcome) for e in seen if isinstance(e, MigrationFinished)]
    assert moves[:2] == [("vm0", "pm0", "pm1", MigrationOutcome.COMPLETED),
                         ("vm0", "pm1", "pm0", MigrationOutcome.COMPLETED)]
    power = [e for e in seen if isinstance(e, HostPowerChanged)]
    states = {h: [e.state for e in power if e.host == h] for h in ("pm0", "pm1")}
    cycle = [PowerState.SUSPENDING, PowerState.SUSPENDED, PowerState.RESUMING, PowerState.ON]
    assert states["pm1"] == cycle + cycle[:2]
    assert states["pm0"] == cycle
    times = [e.t_s for e in seen]
    assert times == sorted(times) and 0 < times[0] < 1.0
    # downtime = destination RESUME - source STOP; the doubles pause the guest for pause_s = 0.02 s
    downtimes = [e.downtime_s for e in seen if isinstance(e, MigrationFinished)]
    assert downtimes == pytest.approx([0.02] * len(downtimes), abs=1e-6)


def _pair(tmp_path: Path) -> tuple[dict[str, RecordingHypervisor], dict[str, HostAgent], dict[str, AgentClient]]:
    """Two in-process agents, pm0 (source) and pm1 (destination), and clients for them."""
    drivers = {h: RecordingHypervisor(port=49152 + i) for i, h in enumerate(("pm0", "pm1"))}
    agents = {h: make_agent(tmp_path / h, d, name=h) for h, d in drivers.items()}
    clients = {h: AgentEngine(AgentEndpoint(h, "http://agent", TOKEN),
                              transport=httpx.ASGITransport(app=create_app(a, TOKEN, adopt=False)))
               for h, a in agents.items()}
    return drivers, agents, clients


def test_measure_downtime_is_destination_resume_minus_source_stop(tmp_path: Path) -> None:
    drivers, _, clients = _pair(tmp_path)
    dst = clients["pm1"]

    async def main() -> None:
        await dst.prepare_incoming(VmBody(name="vm0"))
        assert (await dst.incoming_marks("vm0")).resume is None
        # precopy: the destination resumes only after the source is done; the measure waits for it
        asyncio.get_running_loop().call_later(
            0.2, drivers["pm1"].marks.__setitem__, "vm0", {"resume": 1000.5, "completed": 1000.5})
        assert await measure_downtime(dst, "vm0", 1000.375, wait_s=2.0) == (0.125, "")
        downtime, why = await measure_downtime(dst, "vm0", None)
        assert downtime is None and "no STOP" in why
        downtime, why = await measure_downtime(dst, "vm0", 1001.0)  # resume before stop
        assert downtime is None and "clocks" in why
        downtime, why = await measure_downtime(dst, "nope", 1000.0)
        assert downtime is None and "404" in why
        drivers["pm1"].marks["vm0"] = {}
        downtime, why = await measure_downtime(dst, "vm0", 1000.0, wait_s=0.2)
        assert downtime is None and "no RESUME within 0.2 s" in why
        for client in clients.values():
            await client.close()

    asyncio.run(main())


def test_forwarder_sets_downtime_of_a_completed_move_or_logs_why_not(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    drivers, agents, clients = _pair(tmp_path)
    seen: list[object] = []

    async def finished(vm: str, stop: float | None) -> None:
        await agents["pm0"].events.append(
            "migration_finished", vm=vm, src="pm0", dst="pm1", method=MigrationMethod.POSTCOPY,
            outcome=MigrationOutcome.COMPLETED, start_wall_s=999.0, stop_wall_s=stop)

    async def main() -> None:
        forwarder = EventForwarder(clients, 1000.0, seen.append, marks_wait_s=0.3)
        await forwarder.start()
        for vm in ("vm0", "vm1"):
            await clients["pm1"].prepare_incoming(VmBody(name=vm))
        drivers["pm1"].marks["vm0"] = {"resume": 1001.0625}
        await finished("vm0", 1001.0)
        await finished("vm1", 1001.0)  # pm1 never saw vm1 resume
        await finished("vm0", None)  # a source that saw no STOP
        for _ in range(100):
            if len(seen) == 3:
                break
            await asyncio.sleep(0.02)
        await forwarder.stop()
        for client in clients.values():
            await client.close()

    with caplog.at_level(logging.WARNING, logger="consolidator.manager.events"):
        asyncio.run(main())
    assert [(e.vm, e.downtime_s) for e in seen if isinstance(e, MigrationFinished)] == [
        ("vm0", 0.0625), ("vm1", 0.0), ("vm0", 0.0)]
    warnings = [r.getMessage() for r in caplog.records]
    assert any("vm1 pm0 -> pm1 unknown" in w and "no RESUME" in w for w in warnings), warnings
    assert any("no STOP" in w for w in warnings), warnings
