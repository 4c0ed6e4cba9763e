"""LibvirtEngine: one libvirt host as the manager drives it (``consolidator.manager.engine.Engine``).

The manager's RemoteCluster, stats poller and event forwarder use it exactly as they use a host
agent: it answers with the agent API's views (``VmView``, ``HostStatsView``, ``EventView``), so the
control loop sees the same events in the same units. Blocking libvirt calls run in worker threads;
libvirt's own events (lifecycle, job completed, migration iteration; ``conn.py``) arrive in its event
thread and are handed to this engine's asyncio loop.

A move goes peer to peer (the source libvirtd connects to the target's ``peer_uri``) and only to
another LibvirtEngine of the configuration. Its ``migration_finished`` event carries the source's
pause mark (``stop_wall_s``); the forwarder asks the target's ``incoming_marks`` for the resume mark,
as with the agent (downtime = resume - stop).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import libvirt

from consolidator.domain.types import MigrationMethod, MigrationOutcome, PowerState
from consolidator.manager.client import AgentError
from consolidator.manager.leash import MigrationLeash, data_address
from consolidator.manager.libvirt.calls import in_own_thread, run_command
from consolidator.manager.libvirt.conn import DomainMark, EventSinks, HostLink, MarkKind
from consolidator.manager.libvirt.migration import LibvirtSettings, MigrationJob, MoveRequest, MoveResult
from consolidator.manager.libvirt.stats import StatsReader
from consolidator.protocol.eventlog import EventLog
from consolidator.protocol.migration import MigrationOptions
from consolidator.protocol.schemas import (
    EventKind,
    EventsView,
    HostStatsView,
    IncomingMarksView,
    PowerView,
    VmBody,
    VmRunState,
    VmStatsView,
    VmView,
)

log = logging.getLogger(__name__)

PROBE_S = 2.0  # a suspended host is probed at most this often (through host_stats)
PROBE_WAIT_S = 0.05  # host_stats waits this long for a probe; a slower answer is seen at the next probe
CALL_TIMEOUT_S = 15.0  # a host that does not answer a call in this time counts as unreachable
COMMAND_TIMEOUT_S = 150.0  # suspend and wake run a command (up to 60 s) and wait for the host
WAKE_ANSWER_S = 80.0  # after the wake command, until libvirtd answers


@dataclass(frozen=True, slots=True)
class LibvirtHostSettings:
    """One host of cluster.toml with ``driver = "libvirt"`` (manager.config.LibvirtHost)."""

    uri: str  # how the manager reaches libvirtd: qemu+tls://pm1/system, qemu+ssh://root@pm1/system, ...
    peer_uri: str | None = None  # how the other hosts' libvirtd reach this one; default: uri
    migrate_uri: str | None = None  # where migration data goes, e.g. tcp://10.0.1.11 (migration network)
    suspend_command: tuple[str, ...] = ()  # argv run by the manager; empty: virNodeSuspendForDuration
    wake_command: tuple[str, ...] = ()  # argv of Engine.wake (an emulated host); real hosts: power methods
    emulated: bool = False  # hosts sharing one machine (lab): report loads as shares of CPU quotas
    migration: LibvirtSettings = LibvirtSettings()


def _run_state(state: int, reason: int, incoming: bool) -> VmRunState:
    """The agent vocabulary for a domain's (state, reason); ``incoming``: its job is a migration *in*.
    A destination's domain is paused (precopy) or running in postcopy; a source's is paused for the
    switch-over or while it serves postcopy pages (discovery tells moves in flight by these)."""
    if state == libvirt.VIR_DOMAIN_RUNNING:
        return VmRunState.POSTCOPY if reason == libvirt.VIR_DOMAIN_RUNNING_POSTCOPY else VmRunState.RUNNING
    if state == libvirt.VIR_DOMAIN_PAUSED:
        if incoming or reason == libvirt.VIR_DOMAIN_PAUSED_STARTING_UP:
            return VmRunState.INCOMING
        if reason in (libvirt.VIR_DOMAIN_PAUSED_MIGRATION, libvirt.VIR_DOMAIN_PAUSED_POSTCOPY,
                      libvirt.VIR_DOMAIN_PAUSED_POSTCOPY_FAILED):
            return VmRunState.MIGRATING
        return VmRunState.PAUSED
    return VmRunState.STOPPED


class LibvirtEngine:
    """Implements ``Engine`` for one host over libvirt-python (see module doc)."""

    def __init__(self, host: str, settings: LibvirtHostSettings, leash: MigrationLeash | None = None) -> None:
        self.host = host
        self.settings = settings
        self.leash = leash  # where moves may go (manager.leash); None: any LibvirtEngine given
        self.link = HostLink(host, settings.uri, EventSinks(self._on_mark, self._on_job, self._on_iteration))
        self._reader = StatsReader(host)
        self._log = EventLog(host)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._jobs: dict[str, MigrationJob] = {}
        self._incoming: dict[str, dict[str, float]] = {}  # vm -> marks on this host as a destination
        self._arriving: set[str] = set()  # incoming moves started here (lifecycle) and not yet ended
        self._power = PowerState.ON
        self._node = (0.0, 0.0)  # cores and MiB of memory, as libvirtd last said (for an asleep emulated host)
        self.results: dict[str, MoveResult] = {}  # each VM's last move from here, with libvirt's statistics
        self._last_probe = 0.0
        self._tasks: set[concurrent.futures.Future[Any]] = set()
        self._connecting: asyncio.Future[Any] | None = None

    @property
    def peer_uri(self) -> str:
        return self.settings.peer_uri or self.settings.uri

    def _bind(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    async def _call(self, what: str, fn: Any, *args: Any, timeout_s: float = CALL_TIMEOUT_S) -> Any:
        """A blocking libvirt call in a worker thread; a libvirt error becomes an AgentError, and so
        does a host that does not answer in ``timeout_s`` (the thread is left to finish)."""
        await self.ensure_connected()
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn, *args), timeout_s)
        except TimeoutError as exc:
            raise AgentError(self.host, what, None, f"no answer within {timeout_s:g} s") from exc
        except libvirt.libvirtError as exc:
            raise AgentError(self.host, what, None if "connect" in str(exc).lower() else 500, str(exc)) from exc

    async def ensure_connected(self) -> None:
        """Connect (and so receive this host's libvirt events) if the host is on and not connected yet."""
        if self._power is PowerState.ON:
            await self._connect_once(CALL_TIMEOUT_S)

    async def _connect_once(self, timeout_s: float) -> None:
        """One connection attempt at a time: a host that does not answer holds one thread, not one per
        call (an attempt still running is awaited again, not repeated)."""
        if self.link.is_open():
            return
        self._bind()
        if self._connecting is None or self._connecting.done():
            self._connecting = in_own_thread(self.link.open, f"connect-{self.host}")
        try:
            await asyncio.wait_for(asyncio.shield(self._connecting), timeout_s)
        except TimeoutError as exc:
            raise AgentError(self.host, "connect", None, f"no answer within {timeout_s:g} s") from exc
        except libvirt.libvirtError as exc:
            raise AgentError(self.host, "connect", None, str(exc)) from exc

    def _emit(self, kind: EventKind, **fields: Any) -> None:
        """Append an event from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():  # a move that ended after its manager stopped
            return
        fut = asyncio.run_coroutine_threadsafe(self._log.append(kind, **fields), loop)
        self._tasks.add(fut)
        fut.add_done_callback(self._tasks.discard)

    # --- discovery and statistics ----------------------------------------------------------------

    def _domains(self) -> list[VmView]:
        """One bulk-statistics call that never waits for a domain's job (a migration may hold it)."""
        records = self.link.conn.getAllDomainStats(
            libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_VCPU | libvirt.VIR_DOMAIN_STATS_BALLOON,
            libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE | libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT)
        out = []
        for dom, f in records:
            name = dom.name()
            state, reason = int(f.get("state.state", 0)), int(f.get("state.reason", 0))
            if name in self._jobs:
                run = VmRunState.MIGRATING
            else:
                run = _run_state(state, reason, name in self._arriving)
            vcpus = int(f.get("vcpu.maximum", f.get("vcpu.current", 1)))
            body = VmBody.model_construct(name=name, mem_mib=int(f.get("balloon.maximum", 0)) // 1024, vcpus=vcpus,
                                          cpu_quota=float(vcpus), load=0.0, dirty_mib_s=0.0, wws_mib=None)
            out.append(VmView.model_construct(name=name, state=run, config=body, pid=None))
        return out

    async def list_vms(self) -> list[VmView]:
        self._require_on("list domains")
        result: list[VmView] = await self._call("list domains", self._domains)
        return result

    def _stats(self) -> HostStatsView:
        conn = self.link.conn
        with self._lock:
            moving = frozenset(self._jobs) | frozenset(self._arriving)
        read = self._reader.read(conn, 0.0, moving=moving)
        info = conn.getInfo()
        mem_total = float(info[1])
        self._node = (float(info[2]), mem_total)
        vms = [VmStatsView(name=v.vm, cpu_load=v.cpu_load, dirty_bytes_per_s=v.dirty_bytes_per_s, mem_mib=0,
                           cpu_quota=None, quota_load=None, guest_load=None, load_pending=False)
               for v in read.vms]
        load = sum(v.cpu_load for v in read.vms) if self.settings.emulated else read.host.cpu_load
        return HostStatsView(host=self.host, t_wall_s=time.time(), power_state=PowerState.ON,
                             emulated=self.settings.emulated, cores=float(info[2]), cpu_load=load,
                             proc_cpu_load=read.host.cpu_load, mem_total_mib=mem_total,
                             mem_used_mib=read.host.mem_used_mib, watts=None, vms=vms)

    async def host_stats(self) -> HostStatsView:
        if self._power is not PowerState.ON:
            await self._probe()
        if self._power is PowerState.SUSPENDED and self.settings.emulated:
            # it put the host to sleep: answers for it, as an emulated agent does (a real host's sleep
            # is seen as silence, and the manager knows why)
            return HostStatsView(host=self.host, t_wall_s=time.time(), power_state=PowerState.SUSPENDED,
                                 emulated=True, cores=self._node[0], cpu_load=0.0, proc_cpu_load=0.0,
                                 mem_total_mib=self._node[1], mem_used_mib=0.0, watts=None, vms=[])
        self._require_on("host stats")  # still asleep: the poller counts the host as not answering
        result: HostStatsView = await self._call("host stats", self._stats)
        return result

    async def _probe(self) -> None:
        """A suspended host woken by the power area (not through ``wake``): back on once libvirtd answers."""
        if self._power is not PowerState.SUSPENDED or time.monotonic() - self._last_probe < PROBE_S:
            return
        self._last_probe = time.monotonic()
        try:  # an attempt runs in its own thread; waiting for it here would stall the manager's period
            await self._connect_once(PROBE_WAIT_S)
        except AgentError:
            return
        self._set_power(PowerState.ON, "libvirtd answers again")

    def _require_on(self, what: str) -> None:
        if self._power is not PowerState.ON:
            raise AgentError(self.host, what, None, f"host is {self._power.value}")

    # --- migration -------------------------------------------------------------------------------

    async def migrate_to(self, vm: str, target: Any, method: MigrationMethod, options: MigrationOptions) -> None:
        self._require_on(f"migrate {vm}")
        if not isinstance(target, LibvirtEngine):
            raise AgentError(self.host, f"migrate {vm}", None,
                             f"host {getattr(target, 'host', target)} is not run by libvirt: "
                             "no migration between engines")
        if target is self:
            raise AgentError(self.host, f"migrate {vm}", 409, "source and destination are the same host")
        if self.leash is not None:  # before libvirtd connects anywhere: the data goes to migrate_uri,
            # else to the peer URI's host (libvirt's own migration ports there)
            data_uri = target.settings.migrate_uri or f"tcp://{data_address(target.peer_uri)[0]}"
            self.leash.check_uri(self.host, vm, target.host, data_uri)
        with self._lock:
            if vm in self._jobs:
                raise AgentError(self.host, f"migrate {vm}", 409, "already moving")
        await target.ensure_connected()  # its lifecycle events give the resume mark
        version = await target._call("libvirt version", target.link.conn.getLibVersion)
        request = MoveRequest(vm=vm, method=method, peer_uri=target.peer_uri, migrate_uri=target.settings.migrate_uri,
                              options=options, settings=self.settings.migration, dst_libvirt_version=int(version))
        job = MigrationJob(request, self.link, target.host)
        await self._call(f"find {vm}", self.link.conn.lookupByName, vm)  # 500 with libvirt's reason if absent
        with self._lock:
            self._jobs[vm] = job
        start = time.time()
        self._emit(EventKind.MIGRATION_STARTED, vm=vm, src=self.host, dst=target.host, method=method)
        threading.Thread(target=self._run_job, args=(job, start), name=f"migrate-{vm}", daemon=True).start()

    def _run_job(self, job: MigrationJob, start: float) -> None:
        req = job.request
        try:
            result = job.run()
            outcome, detail = result.outcome, result.detail
        except (libvirt.libvirtError, ValueError) as exc:
            result, outcome, detail = None, MigrationOutcome.FAILED, f"not started: {exc}"
        with self._lock:
            self._jobs.pop(req.vm, None)
            if result is not None:
                self.results[req.vm] = result
        stop = job.stop_wall_s()
        if outcome is not MigrationOutcome.COMPLETED:
            log.warning("migration of %s %s -> %s: %s (%s)", req.vm, self.host, job.dst_name, outcome.value, detail)
        self._emit(EventKind.MIGRATION_FINISHED, vm=req.vm, src=self.host, dst=job.dst_name, method=req.method,
                   outcome=outcome, start_wall_s=start, stop_wall_s=stop,
                   bytes_sent=result.bytes_sent if result else 0, rounds=result.rounds if result else 0,
                   converged=outcome is MigrationOutcome.COMPLETED,
                   switched_to_postcopy=result.switched_to_postcopy if result else False, detail=detail)

    async def cancel_migration(self, vm: str) -> None:
        with self._lock:
            job = self._jobs.get(vm)
        if job is None:
            raise AgentError(self.host, f"cancel {vm}", 404, "no migration of this VM runs here")
        job.cancel()

    async def destroy_vm(self, vm: str) -> None:
        """Only a domain left paused by a move that did not complete; a running domain is never touched."""
        self._require_on(f"destroy {vm}")

        def destroy() -> None:
            try:
                dom = self.link.conn.lookupByName(vm)
            except libvirt.libvirtError:
                return  # libvirt left nothing behind
            state, _ = dom.state()
            if state == libvirt.VIR_DOMAIN_RUNNING:
                raise AgentError(self.host, f"destroy {vm}", 409, "the domain runs here: not destroyed")
            dom.destroy()

        await self._call(f"destroy {vm}", destroy)

    # --- events ----------------------------------------------------------------------------------

    async def events(self, after: int, timeout_s: float = 0.0) -> EventsView:
        self._bind()
        try:
            await self.ensure_connected()
        except AgentError as exc:  # the event log still answers; the poller reports the host
            log.debug("%s: %s", self.host, exc)
        found = await self._log.wait(after, timeout_s) if timeout_s > 0 else self._log.since(after)
        return EventsView(events=found, next_seq=self._log.next_seq)

    async def incoming_marks(self, vm: str, timeout_s: float | None = None) -> IncomingMarksView:
        marks = dict(self._incoming.get(vm, {}))
        return IncomingMarksView(vm=vm, resume=marks.get("resume"), completed=marks.get("completed"))

    def _on_mark(self, mark: DomainMark) -> None:
        if mark.kind is MarkKind.INCOMING:
            self._incoming[mark.vm] = {}
            self._arriving.add(mark.vm)
        elif mark.kind is MarkKind.RUNNING_AT_DST:
            marks = self._incoming.setdefault(mark.vm, {})
            marks.setdefault("resume", mark.wall_s)
            if mark.detail == libvirt.VIR_DOMAIN_EVENT_RESUMED_MIGRATED:
                marks["completed"] = mark.wall_s
                self._arriving.discard(mark.vm)
        elif mark.event == libvirt.VIR_DOMAIN_EVENT_STOPPED:
            self._arriving.discard(mark.vm)
        with self._lock:
            job = self._jobs.get(mark.vm)
        if job is not None:
            job.on_mark(mark)

    def _on_job(self, host: str, vm: str, stats: dict[str, Any]) -> None:
        with self._lock:
            job = self._jobs.get(vm)
        if job is not None:
            job.on_job_completed(stats)

    def _on_iteration(self, host: str, vm: str, iteration: int) -> None:
        with self._lock:
            job = self._jobs.get(vm)
        if job is not None:
            job.on_iteration(iteration)

    # --- power -----------------------------------------------------------------------------------

    def _set_power(self, state: PowerState, detail: str = "") -> None:
        self._power = state
        self._emit(EventKind.HOST_POWER, power_state=state, detail=detail)

    def _suspend(self) -> None:
        running = [d.name() for d in self.link.conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)]
        if running:
            raise AgentError(self.host, "suspend", 409, f"domains running: {', '.join(sorted(running))}")
        info = self.link.conn.getInfo()
        self._node = (float(info[2]), float(info[1]))
        self._set_power(PowerState.SUSPENDING)
        try:
            if self.settings.suspend_command:
                self.link.close()  # before the host stops answering
                run_command(self.settings.suspend_command, "suspend")
            else:
                self.link.conn.suspendForDuration(libvirt.VIR_NODE_SUSPEND_TARGET_MEM, 0, 0)
                self.link.close()
        except (RuntimeError, libvirt.libvirtError) as exc:
            self._set_power(PowerState.ON, f"suspend failed: {exc}")
            raise AgentError(self.host, "suspend", 500, str(exc)) from exc
        self._set_power(PowerState.SUSPENDED)

    async def suspend(self) -> PowerView:
        self._require_on("suspend")
        await self._call("suspend", self._suspend, timeout_s=COMMAND_TIMEOUT_S)
        return PowerView(host=self.host, power_state=self._power)

    def _wake(self) -> None:
        if not self.settings.wake_command:
            raise AgentError(self.host, "wake", 409, "no wake_command: wake this host through its power methods")
        self._set_power(PowerState.RESUMING)
        try:
            run_command(self.settings.wake_command, "wake")
            deadline = time.monotonic() + WAKE_ANSWER_S
            while True:  # a woken host answers after its boot or resume
                try:
                    self.link.open()
                    break
                except libvirt.libvirtError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
        except (RuntimeError, libvirt.libvirtError) as exc:
            self._set_power(PowerState.FAILED, f"wake failed: {exc}")
            raise AgentError(self.host, "wake", 500, str(exc)) from exc
        self._set_power(PowerState.ON)

    async def wake(self) -> PowerView:
        if self._power is PowerState.ON:
            return PowerView(host=self.host, power_state=self._power)
        await self._call("wake", self._wake, timeout_s=COMMAND_TIMEOUT_S)
        return PowerView(host=self.host, power_state=self._power)

    def mark_suspended(self) -> None:
        """The host is asleep when the manager starts (its libvirtd does not answer)."""
        self._power = PowerState.SUSPENDED

    async def close(self) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel()
        await asyncio.to_thread(self.link.close)


def engine_from_config(name: str, host: Any, leash: MigrationLeash | None = None) -> LibvirtEngine:
    """The engine of one ``[hosts.NAME]`` table with ``driver = "libvirt"`` (manager.config.LibvirtHost)."""
    migration = LibvirtSettings(tls=host.migration_tls)
    return LibvirtEngine(name, LibvirtHostSettings(
        uri=host.uri, peer_uri=host.peer_uri, migrate_uri=host.migrate_uri,
        suspend_command=tuple(host.suspend_command), wake_command=tuple(host.wake_command),
        emulated=host.emulated, migration=migration), leash)
