"""The host agent: one host's VMs (through a VM driver), its power state and its event stream.

The HTTP layer (``agent/api/app.py``) only authenticates, validates and translates; every
decision about the host lives here. Errors: ``NotFound`` -> 404, ``Conflict`` -> 409,
``Forbidden`` -> 403 (a migration to a destination the configuration does not name).

Lifecycles: a VM name is claimed for the whole of a create or prepare-incoming, so a second one
for the same name is refused (never two QEMU processes for one name). A postcopy whose link broke
is paused, never destroyed: delete, cancel and suspend are refused while a VM's memory is split.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Iterator
from typing import Any

from consolidator.agent.api import procstats
from consolidator.agent.api.config import AgentConfig
from consolidator.agent.api.errors import Conflict, Forbidden, NotFound
from consolidator.agent.hypervisor import DriverError, Hypervisor, InPostcopy, MigrationReport, MigrationRequest, VmInfo
from consolidator.agent.power_state import HostPower
from consolidator.domain.types import MigrationMethod, MigrationOutcome, PowerState
from consolidator.protocol.eventlog import EventLog
from consolidator.protocol.schemas import (
    EventKind,
    GuestQueueView,
    HostStatsView,
    IncomingMarksView,
    LoadBody,
    MigrateBody,
    MigrationAccepted,
    ResumeBody,
    VmBody,
    VmRunState,
    VmStatsView,
    VmView,
)

log = logging.getLogger(__name__)
GUEST_STATS_TIMEOUT_S = 1.0


class HostAgent:
    """Owns one host: validates requests against its state, drives the VM driver, emits events."""

    def __init__(self, config: AgentConfig, driver: Hypervisor) -> None:
        self.config = config
        self.driver = driver
        self.events = EventLog(config.name, path=config.state_dir / "events.jsonl")
        self.power = HostPower(config, self.events)
        self._migrations: dict[str, asyncio.Task[None]] = {}
        self._claims: set[str] = set()  # names with a create or prepare-incoming under way
        self._moving: dict[str, tuple[str, MigrationMethod, float]] = {}  # vm -> (dst, method, start)
        self._cpu_before = procstats.read_cpu_times()
        self._guest_marks: dict[str, tuple[float, float]] = {}
        self._guest_loads: dict[str, float] = {}
        self._guest_queues: dict[str, GuestQueueView] = {}  # the latest reading of each guest's queue

    async def start(self) -> list[VmInfo]:
        """Adopt the QEMU processes that outlived a previous agent and watch on their migrations:
        each outcome (completed, failed, still running, paused) is read from QEMU, not guessed."""
        adopted = await self.driver.adopt()
        if adopted:
            log.info("adopted %d running VM(s): %s", len(adopted), ", ".join(v.name for v in adopted))
        for request, started_s in self.driver.pending_migrations():
            log.info("watching on the migration of %s started at %.3f", request.vm, started_s)
            self._migrations[request.vm] = asyncio.create_task(
                self._run_migration(request, self._peer_name(request.dst_uri), started_s, attach=True))
        return adopted

    async def close(self) -> None:
        """Stop watching migrations and close QMP connections; QEMU processes keep running."""
        for task in self._migrations.values():
            task.cancel()
        await self.power.close()
        await self.driver.close()

    # --- VMs -------------------------------------------------------------------------------

    async def _vm(self, name: str) -> VmInfo:
        for info in await self.driver.list_vms():
            if info.name == name:
                return info
        raise NotFound(f"no VM named {name!r} on host {self.config.name}")

    async def _check_new_vm(self, body: VmBody) -> None:
        self.power.require_on()
        if body.mem_mib > self.config.max_vm_mem_mib:
            raise Conflict(f"mem_mib {body.mem_mib} exceeds this host's max_vm_mem_mib "
                           f"{self.config.max_vm_mem_mib}")
        vms = await self.driver.list_vms()
        if any(v.name == body.name for v in vms):
            raise Conflict(f"a VM named {body.name!r} already exists on host {self.config.name}")
        if len(vms) >= self.config.max_vms:
            raise Conflict(f"host {self.config.name} already runs max_vms={self.config.max_vms} VMs")

    @contextlib.contextmanager
    def _claim(self, name: str) -> Iterator[None]:
        """One lifecycle per name: taken before the first await, so a concurrent call sees it."""
        if name in self._claims:
            raise Conflict(f"VM {name!r} is being created or received on host {self.config.name}")
        self._claims.add(name)
        try:
            yield
        finally:
            self._claims.discard(name)

    def _require_unclaimed(self, name: str) -> None:
        if name in self._claims:
            raise Conflict(f"VM {name!r} is being created or received; try again when it is up")

    async def create_vm(self, body: VmBody) -> VmView:
        with self._claim(body.name):
            await self._check_new_vm(body)
            return (await self.driver.create_vm(body.to_config())).view()

    async def prepare_incoming(self, body: VmBody) -> str:
        with self._claim(body.name):
            await self._check_new_vm(body)
            return await self.driver.prepare_incoming(body.to_config(), self.config.migration_listen_host)

    async def destroy_vm(self, name: str, force: bool = False) -> None:
        self._require_unclaimed(name)
        info = await self._vm(name)
        task = self._migrations.get(name)
        if task is not None and not task.done():
            if not (force and info.state is VmRunState.POSTCOPY_PAUSED):
                raise Conflict(f"VM {name!r} is migrating; cancel the migration first")
            await self._abandon(name, task)  # a paused postcopy whose destination half is gone
        elif info.state in (VmRunState.POSTCOPY, VmRunState.POSTCOPY_PAUSED) and not force:
            raise Conflict(f"VM {name!r} is {info.state.value}: part of its memory is still on the source; "
                           "deleting it loses the guest (add ?force=true if the source is gone for good)")
        await self.driver.destroy_vm(name)

    async def _abandon(self, name: str, task: asyncio.Task[None]) -> None:
        """Stop watching a paused postcopy whose destination is gone (the manager says so with force):
        the guest is lost, and the event says so, never a clean stop."""
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        log.warning("postcopy of %s abandoned by force: the destination half is gone, the guest is lost", name)
        dst, method, start = self._moving.get(name, ("unknown", MigrationMethod.POSTCOPY, time.time()))
        await self.events.append(EventKind.MIGRATION_FINISHED, vm=name, src=self.config.name, dst=dst, method=method,
                                 start_wall_s=start, outcome=MigrationOutcome.FAILED,
                                 detail="lost: postcopy abandoned, its destination half is gone")

    async def list_vms(self) -> list[VmView]:
        """Every VM; one this agent is still sending is MIGRATING whatever its driver says (a
        restarted manager tells a move in flight from an abandoned incoming VM by this)."""
        views = [info.view() for info in await self.driver.list_vms()]
        for view in views:
            task = self._migrations.get(view.name)
            if view.state is VmRunState.RUNNING and task is not None and not task.done():
                view.state = VmRunState.MIGRATING
        return views

    async def set_load(self, name: str, body: LoadBody) -> None:
        self.power.require_on()
        await self._vm(name)
        await self.driver.set_load(name, body.load, body.dirty_mib_s)

    async def check_pages(self, name: str) -> int:
        self.power.require_on()
        await self._vm(name)
        return await self.driver.check_pages(name)

    async def vm_stats(self, name: str) -> VmStatsView:
        await self._vm(name)
        return (await self.driver.vm_stats(name)).view()

    # --- migration -------------------------------------------------------------------------

    def _check_destination(self, dst_uri: str, dst_host: str) -> None:
        """A migration goes only to a peer this host's configuration names, at the address it names,
        on a port of the migration range: anything else is refused before QEMU connects."""
        _, host, port = dst_uri.split(":")
        address = self.config.migration_peers.get(dst_host)
        if address is None:
            raise Forbidden(f"{dst_host!r} is not a migration peer of {self.config.name} (migration_peers)")
        try:
            same = ipaddress.IPv4Address(host) == ipaddress.IPv4Address(address)
        except ValueError:
            same = False
        if not same:
            raise Forbidden(f"{dst_host}'s migration address is {address}, not {host}")
        low, high = self.config.migration_ports
        if not low <= int(port) <= high:
            raise Forbidden(f"port {port} is outside the migration ports {low}..{high}")

    def _peer_name(self, dst_uri: str) -> str:
        host = dst_uri.split(":")[1]
        return next((name for name, address in self.config.migration_peers.items() if address == host), host)

    async def migrate(self, name: str, body: MigrateBody) -> MigrationAccepted:
        """Start sending ``name`` to a prepared destination; the outcome arrives as an event."""
        self.power.require_on()
        self._check_destination(body.dst_uri, body.dst_host)
        self._require_unclaimed(name)
        info = await self._vm(name)
        running = self._migrations.get(name)
        if (running is not None and not running.done()) or info.state != VmRunState.RUNNING:
            raise Conflict(f"VM {name!r} is {info.state.value}, needs running and not migrating")
        request = MigrationRequest(vm=name, dst_uri=body.dst_uri, method=body.migration_method,
                                   options=body.options())
        start = time.time()
        await self.events.append(EventKind.MIGRATION_STARTED, vm=name, src=self.config.name, dst=body.dst_host,
                                 method=request.method, start_wall_s=start)
        self._migrations[name] = asyncio.create_task(self._run_migration(request, body.dst_host, start))
        return MigrationAccepted(vm=name, src_host=self.config.name, dst_host=body.dst_host,
                                 method=request.method)

    async def _run_migration(self, request: MigrationRequest, dst: str, start: float, attach: bool = False) -> None:
        self._moving[request.vm] = (dst, request.method, start)

        async def observe(what: str, details: dict[str, Any]) -> None:
            kind = EventKind.parse(f"migration_{what}", "migration observer's word")  # paused or resumed
            await self.events.append(kind, vm=request.vm, src=self.config.name,
                                     dst=dst, method=request.method, start_wall_s=start,
                                     paused_s=details.get("paused_s"), detail=str(details))

        try:
            report = await self.driver.migrate(request, observe, started_s=start if attach else None)
        except (DriverError, OSError) as exc:
            log.warning("migration of %s to %s failed: %s", request.vm, dst, exc)
            report = MigrationReport(vm=request.vm, method=request.method, outcome=MigrationOutcome.FAILED,
                                     total_s=time.time() - start, downtime_s=None, bytes_sent=0,
                                     rounds=0, converged=False, detail=str(exc))
        await self.events.append(
            EventKind.MIGRATION_FINISHED, vm=request.vm, src=self.config.name, dst=dst, method=request.method,
            outcome=report.outcome, start_wall_s=start, stop_wall_s=report.timeline.get("stop"),
            bytes_sent=report.bytes_sent,
            downtime_s=report.downtime_s, rounds=report.rounds, converged=report.converged,
            switched_to_postcopy=report.switched_to_postcopy, detail=report.detail,
            paused_s=report.timeline.get("paused_s"), recoveries=int(report.timeline.get("recoveries", 0)),
            postcopy_requests=report.postcopy_requests, postcopy_preempt=report.postcopy_preempt,
        )

    async def incoming_marks(self, name: str) -> IncomingMarksView:
        """The destination's marks of ``name``'s incoming migration (the manager's downtime measure)."""
        await self._vm(name)
        marks = self.driver.incoming_marks(name)
        view = IncomingMarksView(vm=name, resume=marks.get("resume"), completed=marks.get("completed"))
        faults_of = getattr(self.driver, "postcopy_faults", None)  # QEMU driver only
        if faults_of is not None and view.resume is not None:
            try:
                faults = await faults_of(name)
            except DriverError as exc:
                log.debug("no postcopy statistics for %s: %s", name, exc)
                faults = None
            if faults is not None:
                view.postcopy_blocktime_s = faults.blocktime_s
                view.postcopy_vcpu_blocktime_s = list(faults.vcpu_blocktime_s)
                view.postcopy_latency_s = faults.latency_s
                view.postcopy_preempt = faults.preempt
        return view

    async def cancel_migration(self, name: str) -> None:
        await self._vm(name)
        task = self._migrations.get(name)
        if task is None or task.done():
            raise Conflict(f"VM {name!r} is not migrating")
        try:
            await self.driver.cancel_migration(name)
        except InPostcopy as exc:
            raise Conflict(str(exc)) from exc

    async def resume_migration(self, name: str, body: ResumeBody) -> None:
        """Source of a paused postcopy: send the rest to where the destination listens again."""
        self._check_destination(body.dst_uri, body.dst_host)
        await self._vm(name)
        task = self._migrations.get(name)
        if task is None or task.done():
            raise Conflict(f"VM {name!r} is not migrating")
        self.driver.resume_migration(name, body.dst_uri)

    async def recover_incoming(self, name: str) -> str:
        """Destination of a paused (or hung) postcopy: listen again; returns the URI for the source."""
        info = await self._vm(name)
        if info.state not in (VmRunState.POSTCOPY, VmRunState.POSTCOPY_PAUSED):
            raise Conflict(f"VM {name!r} is {info.state.value}, not an incoming postcopy")
        return await self.driver.recover_incoming(name, self.config.migration_listen_host)

    # --- host ------------------------------------------------------------------------------

    async def host_stats(self) -> HostStatsView:
        """CPU (cores), memory and watts now; VM stats from the driver."""
        after = procstats.read_cpu_times()
        proc_cores = procstats.cpu_cores_busy(self._cpu_before, after)
        self._cpu_before = after
        total_mib, used_mib = procstats.read_mem_mib()
        vms: list[VmStatsView] = []
        for info in await self.driver.list_vms():
            if info.state in (VmRunState.RUNNING, VmRunState.MIGRATING, VmRunState.POSTCOPY):
                try:
                    stats = await self.driver.vm_stats(info.name)
                except DriverError as exc:  # a VM that just left or stopped: report the rest
                    log.debug("no stats for %s: %s", info.name, exc)
                    continue
                guest = await self._guest_load(info) if self.config.emulated else None
                view = stats.view(info.config.cpu_quota, guest)
                view.guest_queue = self._guest_queues.get(info.name) if self.config.emulated else None
                if self.config.emulated and guest is None and hasattr(self.driver, "guest_stats"):
                    view.load_pending = True
                vms.append(view)
        if self.config.emulated:
            # lab hosts share one machine: a host's load is the CPU its VMs' QEMU processes used, each
            # quota counting as one core; above the guests' own busy share, that is the host's
            # virtualisation overhead, which the planner measures as host load minus VM loads
            cpu = sum(v.quota_load if v.quota_load is not None else v.lab_load for v in vms)
        else:
            cpu = proc_cores
        return HostStatsView(
            host=self.config.name, t_wall_s=time.time(), power_state=self.power.state,
            emulated=self.config.emulated, cores=self.config.cores, cpu_load=cpu,
            proc_cpu_load=proc_cores, mem_total_mib=total_mib, mem_used_mib=used_mib,
            watts=self.power.watts(cpu) if self.config.emulated else None, vms=vms,
        )

    async def _guest_load(self, info: VmInfo) -> float | None:
        """Busy share inside the guest since the previous call (its workload generator's counters).

        Why: under TCG (the lab here) host-side CPU includes the emulation's own cost, which inflates
        a VM's load against its quota; the guest's busy time is what the paper calls the VM's load.
        A guest too slow to answer within GUEST_STATS_TIMEOUT_S keeps its previous value, so that a
        starved guest does not hold up the host's stats (and the control loop's tick).
        """
        read = getattr(self.driver, "guest_stats", None)
        if read is None or info.state is not VmRunState.RUNNING:
            self._guest_marks.pop(info.name, None)
            self._guest_loads.pop(info.name, None)
            self._guest_queues.pop(info.name, None)
            return None
        last = self._guest_loads.get(info.name)
        try:
            stats = await asyncio.wait_for(read(info.name), GUEST_STATS_TIMEOUT_S)
        except (DriverError, TimeoutError) as exc:
            log.debug("no guest stats for %s: %s", info.name, exc)
            return last
        mark = self._guest_marks.get(info.name)
        self._guest_marks[info.name] = (stats.busy_s, stats.uptime_s)
        self._guest_queues[info.name] = GuestQueueView(
            tasks=stats.tasks, done=stats.tasks_done, queued=stats.tasks_queued, dropped=stats.tasks_dropped,
            busy_s=stats.busy_s, backlog_s=stats.backlog_s, delay_sum_s=stats.delay_sum_s,
            delay_max_s=stats.delay_max_s, delay_hist=dict(stats.delay_hist), uptime_s=stats.uptime_s)
        # first reading on this host (a new VM, or one that just arrived by migration): the counters
        # cover the guest's whole life, not the last period, so there is no load to report yet
        if mark is None or stats.uptime_s <= mark[1]:
            return last
        busy0, up0 = mark
        load = float(max(0.0, min(1.0, (stats.busy_s - busy0) / (stats.uptime_s - up0))))
        self._guest_loads[info.name] = load
        return load

    async def suspend(self) -> PowerState:
        if self._migrations and any(not t.done() for t in self._migrations.values()):
            raise Conflict("a migration is running on this host")
        vms = await self.driver.list_vms()
        if vms:
            raise Conflict(f"host {self.config.name} still has VMs: {', '.join(v.name for v in vms)}")
        return await self.power.suspend()

    async def wake(self) -> PowerState:
        return await self.power.wake()
