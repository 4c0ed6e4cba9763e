"""LibvirtCluster: the control loop's ClusterPort over hosts that libvirtd manages.

Each port call returns at once and runs in a worker thread (libvirt calls block); outcomes come back
through ``deliver`` as the same domain events the simulator and the agent-backed cluster send.
``deliver`` is called from worker threads: an asyncio runner passes one that hands over to its loop
(``loop.call_soon_threadsafe``). A migration goes only between hosts of the configuration, peer to
peer, to the destination's configured ``peer_uri``. Suspend runs the host's configured command (an
argv, never a shell string) or ``virNodeSuspendForDuration``; a host with running domains is never
suspended. Wake goes through the power area's waker, then waits until the host's libvirtd answers.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import libvirt

from consolidator.domain.events import Event, HostPowerChanged, MigrationFinished, MigrationStarted
from consolidator.domain.types import MigrationMethod, MigrationOutcome, PowerState, VmSpec
from consolidator.manager.cluster import DEFAULT_OPTIONS, MigrationOptions, Waker
from consolidator.manager.libvirt.conn import DomainMark, EventSinks, HostLink
from consolidator.manager.libvirt.migration import LibvirtSettings, MigrationJob, MoveRequest, MoveResult
from consolidator.manager.libvirt.stats import HostStats, StatsReader

log = logging.getLogger(__name__)

SyncWaker = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class LibvirtHost:
    """One host as the configuration names it."""

    name: str
    uri: str  # how the manager reaches its libvirtd: qemu+tls://h/system, qemu+ssh://root@h/system, ...
    peer_uri: str | None = None  # how the other hosts' libvirtd reach it (peer to peer); default: uri
    migrate_uri: str | None = None  # where migration data goes (tcp://10.0.0.2 on the migration network)
    suspend_command: tuple[str, ...] | None = None  # argv run by the manager; None: virNodeSuspendForDuration
    suspend_duration_s: int = 0  # virNodeSuspendForDuration's duration (0: until woken)

    @property
    def dconnuri(self) -> str:
        return self.peer_uri or self.uri


@dataclass(frozen=True, slots=True)
class Discovery:
    vms: tuple[VmSpec, ...]
    placement: dict[str, str]  # vm -> host


def sync_waker(waker: Waker, loop: asyncio.AbstractEventLoop) -> SyncWaker:
    """An async waker (the power area's ``PowerController``) callable from a worker thread."""

    def wake(host: str) -> None:
        asyncio.run_coroutine_threadsafe(waker.wake(host), loop).result()

    return wake


class LibvirtCluster:
    """Implements ``ClusterPort`` over libvirt; ``open()`` connects, ``close()`` ends the workers."""

    def __init__(self, hosts: Sequence[LibvirtHost], deliver: Callable[[Event], None], clock: Callable[[], float],
                 *, waker: SyncWaker | None = None, options: MigrationOptions = DEFAULT_OPTIONS,
                 settings: LibvirtSettings | None = None, power_states: Mapping[str, PowerState] | None = None,
                 wake_timeout_s: float = 120.0, overhead_per_vm: float | None = None) -> None:
        self.hosts = {h.name: h for h in hosts}
        self._deliver, self._clock = deliver, clock
        self._waker, self.options = waker, options
        self.settings = settings or LibvirtSettings()
        self.wake_timeout_s, self.overhead_per_vm = wake_timeout_s, overhead_per_vm
        self.power = {h: PowerState.ON for h in self.hosts} | dict(power_states or {})
        sinks = EventSinks(mark=self._on_mark, job_completed=self._on_job_completed, iteration=self._on_iteration)
        self.links = {h.name: HostLink(h.name, h.uri, sinks) for h in hosts}
        self._readers = {h: StatsReader(h) for h in self.hosts}
        self._jobs: dict[str, MigrationJob] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="libvirt-port")
        self._futures: set[Future[None]] = set()
        self.in_flight: dict[str, tuple[str, str]] = {}
        self.results: dict[str, MoveResult] = {}  # the last move of each VM, for the record
        self.errors: list[str] = []

    def open(self) -> LibvirtCluster:
        """Connect to every host that is on (a suspended one is connected when woken)."""
        for name, link in self.links.items():
            if self.power[name] is PowerState.ON:
                link.open()
        return self

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        for link in self.links.values():
            link.close()

    def drain(self, timeout_s: float | None = None) -> None:
        """Wait for the port calls still running."""
        for fut in list(self._futures):
            fut.exception(timeout=timeout_s)

    def _submit(self, work: Callable[[], None], what: str) -> None:
        def guarded() -> None:
            try:
                work()
            except Exception as exc:  # a worker must never die silently
                log.exception("%s failed", what)
                self.errors.append(f"{what}: {exc}")

        fut = self._pool.submit(guarded)
        self._futures.add(fut)
        fut.add_done_callback(self._futures.discard)

    # --- inventory and statistics ----------------------------------------------------------------

    def discover(self, manage: Callable[[str], bool] = lambda name: True) -> Discovery:
        """The running domains of every host that is on (those ``manage`` accepts)."""
        vms: list[VmSpec] = []
        placement: dict[str, str] = {}
        for host, link in self.links.items():
            if self.power[host] is not PowerState.ON:
                continue
            for dom in link.conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
                name = dom.name()
                if not manage(name):
                    continue
                if name in placement:
                    raise ValueError(f"domain {name!r} runs on both {placement[name]} and {host}")
                _state, max_kib, _mem, vcpus, _cpu = dom.info()
                vms.append(VmSpec(name=name, vcpus=vcpus, mem_mib=max_kib // 1024))
                placement[name] = host
        return Discovery(vms=tuple(vms), placement=placement)

    def poll(self, t_s: float) -> dict[str, HostStats]:
        """Statistics of every host that is on and answers; one that does not is left out."""
        out: dict[str, HostStats] = {}
        for host, link in self.links.items():
            if self.power[host] is not PowerState.ON:
                continue
            try:
                out[host] = self._readers[host].read(link.conn, t_s, self.overhead_per_vm)
            except libvirt.libvirtError as exc:
                log.debug("no stats from %s: %s", host, exc)
        return out

    # --- ClusterPort -----------------------------------------------------------------------------

    def start_migration(self, vm: str, src: str, dst: str, method: MigrationMethod) -> None:
        start = self._clock()
        why = self._refuse_move(vm, src, dst)
        if why:
            self.errors.append(why)
            self._deliver(MigrationFinished(t_s=start, vm=vm, src=src, dst=dst, method=method,
                                            outcome=MigrationOutcome.FAILED, start_s=start, detail=why))
            return
        request = MoveRequest(vm=vm, method=method, peer_uri=self.hosts[dst].dconnuri,
                              migrate_uri=self.hosts[dst].migrate_uri, options=self.options, settings=self.settings)
        job = MigrationJob(request, self.links[src], dst)
        with self._lock:
            self._jobs[vm] = job
            self.in_flight[vm] = (src, dst)
        self._submit(lambda: self._migrate(job, src, dst, start), f"migrate {vm}")

    def _refuse_move(self, vm: str, src: str, dst: str) -> str:
        for end in (src, dst):
            if end not in self.hosts:
                return f"migration of {vm}: {end} is not a host of the configuration"
        if src == dst:
            return f"migration of {vm}: source and destination are both {src}"
        if vm in self.in_flight:
            return f"migration of {vm}: already moving"
        return ""

    def _migrate(self, job: MigrationJob, src: str, dst: str, start: float) -> None:
        vm, method = job.request.vm, job.request.method
        self._deliver(MigrationStarted(t_s=self._clock(), vm=vm, src=src, dst=dst, method=method))
        try:
            result = job.run()
        except (libvirt.libvirtError, ValueError) as exc:
            result = MoveResult(outcome=MigrationOutcome.FAILED, total_s=0.0, downtime_s=None,
                                libvirt_downtime_s=None, bytes_sent=0, rounds=0, switched_to_postcopy=False,
                                recoveries=0, detail=f"not started: {exc}")
        with self._lock:
            self._jobs.pop(vm, None)
            self.in_flight.pop(vm, None)
            self.results[vm] = result
        if result.outcome is not MigrationOutcome.COMPLETED:
            log.warning("migration of %s %s -> %s: %s (%s)", vm, src, dst, result.outcome.value, result.detail)
        downtime = result.downtime_s if result.downtime_s is not None else (result.libvirt_downtime_s or 0.0)
        self._deliver(MigrationFinished(
            t_s=self._clock(), vm=vm, src=src, dst=dst, method=method, outcome=result.outcome, start_s=start,
            bytes_sent=float(result.bytes_sent), downtime_s=downtime, rounds=result.rounds, detail=result.detail))

    def cancel_migration(self, vm: str) -> None:
        with self._lock:
            job = self._jobs.get(vm)
        if job is not None:
            job.cancel()

    def suspend_host(self, host: str) -> None:
        self._submit(lambda: self._suspend(host), f"suspend {host}")

    def wake_host(self, host: str) -> None:
        self._submit(lambda: self._wake(host), f"wake {host}")

    # --- events from the hosts (event thread) ----------------------------------------------------

    def _job(self, vm: str) -> MigrationJob | None:
        with self._lock:
            return self._jobs.get(vm)

    def _on_mark(self, mark: DomainMark) -> None:
        job = self._job(mark.vm)
        if job is not None:
            job.on_mark(mark)

    def _on_job_completed(self, host: str, vm: str, stats: dict[str, Any]) -> None:
        job = self._job(vm)
        if job is not None and host == job.src.name:
            job.on_job_completed(stats)

    def _on_iteration(self, host: str, vm: str, iteration: int) -> None:
        job = self._job(vm)
        if job is not None and host == job.src.name:
            job.on_iteration(iteration)

    # --- power -----------------------------------------------------------------------------------

    def _set_power(self, host: str, state: PowerState, detail: str = "") -> None:
        self.power[host] = state
        self._deliver(HostPowerChanged(t_s=self._clock(), host=host, state=state, detail=detail))

    def _suspend(self, host: str) -> None:
        spec, link = self.hosts[host], self.links[host]
        try:
            running = [d.name() for d in link.conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)]
        except libvirt.libvirtError as exc:
            self._set_power(host, self.power[host], f"suspend refused: {host} does not answer: {exc}")
            return
        if running:
            self._set_power(host, PowerState.ON, f"suspend refused: domains running: {', '.join(sorted(running))}")
            return
        self._set_power(host, PowerState.SUSPENDING)
        try:
            if spec.suspend_command:
                link.close()  # before the host stops answering
                done = subprocess.run(list(spec.suspend_command), capture_output=True, text=True, timeout=60,
                                      check=False)
                if done.returncode != 0:
                    raise RuntimeError(f"{spec.suspend_command[0]} exited {done.returncode}: {done.stderr.strip()}")
            else:
                link.conn.suspendForDuration(libvirt.VIR_NODE_SUSPEND_TARGET_MEM, spec.suspend_duration_s, 0)
                link.close()
        except (OSError, subprocess.TimeoutExpired, RuntimeError, libvirt.libvirtError) as exc:
            self.errors.append(f"suspend {host}: {exc}")
            self._set_power(host, PowerState.ON, f"suspend failed: {exc}")
            return
        self._set_power(host, PowerState.SUSPENDED)

    def _wake(self, host: str) -> None:
        if self.power[host] is PowerState.ON and self.links[host].is_open():
            self._set_power(host, PowerState.ON, "already on")
            return
        self._set_power(host, PowerState.RESUMING)
        try:
            if self._waker is None:
                raise RuntimeError("no waker configured (power area)")
            self._waker(host)
        except Exception as exc:  # any waker (WoL, IPMI, Redfish, ...) failing leaves the host asleep
            self.errors.append(f"wake {host}: {exc}")
            self._set_power(host, PowerState.FAILED, f"wake failed: {exc}")
            return
        deadline = time.monotonic() + self.wake_timeout_s
        while True:
            try:
                self.links[host].open()
                break
            except libvirt.libvirtError as exc:
                if time.monotonic() > deadline:
                    self._set_power(host, PowerState.FAILED, f"libvirtd did not answer after wake: {exc}")
                    return
                time.sleep(0.5)
        self._set_power(host, PowerState.ON)
