"""Event forwarder: long-polls every agent's event stream and hands domain events to the loop.

Agents stamp events with wall-clock seconds; the forwarder turns them into run time (seconds since
the run's start) so the control loop sees the same events, in the same units, as in the simulator.

Downtime (DESIGN §5): the source agent cannot see the destination's RESUME, so its
``migration_finished`` carries only its STOP mark (``stop_wall_s``). Before handing a completed
migration to the loop, the forwarder asks the destination agent for its RESUME mark
(``GET /vms/{vm}/incoming``) and sets ``downtime_s = resume - stop``. Both are wall-clock stamps of
two QEMU processes: on one machine the same clock; across machines only as good as the clocks'
synchronisation (NTP/PTP). When a mark is missing the downtime stays 0 and the reason is logged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable

from consolidator.domain.events import Event, HostPowerChanged, MigrationFinished, MigrationStarted
from consolidator.domain.types import MigrationMethod, MigrationOutcome
from consolidator.manager.client import AgentError
from consolidator.manager.engine import Engine
from consolidator.manager.recovery import Loss, Moving, PostcopyRecovery
from consolidator.protocol.schemas import EventKind, EventView

log = logging.getLogger(__name__)

POLL_WAIT_S = 10.0
RETRY_S = 1.0
MARKS_WAIT_S = 2.0  # at most this long a completed migration waits for the destination's RESUME mark
MARKS_RETRY_S = 0.05


def to_domain(event: EventView, t0_wall_s: float) -> Event | None:
    """The domain event for one agent event (times relative to ``t0_wall_s``), or None if unknown."""
    t_s = event.t_wall_s - t0_wall_s
    if event.kind is EventKind.HOST_POWER and event.power_state is not None:
        return HostPowerChanged(t_s=t_s, host=event.host, state=event.power_state, detail=event.detail)
    if event.vm is None or event.src is None or event.dst is None:
        return None
    method = event.method or MigrationMethod.PRECOPY
    if event.kind is EventKind.MIGRATION_STARTED:
        return MigrationStarted(t_s=t_s, vm=event.vm, src=event.src, dst=event.dst, method=method)
    if event.kind is EventKind.MIGRATION_FINISHED:
        start = (event.start_wall_s if event.start_wall_s is not None else event.t_wall_s) - t0_wall_s
        return MigrationFinished(
            t_s=t_s, vm=event.vm, src=event.src, dst=event.dst, method=method,
            outcome=event.outcome or MigrationOutcome.FAILED, start_s=start,
            bytes_sent=float(event.bytes_sent),
            downtime_s=event.downtime_s or 0.0, rounds=event.rounds, detail=event.detail,
        )
    return None


async def measure_downtime(dst: Engine, vm: str, stop_wall_s: float | None,
                           wait_s: float = MARKS_WAIT_S) -> tuple[float | None, str]:
    """Downtime of a completed move: the destination's RESUME - the source's STOP (wall clocks).

    Polls the destination's marks until RESUME is seen (a precopy guest resumes there just after the
    source finishes sending) or ``wait_s`` has passed. Returns ``(downtime, "")``, or ``(None, why)``.
    """
    if stop_wall_s is None:
        return None, "the source reported no STOP mark"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        try:
            marks = await dst.incoming_marks(vm, timeout_s=max(0.1, deadline - loop.time()))
        except AgentError as exc:
            return None, f"no marks from the destination: {exc}"
        if marks.resume is not None:
            break
        if loop.time() + MARKS_RETRY_S > deadline:
            return None, f"the destination saw no RESUME within {wait_s:g} s"
        await asyncio.sleep(MARKS_RETRY_S)
    downtime = marks.resume - stop_wall_s
    if downtime < 0:
        return None, (f"destination RESUME {-downtime:.3f} s before source STOP: "
                      "are the hosts' clocks synchronised?")
    return downtime, ""


class EventForwarder:
    """One long-poll task per agent; ``deliver`` is called in the event loop, in each agent's order."""

    def __init__(self, clients: dict[str, Engine], t0_wall_s: float,
                 deliver: Callable[[Event], None], marks_wait_s: float = MARKS_WAIT_S) -> None:
        self._clients = clients
        self._t0 = t0_wall_s
        self._deliver = deliver
        self._marks_wait_s = marks_wait_s
        self._tasks: list[asyncio.Task[None]] = []
        self.next_seq: dict[str, int] = {}
        # a paused postcopy is recovered, never dropped; a lost one reaches the loop as LOST
        self.recovery = PostcopyRecovery(dict(clients), on_lost=self._lost)

    async def start(self) -> None:
        """Skip each agent's history: only events from now on reach the loop."""
        await self.mark()
        self.follow()

    async def mark(self) -> None:
        """Remember where each agent's event log ends now; ``follow`` delivers what comes after. A
        restarting manager marks before it reads the cluster, so no event between the two is lost.
        An agent that does not answer is marked when it first answers (its past is skipped)."""
        async def one(host: str, client: Engine) -> None:
            try:
                self.next_seq[host] = (await client.events(after=0)).next_seq
            except AgentError as exc:
                log.warning("events of %s: %s", host, exc)

        await asyncio.gather(*(one(h, c) for h, c in self._clients.items()))

    def follow(self) -> None:
        """Start one long-poll task per agent (after ``mark``)."""
        for host, client in self._clients.items():
            self._tasks.append(asyncio.create_task(self._follow(host, client), name=f"events-{host}"))

    async def _follow(self, host: str, client: Engine) -> None:
        while True:
            try:
                if host not in self.next_seq:
                    self.next_seq[host] = (await client.events(after=0)).next_seq
                batch = await client.events(after=self.next_seq[host] - 1, timeout_s=POLL_WAIT_S)
            except AgentError as exc:  # a suspended real host does not answer; keep trying
                log.debug("events of %s: %s", host, exc)
                if exc.status is None:
                    self.recovery.on_unreachable(host, exc.detail)  # a dead source mid-postcopy?
                await asyncio.sleep(RETRY_S)
                continue
            for event in batch.events:
                if event.kind is EventKind.MIGRATION_FINISHED and event.vm in self.recovery.reported_lost:
                    self.recovery.reported_lost.discard(event.vm)  # already handed on as LOST
                    self.recovery.on_event(event)
                    continue
                self.recovery.on_event(event)
                domain = to_domain(event, self._t0)
                if isinstance(domain, MigrationFinished):
                    # awaited here, in this agent's own task: the control loop ticks on meanwhile,
                    # and this agent's later events still reach it in order
                    domain = await self._with_downtime(domain, event)
                if domain is not None:
                    self._deliver(domain)
            self.next_seq[host] = batch.next_seq

    def _lost(self, loss: Loss, move: Moving | None) -> None:
        """The recovery's verdict, to the loop: the move ended and the guest is gone."""
        start = move.start_wall_s if move is not None else loss.wall_s
        method = MigrationMethod(move.method) if move is not None else MigrationMethod.POSTCOPY
        self._deliver(MigrationFinished(t_s=loss.wall_s - self._t0, vm=loss.vm, src=loss.src, dst=loss.dst,
                                        method=method, outcome=MigrationOutcome.LOST, start_s=start - self._t0,
                                        detail=loss.cause))

    async def _with_downtime(self, finished: MigrationFinished, event: EventView) -> MigrationFinished:
        """A completed migration with its downtime measured across both hosts (see module doc)."""
        if finished.outcome is not MigrationOutcome.COMPLETED or event.downtime_s is not None:
            return finished  # no move, or a driver that measured the downtime itself
        dst = self._clients.get(finished.dst)
        if dst is None:
            why = f"no client for destination {finished.dst}"
            downtime = None
        else:
            downtime, why = await measure_downtime(dst, finished.vm, event.stop_wall_s, self._marks_wait_s)
        if downtime is None:
            log.warning("downtime of %s %s -> %s unknown (left 0): %s", finished.vm, finished.src,
                        finished.dst, why)
            return finished
        return dataclasses.replace(finished, downtime_s=downtime)

    async def stop(self) -> None:
        await self.recovery.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
