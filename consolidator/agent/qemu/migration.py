"""Source side of one live migration over QMP: precopy, postcopy or hybrid, with a timeout.

- precopy: ``migrate``; QEMU switches over when the dirty remainder fits the downtime limit.
- postcopy: ``postcopy-ram`` on both sides, ``migrate-start-postcopy`` at once: device state moves,
  the guest runs at the destination and pulls the pages it faults on.
- hybrid: postcopy after ``hybrid_precopy_rounds`` full precopy passes (``dirty-sync-count``).
- timeout (precopy): ``migrate_cancel`` (the guest keeps running at the source) or switch to postcopy.
- a broken link during postcopy: QEMU's ``postcopy-paused`` (QMP MIGRATION event). A hung link (no
  byte moves for ``STALL_S``, TCP does not notice for minutes) is paused on purpose with
  ``migrate-pause``. A shorter outage is left to TCP, which resumes the same connection by itself
  and needs nothing from the destination's monitor: under TCG a destination vCPU waiting for a
  missing page can hold QEMU's big lock, and its monitor then answers nothing (``migrate-recover``
  included) until that page arrives. The migration then waits, never cancelled (neither side holds the whole guest),
  until ``resume_to`` names the destination's new listening address (``migrate-recover`` there), and
  retries ``migrate`` with ``resume`` on it with backoff until QEMU is back in ``postcopy-active``.

Postcopy uses QEMU's ``postcopy-preempt`` (QEMU 8.0+) where the driver allows it and QEMU offers it: a
second channel carries the pages the destination faulted on, so they do not queue behind the
background copy. Both ends must agree (a destination waiting for a preempt channel the source never
opens does not finish), so it is a host setting of the driver, the same on every host of a cluster.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from consolidator.agent.hypervisor import (
    DriverError,
    MigrationObserver,
    MigrationReport,
    MigrationRequest,
    PostcopyFaults,
)
from consolidator.agent.qemu.monitor import Monitor
from consolidator.agent.qemu.status import MigrationStatus, migration_status
from consolidator.domain.types import MigrationMethod, MigrationOutcome
from consolidator.protocol.migration import OnTimeout

log = logging.getLogger(__name__)

POLL_S = 0.05
UNLIMITED_BYTES_PER_S = 100e9  # "no cap": the link decides
STALL_S = 10.0  # postcopy-active with no byte sent for this long: the link is hung, pause it
RESUME_BACKOFF_S = (0.5, 1.0, 2.0, 4.0)  # then every 4 s while the link stays down
RESUME_ATTEMPT_S = 10.0  # a resume stuck connecting this long is paused and tried again

# called with "paused" or "resumed" and details; the agent turns them into events
Observer = MigrationObserver


@dataclass
class MigrationProgress:
    """The state of one migration that ``run_migration`` drives and ``resume_to`` steers."""

    started_s: float
    switched_s: float | None = None
    last: dict[str, Any] = field(default_factory=dict)
    moved_bytes: int = -1  # transferred at the last change, for the stall check
    moved_s: float = 0.0
    paused_s: float | None = None  # wall clock of the current pause
    pauses: list[tuple[float, float]] = field(default_factory=list)  # (paused, recovered) wall clocks
    resume_uri: str | None = None  # set by the agent once the destination listens again
    resume_attempts: int = 0
    attempt_s: float = 0.0
    observer: Observer | None = None


PREEMPT = "postcopy-preempt"
BLOCKTIME = "postcopy-blocktime"


async def offered_capabilities(mon: Monitor) -> frozenset[str]:
    """The migration capabilities this QEMU knows (``query-migrate-capabilities``)."""
    caps: list[dict[str, Any]] = await mon.execute("query-migrate-capabilities")
    return frozenset(str(c["capability"]) for c in caps)


def capabilities(postcopy: bool, incoming: bool = False, preempt: bool = False) -> list[dict[str, Any]]:
    """Migration capabilities. A destination always enables postcopy-ram (it does not know the method)
    and postcopy-blocktime, so it can tell how long its vCPUs waited on remote page faults.
    ``preempt``: this QEMU offers postcopy-preempt and the host uses it: on with postcopy-ram, and
    explicitly off without it (QEMU refuses postcopy-ram off while preempt stays on from an earlier
    incoming postcopy: a VM that arrived by postcopy could not leave by precopy)."""
    caps = [{"capability": "events", "state": True}, {"capability": "postcopy-ram", "state": postcopy}]
    if incoming:
        caps.append({"capability": BLOCKTIME, "state": True})
    if preempt:
        caps.append({"capability": PREEMPT, "state": postcopy})
    return caps


def uses_postcopy(req: MigrationRequest) -> bool:
    postcopy_methods = (MigrationMethod.POSTCOPY, MigrationMethod.HYBRID)
    return req.method in postcopy_methods or req.options.on_timeout is OnTimeout.POSTCOPY


async def _configure(mon: Monitor, req: MigrationRequest, preempt: bool) -> None:
    caps = capabilities(uses_postcopy(req), preempt=preempt)
    await mon.execute("migrate-set-capabilities", {"capabilities": caps})
    bw = int(req.options.max_bandwidth_bytes_per_s or UNLIMITED_BYTES_PER_S)
    await mon.execute("migrate-set-parameters", {
        "downtime-limit": max(1, int(req.options.downtime_limit_s * 1000)),
        "max-bandwidth": bw,
        "max-postcopy-bandwidth": bw,
    })


async def _switch_to_postcopy(mon: Monitor, progress: MigrationProgress, why: str) -> None:
    log.info("%s: switching to postcopy (%s)", mon.name, why)
    await mon.execute("migrate-start-postcopy")
    progress.switched_s = time.time()


async def _cancel(mon: Monitor, timeout_s: float = 30.0) -> dict[str, Any]:
    await mon.execute("migrate_cancel")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info: dict[str, Any] = await mon.execute("query-migrate")
        if migration_status(info).final:
            return info
        await asyncio.sleep(POLL_S)
    raise DriverError(f"{mon.name}: migration did not stop within {timeout_s} s of migrate_cancel")


async def _notify(progress: MigrationProgress, what: str, **details: Any) -> None:
    if progress.observer is not None:
        try:
            await progress.observer(what, details)
        except Exception:  # an observer's failure must not stop the migration it watches
            log.exception("migration observer failed on %s", what)


async def _watch_postcopy(mon: Monitor, progress: MigrationProgress, status: MigrationStatus, moved: int) -> None:
    """Pause a hung link, tell of pauses and recoveries, retry the resume while paused."""
    now = time.time()
    if status is MigrationStatus.POSTCOPY_ACTIVE:
        if progress.paused_s is not None:  # recovered
            progress.pauses.append((progress.paused_s, now))
            log.info("%s: postcopy recovered after %.2f s paused", mon.name, now - progress.paused_s)
            await _notify(progress, "resumed", paused_s=now - progress.paused_s, recovered_wall_s=now)
            progress.paused_s, progress.resume_uri, progress.resume_attempts = None, None, 0
        if moved != progress.moved_bytes:
            progress.moved_bytes, progress.moved_s = moved, now
        elif now - progress.moved_s > STALL_S:
            log.warning("%s: no byte moved for %.1f s in postcopy: pausing the hung link", mon.name, STALL_S)
            try:
                await mon.execute("migrate-pause")
            except DriverError as exc:  # it completed or paused meanwhile: the next poll sees which
                log.info("%s: migrate-pause: %s", mon.name, exc)
            progress.moved_s = now
        return
    if progress.paused_s is None:
        progress.paused_s = now
        event = mon.last("MIGRATION", status=MigrationStatus.POSTCOPY_PAUSED)
        log.warning("%s: postcopy paused (link broken); waiting for the destination to listen again", mon.name)
        await _notify(progress, "paused", paused_wall_s=event.timestamp_s if event else now)
    if progress.resume_uri is None:
        return
    if status is MigrationStatus.POSTCOPY_PAUSED:
        wait_s = RESUME_BACKOFF_S[min(progress.resume_attempts, len(RESUME_BACKOFF_S) - 1)]
        if progress.resume_attempts == 0 or now - progress.attempt_s >= wait_s:
            progress.resume_attempts += 1
            progress.attempt_s = now
            log.info("%s: resume attempt %d to %s", mon.name, progress.resume_attempts, progress.resume_uri)
            try:
                await mon.execute("migrate", {"uri": progress.resume_uri, "resume": True})
            except DriverError as exc:  # QEMU refused this attempt; the next one comes later
                log.info("%s: resume attempt failed: %s", mon.name, exc)
    elif now - progress.attempt_s > RESUME_ATTEMPT_S:  # stuck connecting to a dead address
        try:
            await mon.execute("migrate-pause")
        except DriverError as exc:
            log.info("%s: cannot pause a stuck resume: %s", mon.name, exc)
        progress.attempt_s = now


async def _drive(mon: Monitor, req: MigrationRequest, progress: MigrationProgress) -> dict[str, Any]:
    """Poll query-migrate until a final state, acting on hybrid rounds, the timeout and pauses."""
    if req.method is MigrationMethod.POSTCOPY and progress.switched_s is None:
        await _switch_to_postcopy(mon, progress, "postcopy from the start")
    while True:
        info: dict[str, Any] = await mon.execute("query-migrate")
        progress.last = info
        status = migration_status(info)
        if status.final:
            return info
        if status is MigrationStatus.POSTCOPY_ACTIVE or status.paused:
            await _watch_postcopy(mon, progress, status, int(info.get("ram", {}).get("transferred", 0)))
            await asyncio.sleep(POLL_S)
            continue
        in_postcopy = progress.switched_s is not None or status.postcopy
        syncs = int(info.get("ram", {}).get("dirty-sync-count", 0))
        if req.method is MigrationMethod.HYBRID and not in_postcopy and syncs > req.options.hybrid_precopy_rounds:
            await _switch_to_postcopy(mon, progress, f"after {syncs - 1} precopy passes")
        elif not in_postcopy and time.time() - progress.started_s > req.options.timeout_s:
            if req.options.on_timeout is OnTimeout.POSTCOPY:
                await _switch_to_postcopy(mon, progress, f"timeout {req.options.timeout_s} s")
            else:
                log.info("%s: precopy did not converge in %s s, cancelling", mon.name, req.options.timeout_s)
                return await _cancel(mon)
        await asyncio.sleep(POLL_S)


def new_progress(started_s: float, observer: Observer | None = None) -> MigrationProgress:
    return MigrationProgress(started_s=started_s, observer=observer)


def resume_to(progress: MigrationProgress, dst_uri: str) -> None:
    """A paused postcopy: the destination listens again at ``dst_uri``; the driving loop retries there."""
    progress.resume_uri, progress.resume_attempts = dst_uri, 0


async def run_migration(mon: Monitor, req: MigrationRequest, progress: MigrationProgress,
                        attach: bool = False, preempt: bool = False) -> MigrationReport:
    """Run one migration from the QEMU behind ``mon`` to ``req.dst_uri`` and report what happened.

    ``attach``: the migration was started by an earlier agent (now restarted); only watch it on.
    ``preempt``: postcopy-preempt for a move that may use postcopy (the destination must have it too)."""
    offered, preempt = preempt, preempt and uses_postcopy(req)
    if attach:
        status = migration_status(await mon.execute("query-migrate"))
        if status is MigrationStatus.NONE:
            raise DriverError(f"{mon.name}: the migration was never started in QEMU")
        if status.postcopy:
            progress.switched_s = progress.started_s
    else:
        await _configure(mon, req, offered)  # a precopy turns preempt off explicitly (see capabilities)
        await mon.execute("migrate", {"uri": req.dst_uri})
    final = await _drive(mon, req, progress)
    ended_s = time.time()
    status = migration_status(final)
    outcome = status.outcome()
    ram = final.get("ram") or progress.last.get("ram", {})  # a cancelled migration reports none
    stop = mon.last("STOP", since_s=progress.started_s)
    # asked for postcopy is not in postcopy: a precopy that was already finishing completes as one
    entered_postcopy = mon.last("MIGRATION", since_s=progress.started_s,
                                status=MigrationStatus.POSTCOPY_ACTIVE) is not None
    timeline = {"start": progress.started_s, "end": ended_s}
    if stop is not None:
        timeline["stop"] = stop.timestamp_s
    if progress.switched_s is not None:
        timeline["postcopy"] = progress.switched_s
    if "total-time" in final:
        timeline["qemu_total_s"] = final["total-time"] / 1000.0
    if "downtime" in final:
        timeline["qemu_downtime_s"] = final["downtime"] / 1000.0  # kept for comparison only
    if progress.pauses:
        timeline["paused_s"] = sum(end - begin for begin, end in progress.pauses)
        timeline["recoveries"] = float(len(progress.pauses))
    return MigrationReport(
        vm=req.vm, method=req.method, outcome=outcome, total_s=ended_s - progress.started_s,
        downtime_s=None, bytes_sent=int(ram.get("transferred", 0)),
        rounds=int(ram.get("dirty-sync-count", 0)),
        converged=outcome is MigrationOutcome.COMPLETED,  # like the model: the move finished
        switched_to_postcopy=entered_postcopy and req.method is not MigrationMethod.POSTCOPY,
        detail=str(final.get("error-desc", status)), timeline=timeline,
        normal_bytes=int(ram.get("normal-bytes", 0)), postcopy_requests=int(ram.get("postcopy-requests", 0)),
        postcopy_preempt=preempt,
    )


def postcopy_faults(info: dict[str, Any], preempt: bool) -> PostcopyFaults | None:
    """QEMU's fault statistics in a destination's query-migrate answer (ms and ns there), or None when
    it has none (postcopy-blocktime off, or no postcopy phase yet)."""
    if "postcopy-blocktime" not in info:
        return None
    latency_ns = info.get("postcopy-latency")  # QEMU 10.1+
    return PostcopyFaults(
        blocktime_s=info["postcopy-blocktime"] / 1000.0,
        vcpu_blocktime_s=tuple(ms / 1000.0 for ms in info.get("postcopy-vcpu-blocktime", [])),
        latency_s=None if latency_ns is None else latency_ns / 1e9, preempt=preempt)
