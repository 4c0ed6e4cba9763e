"""A dead SOURCE host during a postcopy (issue 11 item 2), in the manager service: the source stops
answering mid-move and the destination's half is paused; the manager records the VM LOST with that
cause within 5 s (never a clean stop), the loop counts it gone, and the silent host becomes UNKNOWN
(FAILED to the planner, never a target). In-process agents (the real HostAgent and API); their VM
driver is the recording double, so the destination's paused half is set by the test (what QEMU
reports when its source dies; the real-QEMU run: tests/agent/test_fault_run.py, kill_source_host)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

from service_doubles import Cluster
from test_manager_service import boot, run_until

from consolidator.agent.hypervisor import VmRunState
from consolidator.domain.events import MigrationFinished
from consolidator.domain.types import MigrationOutcome, PowerState


def test_dead_source_mid_postcopy_is_lost_within_5_s_and_planned_around(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, migrate_s=60.0)  # the move stays in flight

    async def main() -> None:
        await boot(cluster, "pm0", "vm0", 1.0)  # the warehouse is overloaded: the paper moves vm0 out
        service = cluster.manager(mode="auto", limits={"unknown_after_misses": 3, "drain_timeout_s": 0})
        seen: list[object] = []
        service.observers.append(seen.append)
        await service.start()
        await run_until(service, lambda: "vm0" in service.cluster.in_flight
                        and "vm0" in service.forwarder.recovery.moving)
        src, dst = service.cluster.in_flight["vm0"]
        assert src == "pm0"
        half = cluster.drivers[dst].vms["vm0"]
        cluster.drivers[dst].vms["vm0"] = dataclasses.replace(half, state=VmRunState.POSTCOPY_PAUSED)
        cluster.transports[src].down = True  # its agent and QEMU are gone
        killed = time.monotonic()
        c = service.loop.controller
        await run_until(service, lambda: bool(c.lost[c.vm_index["vm0"]]), timeout_s=10)
        detected_s = time.monotonic() - killed
        await run_until(service, lambda: src in service.unknown)
        snap = service.loop.snapshot(service.now())
        await service.shutdown()
        assert detected_s <= 5.0
        finished = [e for e in seen if isinstance(e, MigrationFinished)]
        assert [(e.vm, e.src, e.dst, e.outcome) for e in finished] == [("vm0", src, dst, MigrationOutcome.LOST)]
        assert f"source {src} does not answer" in finished[0].detail and "paused" in finished[0].detail
        [loss] = service.forwarder.recovery.stats.lost
        assert loss.certain and loss.detected_s <= 5.0
        assert int(snap.host_state[snap.host_names.index(src)]) == PowerState.FAILED.code
        assert int(snap.vm_host[snap.vm_names.index("vm0")]) == -1  # no longer placed anywhere
        assert "vm0" in cluster.drivers[dst].vms  # the paused half is kept (only its source could finish it)

    asyncio.run(main())


def test_a_silent_source_whose_destination_still_runs_is_not_lost(tmp_path: Path) -> None:
    """Only the agent died (its QEMU still sends): the destination's half runs on, nothing is lost."""
    cluster = Cluster(tmp_path, migrate_s=60.0)

    async def main() -> None:
        await boot(cluster, "pm0", "vm0", 1.0)
        service = cluster.manager(mode="auto", limits={"drain_timeout_s": 0})
        await service.start()
        await run_until(service, lambda: "vm0" in service.forwarder.recovery.moving)
        src, dst = service.cluster.in_flight["vm0"]
        half = cluster.drivers[dst].vms["vm0"]
        cluster.drivers[dst].vms["vm0"] = dataclasses.replace(half, state=VmRunState.POSTCOPY)
        cluster.transports[src].down = True
        await run_until(service, lambda: src in service.unknown)
        await asyncio.sleep(1.0)
        c = service.loop.controller
        lost = bool(c.lost[c.vm_index["vm0"]])
        await service.shutdown()
        assert not lost and service.forwarder.recovery.stats.lost == []

    asyncio.run(main())
