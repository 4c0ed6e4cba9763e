"""Real agents over real QEMU (TCG here), each in its own network namespace on a shaped link:
restart adoption, a live migration through the API, and the manager service driving the control loop."""

from __future__ import annotations

import asyncio

import pytest
from live_lab import VM, Lab, finished_event, start_move

from consolidator.agent.qemu import launch
from consolidator.domain.events import HostPowerChanged, MigrationFinished
from consolidator.domain.types import MigrationOutcome, PowerState
from consolidator.manager.config import parse_cluster_config
from consolidator.manager.events import measure_downtime
from consolidator.manager.service import ManagerService
from consolidator.protocol.schemas import VmBody

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(600)]
def test_agent_restart_adopts_running_qemu(lab: Lab) -> None:
    async def main() -> None:
        await lab.start("pm0")
        client = lab.client("pm0")
        created = await client.create_vm(VM)
        await client.close()
        lab.stop("pm0")  # the agent goes; QEMU must stay
        assert created.pid is not None and launch.pid_alive(created.pid)
        await lab.start("pm0")
        client = lab.client("pm0")
        vms = await client.list_vms()
        assert [(v.name, v.pid, v.state.value) for v in vms] == [("vm0", created.pid, "running")]
        await client.set_load("vm0", 0.2, 5)
        assert await client.check_pages("vm0") == 0
        await client.destroy_vm("vm0")
        assert await client.list_vms() == []
        await client.close()

    asyncio.run(main())


@pytest.mark.parametrize("method", ["postcopy", "precopy"])
def test_live_migration_between_two_agents(lab: Lab, method: str) -> None:
    async def main() -> None:
        move = await start_move(lab, method=method, max_bandwidth_bytes_per_s=120e6, timeout_s=60)
        src, dst, after = move.src, move.dst, move.before
        assert move.uri.startswith(f"tcp:{lab.specs['pm1'].migration_host}:")
        done = await finished_event(src, after)
        assert done["outcome"] == "completed", done
        assert (done["src"], done["dst"], done["method"]) == ("pm0", "pm1", method)
        assert int(done["bytes_sent"]) > 0  # type: ignore[call-overload]
        # downtime: the source's STOP (in its event) to the destination's RESUME (its marks endpoint)
        stop = done["stop_wall_s"]
        assert isinstance(stop, float), done
        downtime, why = await measure_downtime(dst, "vm0", stop)
        assert downtime is not None, why
        print(f"\nAPI {method} migration downtime (destination RESUME - source STOP): {downtime:.4f} s")
        assert 0 < downtime < (1.0 if method == "postcopy" else 5.0)
        assert await src.list_vms() == []
        moved = await dst.list_vms()
        assert [(v.name, v.state.value) for v in moved] == [("vm0", "running")]
        assert await dst.check_pages("vm0") == 0
        await dst.destroy_vm("vm0")
        await src.close()
        await dst.close()
        for host in ("pm0", "pm1"):  # the driver found the cgroup tree: every VM ran under its quota
            assert "without a CPU quota" not in (lab.root / f"{host}.log").read_text()

    asyncio.run(main())


def test_manager_service_drives_control_loop_over_qemu(lab: Lab) -> None:
    """The paper policy, live, through the manager service (the lab's path): a busy VM on the
    Warehouse is sent to the Server node (woken from emulated S3), then the empty Warehouse is
    suspended."""
    seen: list[object] = []
    token = str(lab.root / "token")
    config = parse_cluster_config({
        "mode": "auto", "period_s": 1.0, "window_periods": 3, "run_store": str(lab.root / "run.sqlite"),
        "api_token_file": token, "policy": {"name": "paper"}, "limits": {"min_hold_s": 0, "drain_timeout_s": 60},
        "hosts": {h: {"driver": "agent", "url": spec.endpoint().base_url, "token_file": token, "cores": 1.0,
                      "mem_mib": 4096, "role": "warehouse" if h == "pm0" else "server"}
                  for h, spec in lab.specs.items()}}, "test")

    async def main() -> None:
        await lab.start("pm0")
        await lab.start("pm1")
        setup = lab.client("pm0")
        await setup.create_vm(VmBody(name="vm0", mem_mib=256, cpu_quota=0.25, load=0.05, dirty_mib_s=5))
        await setup.close()
        service = ManagerService(config)
        await service.start()
        service.observers.append(seen.append)
        await service.run(asyncio.Event(), until_s=6.0)  # pm1 has no VM: suspended
        pm0, pm1 = service.engines["pm0"], service.engines["pm1"]
        await pm0.set_load("vm0", 1.0, 20)  # type: ignore[attr-defined]
        for _ in range(60):
            await service.run(asyncio.Event(), until_s=service.now() + 1.0)
            if any(isinstance(e, HostPowerChanged) and e.host == "pm0" and e.state is PowerState.SUSPENDED
                   for e in seen):
                break
        assert service.cluster.errors == []
        assert [v.name for v in await pm1.list_vms()] == ["vm0"]
        assert await pm1.check_pages("vm0") == 0  # type: ignore[attr-defined]
        await pm1.destroy_vm("vm0")
        await service.shutdown()

    asyncio.run(main())
    moves = [(e.vm, e.src, e.dst, e.outcome) for e in seen if isinstance(e, MigrationFinished)]
    assert moves == [("vm0", "pm0", "pm1", MigrationOutcome.COMPLETED)]
    # the forwarder measured the postcopy move's downtime across the two agents (no longer 0)
    downtime = next(e.downtime_s for e in seen if isinstance(e, MigrationFinished))
    print(f"\nRemoteCluster postcopy migration downtime: {downtime:.4f} s")
    assert 0 < downtime < 1.0
    power = [(e.host, e.state) for e in seen if isinstance(e, HostPowerChanged)]
    assert power[:4] == [("pm1", PowerState.SUSPENDING), ("pm1", PowerState.SUSPENDED),
                         ("pm1", PowerState.RESUMING), ("pm1", PowerState.ON)]
    assert power[-2:] == [("pm0", PowerState.SUSPENDING), ("pm0", PowerState.SUSPENDED)]
