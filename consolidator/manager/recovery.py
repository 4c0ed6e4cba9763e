"""Postcopy recovery, driven by the manager: a source agent's ``migration_paused`` (its postcopy lost
the link) -> the destination listens again (``recover_incoming``) -> the source resumes to that
address (``resume_migration``; the agent itself then retries QEMU's ``migrate`` with ``resume``
until the link is back). A call that fails (an agent unreachable over the management network) is
retried with backoff until the source reports ``migration_resumed`` or ``migration_finished``.

Never a cancel or a delete: during postcopy neither host holds the whole guest.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from consolidator.agent.api.schemas import EventView
from consolidator.manager.client import AgentError

log = logging.getLogger(__name__)

BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)  # then every 8 s


@dataclass
class RecoveryStats:
    """What the recoveries of a run did (for a fault run's summary)."""

    paused: int = 0
    resumed: int = 0
    paused_s: list[float] = field(default_factory=list)  # per recovered pause
    attempts: int = 0  # recover + resume pairs asked for


class PostcopyRecovery:
    """Reacts to the agents' pause/resume events; one recovery task per paused VM."""

    def __init__(self, clients: dict[str, object]) -> None:
        self._clients = clients
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.stats = RecoveryStats()

    def on_event(self, event: EventView) -> None:
        if event.vm is None:
            return
        if event.kind == "migration_paused":
            self.stats.paused += 1
            if event.vm not in self._tasks and event.src is not None and event.dst is not None:
                self._tasks[event.vm] = asyncio.create_task(self._recover(event.vm, event.src, event.dst),
                                                            name=f"recover-{event.vm}")
        elif event.kind in ("migration_resumed", "migration_finished"):
            if event.kind == "migration_resumed":
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
        attempt = 0
        while True:
            self.stats.attempts += 1
            try:
                uri = await recover(vm)
                await resume(vm, uri, dst)
                log.info("postcopy of %s: %s listens again at %s; %s resumes there", vm, dst, uri, src)
                return  # the source agent retries QEMU's resume itself until the link is back
            except AgentError as exc:
                wait_s = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
                log.warning("postcopy recovery of %s (attempt %d) failed, again in %.1f s: %s", vm, attempt + 1,
                            wait_s, exc)
                attempt += 1
                await asyncio.sleep(wait_s)

    async def stop(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()
