"""Event forwarder: long-polls every agent's event stream and hands domain events to the loop.

Agents stamp events with wall-clock seconds; the forwarder turns them into run time (seconds since
the run's start) so the control loop sees the same events, in the same units, as in the simulator.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from consolidator.agent.api.schemas import EventView
from consolidator.domain.events import Event, HostPowerChanged, MigrationFinished, MigrationStarted
from consolidator.domain.types import MigrationMethod, MigrationOutcome
from consolidator.manager.client import AgentClient, AgentError

log = logging.getLogger(__name__)

POLL_WAIT_S = 10.0
RETRY_S = 1.0


def to_domain(event: EventView, t0_wall_s: float) -> Event | None:
    """The domain event for one agent event (times relative to ``t0_wall_s``), or None if unknown."""
    t_s = event.t_wall_s - t0_wall_s
    if event.kind == "host_power" and event.power_state is not None:
        return HostPowerChanged(t_s=t_s, host=event.host, state=event.power_state, detail=event.detail)
    if event.vm is None or event.src is None or event.dst is None:
        return None
    method = event.method or MigrationMethod.PRECOPY
    if event.kind == "migration_started":
        return MigrationStarted(t_s=t_s, vm=event.vm, src=event.src, dst=event.dst, method=method)
    if event.kind == "migration_finished":
        start = (event.start_wall_s if event.start_wall_s is not None else event.t_wall_s) - t0_wall_s
        return MigrationFinished(
            t_s=t_s, vm=event.vm, src=event.src, dst=event.dst, method=method,
            outcome=event.outcome or MigrationOutcome.FAILED, start_s=start,
            bytes_sent=float(event.bytes_sent),
            downtime_s=event.downtime_s or 0.0, rounds=event.rounds, detail=event.detail,
        )
    return None


class EventForwarder:
    """One long-poll task per agent; ``deliver`` is called in the event loop, in each agent's order."""

    def __init__(self, clients: dict[str, AgentClient], t0_wall_s: float,
                 deliver: Callable[[Event], None]) -> None:
        self._clients = clients
        self._t0 = t0_wall_s
        self._deliver = deliver
        self._tasks: list[asyncio.Task[None]] = []
        self.next_seq: dict[str, int] = {}

    async def start(self) -> None:
        """Skip each agent's history: only events from now on reach the loop."""
        for host, client in self._clients.items():
            self.next_seq[host] = (await client.events(after=0)).next_seq
            self._tasks.append(asyncio.create_task(self._follow(host, client), name=f"events-{host}"))

    async def _follow(self, host: str, client: AgentClient) -> None:
        while True:
            try:
                batch = await client.events(after=self.next_seq[host] - 1, timeout_s=POLL_WAIT_S)
            except AgentError as exc:  # a suspended real host does not answer; keep trying
                log.debug("events of %s: %s", host, exc)
                await asyncio.sleep(RETRY_S)
                continue
            for event in batch.events:
                domain = to_domain(event, self._t0)
                if domain is not None:
                    self._deliver(domain)
            self.next_seq[host] = batch.next_seq

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
