"""Source side of one live migration over QMP: precopy, postcopy or hybrid, with a timeout.

- precopy: ``migrate``; QEMU switches over when the dirty remainder fits the downtime limit.
- postcopy: ``postcopy-ram`` on both sides, ``migrate-start-postcopy`` at once: device state moves,
  the guest runs at the destination and pulls the pages it faults on.
- hybrid: postcopy after ``hybrid_precopy_rounds`` full precopy passes (``dirty-sync-count``).
- timeout (precopy): ``migrate_cancel`` (the guest keeps running at the source) or switch to postcopy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from consolidator.agent.hypervisor import DriverError, MigrationReport, MigrationRequest, OnTimeout
from consolidator.agent.qemu.monitor import Monitor
from consolidator.domain.types import MigrationMethod, MigrationOutcome

log = logging.getLogger(__name__)

POLL_S = 0.05
UNLIMITED_BYTES_PER_S = 100e9  # "no cap": the link decides
FINAL_STATES = {"completed", "failed", "cancelled"}


@dataclass
class _Progress:
    started_s: float
    switched_s: float | None = None
    last: dict[str, Any] = field(default_factory=dict)


def capabilities(postcopy: bool, incoming: bool = False) -> list[dict[str, Any]]:
    """Migration capabilities. A destination always enables postcopy-ram (it does not know the method)
    and postcopy-blocktime, so it can tell how long its vCPUs waited on remote page faults."""
    caps = [{"capability": "events", "state": True}, {"capability": "postcopy-ram", "state": postcopy}]
    if incoming:
        caps.append({"capability": "postcopy-blocktime", "state": True})
    return caps


async def _configure(mon: Monitor, req: MigrationRequest) -> None:
    postcopy = req.method in (MigrationMethod.POSTCOPY, MigrationMethod.HYBRID) or (
        req.on_timeout is OnTimeout.POSTCOPY
    )
    await mon.execute("migrate-set-capabilities", {"capabilities": capabilities(postcopy)})
    bw = int(req.max_bandwidth_bytes_per_s or UNLIMITED_BYTES_PER_S)
    await mon.execute("migrate-set-parameters", {
        "downtime-limit": max(1, int(req.downtime_limit_s * 1000)),
        "max-bandwidth": bw,
        "max-postcopy-bandwidth": bw,
    })


async def _switch_to_postcopy(mon: Monitor, progress: _Progress, why: str) -> None:
    log.info("%s: switching to postcopy (%s)", mon.name, why)
    await mon.execute("migrate-start-postcopy")
    progress.switched_s = time.time()


async def _cancel(mon: Monitor, timeout_s: float = 30.0) -> dict[str, Any]:
    await mon.execute("migrate_cancel")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info: dict[str, Any] = await mon.execute("query-migrate")
        if info.get("status") in FINAL_STATES:
            return info
        await asyncio.sleep(POLL_S)
    raise DriverError(f"{mon.name}: migration did not stop within {timeout_s} s of migrate_cancel")


async def _drive(mon: Monitor, req: MigrationRequest, progress: _Progress) -> dict[str, Any]:
    """Poll query-migrate until a final state, acting on hybrid rounds and the timeout."""
    if req.method is MigrationMethod.POSTCOPY:
        await _switch_to_postcopy(mon, progress, "postcopy from the start")
    while True:
        info: dict[str, Any] = await mon.execute("query-migrate")
        progress.last = info
        status = info.get("status", "")
        if status in FINAL_STATES:
            return info
        in_postcopy = progress.switched_s is not None or status.startswith("postcopy")
        syncs = int(info.get("ram", {}).get("dirty-sync-count", 0))
        if req.method is MigrationMethod.HYBRID and not in_postcopy and syncs > req.hybrid_precopy_rounds:
            await _switch_to_postcopy(mon, progress, f"after {syncs - 1} precopy passes")
        elif not in_postcopy and time.time() - progress.started_s > req.timeout_s:
            if req.on_timeout is OnTimeout.POSTCOPY:
                await _switch_to_postcopy(mon, progress, f"timeout {req.timeout_s} s")
            else:
                log.info("%s: precopy did not converge in %s s, cancelling", mon.name, req.timeout_s)
                return await _cancel(mon)
        await asyncio.sleep(POLL_S)


async def run_migration(mon: Monitor, req: MigrationRequest) -> MigrationReport:
    """Run one migration from the QEMU behind ``mon`` to ``req.dst_uri`` and report what happened."""
    await _configure(mon, req)
    progress = _Progress(started_s=time.time())
    await mon.execute("migrate", {"uri": req.dst_uri})
    final = await _drive(mon, req, progress)
    ended_s = time.time()
    status = final.get("status")
    outcome = {"completed": MigrationOutcome.COMPLETED, "cancelled": MigrationOutcome.CANCELLED}.get(
        str(status), MigrationOutcome.FAILED
    )
    ram = final.get("ram") or progress.last.get("ram", {})  # a cancelled migration reports none
    stop = mon.last("STOP", since_s=progress.started_s)
    # asked for postcopy is not in postcopy: a precopy that was already finishing completes as one
    entered_postcopy = mon.last("MIGRATION", since_s=progress.started_s, status="postcopy-active") is not None
    timeline = {"start": progress.started_s, "end": ended_s}
    if stop is not None:
        timeline["stop"] = stop.timestamp_s
    if progress.switched_s is not None:
        timeline["postcopy"] = progress.switched_s
    if "total-time" in final:
        timeline["qemu_total_s"] = final["total-time"] / 1000.0
    if "downtime" in final:
        timeline["qemu_downtime_s"] = final["downtime"] / 1000.0  # kept for comparison only
    return MigrationReport(
        vm=req.vm, method=req.method, outcome=outcome, total_s=ended_s - progress.started_s,
        downtime_s=None, bytes_sent=int(ram.get("transferred", 0)),
        rounds=int(ram.get("dirty-sync-count", 0)),
        converged=outcome is MigrationOutcome.COMPLETED,  # like the model: the move finished
        switched_to_postcopy=entered_postcopy and req.method is not MigrationMethod.POSTCOPY,
        detail=str(final.get("error-desc", status)), timeline=timeline,
        normal_bytes=int(ram.get("normal-bytes", 0)), postcopy_requests=int(ram.get("postcopy-requests", 0)),
    )
