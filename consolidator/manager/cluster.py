"""RemoteCluster: the control loop's ClusterPort over host agents.

Each port call returns at once and starts an asyncio task; the outcome comes back as events from
the agents' streams (through the EventForwarder). A step that fails before the source agent has
accepted the migration (an unreachable or refusing agent) is reported here as a FAILED
MigrationFinished, so the controller never waits for an event that will not come.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from consolidator.domain.events import Event, HostPowerChanged, MigrationFinished
from consolidator.domain.types import MigrationMethod, MigrationOutcome, PowerState
from consolidator.manager.client import AgentError
from consolidator.manager.engine import Engine
from consolidator.protocol.migration import DEFAULT_OPTIONS, MigrationOptions, OnTimeout

__all__ = ["AgentWaker", "RemoteCluster", "Waker"]

log = logging.getLogger(__name__)


class Waker(Protocol):
    """Wakes a suspended host (WoL, IPMI, Redfish, AMT, or an emulated host's wake endpoint)."""

    async def wake(self, host: str) -> None: ...


class AgentWaker:
    """Wakes an emulated lab host through its agent's /host/wake (real hosts need a power controller)."""

    def __init__(self, clients: dict[str, Engine]) -> None:
        self._clients = clients

    async def wake(self, host: str) -> None:
        await self._clients[host].wake()




class RemoteCluster:
    """Implements ``ClusterPort`` over one engine per host (``Engine.migrate_to`` and friends)."""

    def __init__(
        self,
        clients: dict[str, Engine],
        deliver: Callable[[Event], None],
        t0_wall_s: float,
        waker: Waker | None = None,
        options: MigrationOptions | None = None,
        never_postcopy: frozenset[str] = frozenset(),
    ) -> None:
        """``never_postcopy``: VMs whose precopy must not switch to postcopy at its time-out (the rules
        gate already sends them by precopy; ``on_timeout = "postcopy"`` becomes a cancel for them)."""
        self._clients = clients
        self._deliver = deliver
        self._t0 = t0_wall_s
        self._waker = waker if waker is not None else AgentWaker(clients)
        self._options = options if options is not None else DEFAULT_OPTIONS
        self._never_postcopy = never_postcopy
        self._tasks: set[asyncio.Task[None]] = set()
        self.in_flight: dict[str, tuple[str, str]] = {}  # vm -> (src, dst)
        self.errors: list[str] = []

    def _now(self) -> float:
        return time.time() - self._t0

    def _spawn(self, work: Awaitable[None], name: str) -> None:
        task = asyncio.ensure_future(work)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- ClusterPort ---------------------------------------------------------------------------

    def start_migration(self, vm: str, src: str, dst: str, method: MigrationMethod) -> None:
        self.in_flight[vm] = (src, dst)
        self._spawn(self._migrate(vm, src, dst, method), f"migrate-{vm}")

    def cancel_migration(self, vm: str) -> None:
        if vm in self.in_flight:
            src, _ = self.in_flight[vm]
            self._spawn(self._guard(self._clients[src].cancel_migration(vm), f"cancel {vm}"), f"cancel-{vm}")

    def suspend_host(self, host: str) -> None:
        self._spawn(self._suspend(host), f"suspend-{host}")

    def wake_host(self, host: str) -> None:
        self._spawn(self._wake(host), f"wake-{host}")

    # --- the work ------------------------------------------------------------------------------

    async def _migrate(self, vm: str, src: str, dst: str, method: MigrationMethod) -> None:
        start = self._now()
        try:
            await self._clients[src].migrate_to(vm, self._clients[dst], method, self._options_for(vm))
        except AgentError as exc:
            log.warning("migration of %s %s -> %s not started: %s", vm, src, dst, exc)
            self.errors.append(str(exc))
            self.in_flight.pop(vm, None)
            self._deliver(MigrationFinished(t_s=self._now(), vm=vm, src=src, dst=dst, method=method,
                                            outcome=MigrationOutcome.FAILED, start_s=start, detail=str(exc)))

    def _options_for(self, vm: str) -> MigrationOptions:
        if vm in self._never_postcopy and self._options.on_timeout is OnTimeout.POSTCOPY:
            return self._options.model_copy(update={"on_timeout": OnTimeout.CANCEL})
        return self._options

    def on_event(self, event: Event) -> None:
        """Called for every forwarded event: a migration that did not complete leaves an incoming
        QEMU on its destination, which is destroyed so the VM can be sent again later."""
        if isinstance(event, MigrationFinished):
            self.in_flight.pop(event.vm, None)
            if event.outcome is MigrationOutcome.CANCELLED and event.dst in self._clients:
                self._spawn(self._guard(self._clients[event.dst].destroy_vm(event.vm),
                                        f"clean up incoming {event.vm}"), f"cleanup-{event.vm}")

    async def _suspend(self, host: str) -> None:
        try:
            await self._clients[host].suspend()
        except AgentError as exc:
            self.errors.append(str(exc))
            self._deliver(HostPowerChanged(t_s=self._now(), host=host, state=PowerState.ON,
                                           detail=f"suspend refused: {exc.detail}"))

    async def _wake(self, host: str) -> None:
        try:
            await self._waker.wake(host)
        except Exception as exc:  # any waker (IPMI, Redfish, ...) failing leaves the host asleep
            log.warning("waking %s failed: %s", host, exc)
            self.errors.append(f"wake {host}: {exc}")
            # FAILED, as in the simulator: moves waiting for this host are dropped, not retried forever
            self._deliver(HostPowerChanged(t_s=self._now(), host=host, state=PowerState.FAILED,
                                           detail=f"wake failed: {exc}"))

    async def _guard(self, work: Awaitable[None], what: str) -> None:
        try:
            await work
        except AgentError as exc:
            log.warning("%s: %s", what, exc)
            self.errors.append(str(exc))

    async def drain(self) -> None:
        """Wait for the port calls still running (at the end of a run)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
