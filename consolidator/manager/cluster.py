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
from dataclasses import dataclass
from typing import Protocol

from consolidator.agent.api.schemas import MigrateBody, VmBody
from consolidator.agent.hypervisor import OnTimeout
from consolidator.domain.events import Event, HostPowerChanged, MigrationFinished
from consolidator.domain.types import MigrationMethod, MigrationOutcome, PowerState
from consolidator.manager.client import AgentClient, AgentError

log = logging.getLogger(__name__)


class Waker(Protocol):
    """Wakes a suspended host (WoL, IPMI, Redfish, AMT, or an emulated host's wake endpoint)."""

    async def wake(self, host: str) -> None: ...


class AgentWaker:
    """Wakes an emulated lab host through its agent's /host/wake (real hosts need a power controller)."""

    def __init__(self, clients: dict[str, AgentClient]) -> None:
        self._clients = clients

    async def wake(self, host: str) -> None:
        await self._clients[host].wake()


@dataclass(frozen=True, slots=True)
class MigrationOptions:
    """How every migration of a run is asked for (DESIGN §4 defaults: 120 MB/s, 300 ms, 60 s)."""

    max_bandwidth_bytes_per_s: float | None = 120e6
    downtime_limit_s: float = 0.3
    timeout_s: float = 60.0
    on_timeout: OnTimeout = OnTimeout.CANCEL
    hybrid_precopy_rounds: int = 1


DEFAULT_OPTIONS = MigrationOptions()


class RemoteCluster:
    """Implements ``ClusterPort``: start_migration = destination prepare-incoming + source migrate."""

    def __init__(
        self,
        clients: dict[str, AgentClient],
        deliver: Callable[[Event], None],
        t0_wall_s: float,
        waker: Waker | None = None,
        options: MigrationOptions | None = None,
    ) -> None:
        self._clients = clients
        self._deliver = deliver
        self._t0 = t0_wall_s
        self._waker = waker if waker is not None else AgentWaker(clients)
        self._options = options if options is not None else DEFAULT_OPTIONS
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
        source, target = self._clients[src], self._clients[dst]
        prepared = False
        try:
            view = next((v for v in await source.list_vms() if v.name == vm), None)
            if view is None:
                raise AgentError(src, f"find {vm}", 404, "not on the source")
            uri = await target.prepare_incoming(VmBody.model_validate(view.config.model_dump()))
            prepared = True
            o = self._options
            await source.migrate(vm, MigrateBody(
                dst_uri=uri, dst_host=dst, method=method.value,  # type: ignore[arg-type]
                max_bandwidth_bytes_per_s=o.max_bandwidth_bytes_per_s, downtime_limit_s=o.downtime_limit_s,
                timeout_s=o.timeout_s, on_timeout=o.on_timeout, hybrid_precopy_rounds=o.hybrid_precopy_rounds,
            ))
        except AgentError as exc:
            log.warning("migration of %s %s -> %s not started: %s", vm, src, dst, exc)
            self.errors.append(str(exc))
            if prepared:
                await self._guard(target.destroy_vm(vm), f"clean up incoming {vm}")
            self.in_flight.pop(vm, None)
            self._deliver(MigrationFinished(t_s=self._now(), vm=vm, src=src, dst=dst, method=method,
                                            outcome=MigrationOutcome.FAILED, start_s=start, detail=str(exc)))

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
