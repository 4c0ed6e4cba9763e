"""Postcopy recovery, driven by the manager: a source agent's ``migration_paused`` (its postcopy lost
the link) -> the destination listens again (``recover_incoming``) -> the source resumes to that
address (``resume_migration``; the agent itself then retries QEMU's ``migrate`` with ``resume``
until the link is back). A call that fails (an agent unreachable over the management network) is
retried with backoff until the source reports ``migration_resumed`` or ``migration_finished``.

Never a cancel or a delete while both halves may live: during postcopy neither host holds the whole
guest. Only when the destination answers that its half is gone (its QEMU died: the VM is stopped or
absent there) is the VM recorded lost, with the cause, and the source's paused half removed (a
forced delete, which the source agent reports as a FAILED ``migration_finished``, never a clean
stop). A destination that does not answer for LOST_AFTER_S is recorded as a suspected loss, but
nothing is deleted: it may only be the management network that is down.

A dead SOURCE host (its QEMU and agent killed) sends no pause event. The forwarder reports every
agent that stops answering (``on_unreachable``); for each move from that host in flight, the
destination is asked, every WATCH_S, for its half: once it is ``postcopy-paused`` (its QEMU lost the
stream it was being fed) while the source still does not answer, the VM is recorded lost with that
cause. The destination's paused half is kept: only the source could complete it, if it comes back.

Each verdict is handed to ``on_lost`` (the forwarder turns it into a ``MigrationFinished`` with
outcome LOST for the control loop, which then counts the VM as gone and plans without it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from consolidator.manager.client import AgentError
from consolidator.protocol.schemas import EventKind, EventView, VmRunState

log = logging.getLogger(__name__)

BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)  # then every 8 s
LOST_AFTER_S = 5.0  # a destination silent this long during a paused postcopy: a suspected loss
WATCH_S = 0.25  # how often a silent source's moves are checked at their destinations


@dataclass(frozen=True, slots=True)
class Loss:
    vm: str
    src: str
    dst: str
    cause: str
    detected_s: float  # from the source's pause event (or its first silence) to the verdict
    certain: bool  # the surviving half's host answered that the guest cannot be completed
    wall_s: float = field(default_factory=time.time)  # when the verdict was reached


@dataclass(frozen=True, slots=True)
class Moving:
    """A move in flight as its source announced it (``migration_started``)."""

    src: str
    dst: str
    method: str
    start_wall_s: float


@dataclass
class RecoveryStats:
    """What the recoveries of a run did (for a fault run's summary)."""

    paused: int = 0
    resumed: int = 0
    paused_s: list[float] = field(default_factory=list)  # per recovered pause
    attempts: int = 0  # recover + resume pairs asked for
    lost: list[Loss] = field(default_factory=list)


class PostcopyRecovery:
    """Reacts to the agents' pause/resume events; one recovery task per paused VM."""

    def __init__(self, clients: dict[str, object],
                 on_lost: Callable[[Loss, Moving | None], None] | None = None) -> None:
        self._clients = clients
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._watches: dict[str, asyncio.Task[None]] = {}  # vm -> watch of a silent source
        self._on_lost = on_lost
        self.moving: dict[str, Moving] = {}
        self.reported_lost: set[str] = set()  # VMs with a LOST verdict (the source's later report is moot)
        self.stats = RecoveryStats()

    def on_event(self, event: EventView) -> None:
        if event.vm is None:
            return
        if event.kind is EventKind.MIGRATION_STARTED and event.src is not None and event.dst is not None:
            method = event.method.value if event.method is not None else "precopy"
            self.moving[event.vm] = Moving(event.src, event.dst, method, event.t_wall_s)
            self.reported_lost.discard(event.vm)  # a VM of that name moves again: a new guest
        elif event.kind is EventKind.MIGRATION_FINISHED:
            self.moving.pop(event.vm, None)
        if event.kind is EventKind.MIGRATION_PAUSED:
            self.stats.paused += 1
            if event.vm not in self._tasks and event.src is not None and event.dst is not None:
                self._tasks[event.vm] = asyncio.create_task(self._recover(event.vm, event.src, event.dst),
                                                            name=f"recover-{event.vm}")
        elif event.kind in (EventKind.MIGRATION_RESUMED, EventKind.MIGRATION_FINISHED):
            if event.kind is EventKind.MIGRATION_RESUMED:
                self.stats.resumed += 1
                if event.paused_s is not None:
                    self.stats.paused_s.append(event.paused_s)
            task = self._tasks.pop(event.vm, None)
            if task is not None:
                task.cancel()

    async def _recover(self, vm: str, src: str, dst: str) -> None:
        source, target = self._clients.get(src), self._clients.get(dst)
        recover = getattr(target, "recover_incoming", None)
        resume = getattr(source, "resume_migration", None)
        if recover is None or resume is None:
            log.error("postcopy of %s %s -> %s is paused and these hosts' engines cannot recover it", vm, src, dst)
            return
        attempt, paused_at, suspected = 0, time.monotonic(), False
        while True:
            self.stats.attempts += 1
            try:
                uri = await recover(vm)
                await resume(vm, uri, dst)
                log.info("postcopy of %s: %s listens again at %s; %s resumes there", vm, dst, uri, src)
                return  # the source agent retries QEMU's resume itself until the link is back
            except AgentError as exc:
                if exc.status is not None and await self._half_gone(target, vm):
                    await self._lost(vm, src, dst, f"the destination's half is gone ({exc.detail})",
                                     time.monotonic() - paused_at, source)
                    return
                if exc.status is None and not suspected and time.monotonic() - paused_at > LOST_AFTER_S:
                    suspected = True
                    self._record(Loss(vm, src, dst, f"destination {dst} does not answer: {exc.detail}",
                                      time.monotonic() - paused_at, certain=False))
                wait_s = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
                log.warning("postcopy recovery of %s (attempt %d) failed, again in %.1f s: %s", vm, attempt + 1,
                            wait_s, exc)
                attempt += 1
                await asyncio.sleep(wait_s)

    @staticmethod
    async def _half_gone(target: object, vm: str) -> bool:
        try:
            views = await target.list_vms()  # type: ignore[attr-defined]
        except AgentError:
            return False
        state = next((v.state for v in views if v.name == vm), None)
        return state not in (VmRunState.POSTCOPY, VmRunState.POSTCOPY_PAUSED, VmRunState.INCOMING)

    def _record(self, loss: Loss) -> None:
        self.stats.lost.append(loss)
        log.error("VM %s %s (%s -> %s, after %.2f s): %s", loss.vm, "lost" if loss.certain else "maybe lost",
                  loss.src, loss.dst, loss.detected_s, loss.cause)
        if loss.certain:
            self.reported_lost.add(loss.vm)
            moving = self.moving.pop(loss.vm, None)
            if self._on_lost is not None:
                self._on_lost(loss, moving)

    # --- a source that stops answering -------------------------------------------------------------

    def on_unreachable(self, host: str, detail: str) -> None:
        """An agent did not answer (the forwarder's long poll failed without a status)."""
        for vm, move in list(self.moving.items()):
            if move.src == host and vm not in self._watches and vm not in self._tasks:
                self._watches[vm] = asyncio.create_task(self._watch_source(vm, move, detail),
                                                        name=f"watch-{vm}")

    async def _watch_source(self, vm: str, move: Moving, detail: str) -> None:
        """Until the source answers again or the move ends: is the destination's half paused?"""
        source, target = self._clients.get(move.src), self._clients.get(move.dst)
        silent_since = time.monotonic()
        try:
            while self.moving.get(vm) == move:
                try:
                    await source.list_vms()  # type: ignore[attr-defined]
                    return  # it answers: its own events tell the rest (pause, recovery, outcome)
                except AgentError as exc:
                    if exc.status is not None:
                        return
                    detail = exc.detail
                state = await self._state(target, vm)
                if state is VmRunState.POSTCOPY_PAUSED:
                    self._record(Loss(vm, move.src, move.dst,
                                      f"source {move.src} does not answer ({detail}) and {move.dst}'s half of the "
                                      "postcopy is paused: the pages only the source held are gone",
                                      time.monotonic() - silent_since, certain=True))
                    return
                await asyncio.sleep(WATCH_S)
        finally:
            self._watches.pop(vm, None)

    @staticmethod
    async def _state(engine: object, vm: str) -> VmRunState | None:
        """The state of ``vm`` on that host, or None (absent, or the host does not answer)."""
        try:
            views = await engine.list_vms()  # type: ignore[attr-defined]
        except AgentError:
            return None
        return next((v.state for v in views if v.name == vm), None)

    async def _lost(self, vm: str, src: str, dst: str, cause: str, detected_s: float, source: object) -> None:
        """The guest is gone: record it and remove the source's paused half (never a clean stop)."""
        self._record(Loss(vm, src, dst, cause, detected_s, certain=True))
        with contextlib.suppress(AgentError):
            await source.destroy_vm(vm, force=True)  # type: ignore[attr-defined]

    async def stop(self) -> None:
        tasks = [*self._tasks.values(), *self._watches.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._watches.clear()
