"""The QEMU VM driver: implements ``consolidator.agent.hypervisor.Hypervisor`` over QMP.

QEMU runs daemonized, so VMs outlive the driver; ``adopt()`` finds them again in the state folder.
The destination of a migration is a second driver (usually on another host) whose
``prepare_incoming`` starts ``-incoming defer`` and returns the URI the source sends to.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from consolidator.agent.guest import GuestImage, build_guest
from consolidator.agent.hypervisor import (
    DriverError,
    InPostcopy,
    MigrationReport,
    MigrationRequest,
    PostcopyFaults,
    VmInfo,
    VmStats,
)
from consolidator.agent.qemu import endpoints, guestctl, launch
from consolidator.agent.qemu.migration import (
    PREEMPT,
    MigrationProgress,
    Observer,
    capabilities,
    new_progress,
    offered_capabilities,
    postcopy_faults,
    resume_to,
    run_migration,
)
from consolidator.agent.qemu.monitor import Monitor
from consolidator.agent.qemu.status import DirtyRateStatus, MigrationStatus, dirty_rate_status, migration_status
from consolidator.domain.types import MigrationOutcome
from consolidator.protocol.schemas import VmConfig, VmRunState

log = logging.getLogger(__name__)
STATUS_WAIT_S = 5.0  # a migrating VM's monitor silent this long is stuck (Monitor.execute)

_RUNSTATES = {
    "running": VmRunState.RUNNING, "inmigrate": VmRunState.INCOMING, "prelaunch": VmRunState.STARTING,
    "paused": VmRunState.PAUSED, "finish-migrate": VmRunState.MIGRATING, "postmigrate": VmRunState.STOPPED,
    "shutdown": VmRunState.STOPPED, "internal-error": VmRunState.STOPPED, "io-error": VmRunState.PAUSED,
}


@dataclass
class _Vm:
    config: VmConfig
    paths: launch.VmPaths
    pid: int
    monitor: Monitor
    incoming: bool = False
    migrating: bool = False
    ctl_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    cpu_mark: tuple[float, float] | None = None  # (wall s, process CPU s) at the last vm_stats
    dirty_bytes_per_s: float | None = None
    listen_port: int | None = None  # incoming: the port this QEMU listens on
    progress: MigrationProgress | None = None  # outgoing: migration.new_progress(), steered by resume_migration
    preempt: bool = False  # postcopy moves of this QEMU (to or from it) use postcopy-preempt


@dataclass(frozen=True, slots=True)
class DriverSettings:
    """How this host runs QEMU. ``netns`` runs QEMU inside a network namespace (tests, calibration)."""

    state_dir: Path
    qemu_binary: str = "qemu-system-x86_64"
    accel: str = "auto"  # auto | kvm | tcg
    netns: str | None = None
    boot_timeout_s: float = 60.0
    guest: GuestImage | None = None  # None: build (or take from the cache) on first use
    migration_ports: tuple[int, int] = (49152, 49407)  # incoming migrations listen on one of these
    tls_dir: Path | None = None  # QEMU TLS migration: x509 files (ca-cert.pem, server-*.pem, client-*.pem)
    # postcopy-preempt where QEMU offers it (8.0+); every host of a cluster must say the same
    postcopy_preempt: bool = True
    host_cpu_cap_cores: float | None = None  # all of this host's VMs together (lab: a capped host)


class QemuDriver:
    """One host's QEMU VMs. Not thread-safe; use from one asyncio loop."""

    def __init__(self, settings: DriverSettings) -> None:
        if settings.accel not in ("auto", "kvm", "tcg"):
            raise ValueError(f"driver.accel must be auto, kvm or tcg, not {settings.accel!r}")
        self.settings = settings
        self.accel = launch.detect_accel() if settings.accel == "auto" else settings.accel
        self._vms: dict[str, _Vm] = {}
        if settings.host_cpu_cap_cores is not None and not settings.host_cpu_cap_cores > 0:
            raise ValueError(f"driver.host_cpu_cap_cores must be > 0, not {settings.host_cpu_cap_cores!r}")
        self._quota = launch.CpuQuota(settings.state_dir, host_cap_cores=settings.host_cpu_cap_cores)
        self._guest = settings.guest
        settings.state_dir.mkdir(parents=True, exist_ok=True)

    # --- lifecycle -------------------------------------------------------------------------------

    async def _image(self) -> GuestImage:
        if self._guest is None:
            self._guest = await asyncio.to_thread(build_guest)
        return self._guest

    async def _launch(self, config: VmConfig, incoming: bool) -> _Vm:
        launch.validate_config(config)
        if config.name in self._vms:
            raise DriverError(f"VM {config.name!r} already exists on this host")
        paths = launch.vm_paths(self.settings.state_dir, config.name)
        old_pid = launch.read_pid(paths)
        if old_pid is not None and launch.pid_alive(old_pid) and launch.is_qemu(old_pid):
            raise DriverError(f"a QEMU for {config.name!r} still runs (pid {old_pid}): adopt() it first")
        if paths.folder.exists():
            shutil.rmtree(paths.folder)  # leftovers of a VM whose process is gone
        paths.folder.mkdir(parents=True)
        launch.save_config(paths, config)
        argv = launch.qemu_argv(self.settings.qemu_binary, config, await self._image(), paths, self.accel,
                                incoming, self.settings.netns)
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        pid = launch.read_pid(paths)
        if proc.returncode != 0 or pid is None:
            shutil.rmtree(paths.folder, ignore_errors=True)
            raise DriverError(f"QEMU for {config.name} failed to start ({proc.returncode}): "
                              f"{(err or out).decode(errors='replace').strip()[-400:]}")
        self._quota.apply(config.name, pid, config.cpu_quota)
        monitor = Monitor(f"{config.name}@{self.settings.state_dir.name}")
        vm = _Vm(config, paths, pid, monitor, incoming=incoming)
        self._vms[config.name] = vm
        try:
            await monitor.connect(paths.qmp)
            vm.preempt = await self._preempt(monitor)
            caps = capabilities(postcopy=incoming, incoming=incoming, preempt=vm.preempt)
            await monitor.execute("migrate-set-capabilities", {"capabilities": caps})
        except DriverError:
            await self.destroy_vm(config.name)
            raise
        return vm

    async def create_vm(self, config: VmConfig) -> VmInfo:
        """Boot a VM and return once its workload generator answers."""
        vm = await self._launch(config, incoming=False)
        try:
            await guestctl.wait_ready(vm.paths.ctl, self.settings.boot_timeout_s)
        except DriverError as exc:
            console = vm.paths.console.read_text(errors="replace")[-300:] if vm.paths.console.exists() else ""
            await self.destroy_vm(config.name)
            raise DriverError(f"{exc}; console: {console!r}") from exc
        return await self._info(vm)

    def _ports_taken(self) -> set[int]:
        return {vm.listen_port for vm in self._vms.values() if vm.listen_port is not None}

    async def prepare_incoming(self, config: VmConfig, listen_host: str) -> str:
        """Start a destination QEMU listening on ``listen_host`` (a port of the configured range) and
        return its URI; a port found busy costs a fresh QEMU and another port (three tries)."""
        for attempt in range(3):
            vm = await self._launch(config, incoming=True)
            vm.listen_port = endpoints.pick_port(self.settings.migration_ports, self._ports_taken())
            try:
                await endpoints.use_tls(vm.monitor, self.settings.tls_dir, server=True)
                return await endpoints.listen_incoming(vm.monitor, listen_host, vm.listen_port)
            except endpoints.PortBusy:
                log.info("port %d busy (try %d): a fresh QEMU for %s", vm.listen_port, attempt + 1, config.name)
                await self.destroy_vm(config.name)
            except DriverError:
                await self.destroy_vm(config.name)
                raise
        raise DriverError(f"destination {config.name}: no free migration port in three tries")

    async def recover_incoming(self, vm: str, listen_host: str) -> str:
        """Destination of a broken postcopy: listen again (``migrate-recover``); returns the new URI."""
        entry = self._get(vm)
        entry.listen_port = endpoints.pick_port(self.settings.migration_ports, self._ports_taken())
        return await endpoints.recover_incoming(entry.monitor, listen_host, entry.listen_port)

    async def destroy_vm(self, vm: str) -> None:
        """Stop the QEMU process (QMP quit, then signals) and delete its state folder."""
        entry = self._get(vm)
        try:
            await asyncio.wait_for(entry.monitor.execute("quit"), 5.0)
        except (DriverError, TimeoutError):
            launch.kill(entry.pid, signal.SIGTERM)
        await entry.monitor.close()
        await self._wait_gone(entry.pid)
        for _ in range(40):  # the exited QEMU leaves its group once its parent (init) has reaped it
            if self._quota.remove(vm):
                break
            await asyncio.sleep(0.05)
        else:
            log.warning("cgroup of %s still busy; left in place", vm)
        shutil.rmtree(entry.paths.folder, ignore_errors=True)
        del self._vms[vm]

    @staticmethod
    async def _wait_gone(pid: int, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while launch.pid_alive(pid) and launch.is_qemu(pid):
            if time.monotonic() > deadline:
                launch.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + timeout_s
            await asyncio.sleep(0.05)

    # --- migration -------------------------------------------------------------------------------

    async def migrate(self, request: MigrationRequest, observer: Observer | None = None,
                      started_s: float | None = None) -> MigrationReport:
        """Migrate a VM away; on success the source QEMU is stopped and forgotten.

        ``started_s`` given: watch on a migration an earlier agent started (``pending_migrations``),
        with its timeout counted from that start. ``observer`` hears of postcopy pauses and recoveries.
        """
        vm = self._get(request.vm)
        await self._info(vm)  # refreshes ``incoming`` for a VM that arrived here
        if vm.migrating or vm.incoming:
            raise DriverError(f"VM {request.vm!r} cannot migrate now (migrating={vm.migrating}, "
                              f"incoming={vm.incoming})")
        attach = started_s is not None
        progress = new_progress(started_s if started_s is not None else time.time(), observer)
        vm.migrating, vm.progress = True, progress
        try:
            if not attach:
                host = request.dst_uri.split(":")[1]
                await endpoints.use_tls(vm.monitor, self.settings.tls_dir, server=False, hostname=host)
                launch.save_migration(vm.paths, request, progress.started_s)
            report = await run_migration(vm.monitor, request, progress, attach=attach, preempt=vm.preempt)
        finally:
            vm.migrating, vm.progress = False, None
        vm.paths.migration.unlink(missing_ok=True)
        if report.outcome is MigrationOutcome.COMPLETED:
            await self.destroy_vm(request.vm)
        return report

    def resume_migration(self, vm: str, dst_uri: str) -> None:
        """A paused postcopy of ``vm``: send the rest to ``dst_uri`` (retried with backoff until it takes)."""
        entry = self._get(vm)
        if entry.progress is None:
            raise DriverError(f"VM {vm!r} is not migrating")
        resume_to(entry.progress, dst_uri)

    def pending_migrations(self) -> list[tuple[MigrationRequest, float]]:
        """Outgoing migrations recorded by an earlier agent whose QEMU this driver adopted."""
        found = []
        for vm in self._vms.values():
            record = launch.load_migration(vm.paths)
            if record is not None and not vm.migrating:
                found.append(record)
        return found

    async def cancel_migration(self, vm: str) -> None:
        entry = self._get(vm)
        if not entry.migrating:
            raise DriverError(f"VM {vm!r} is not migrating")
        status = migration_status(await entry.monitor.execute("query-migrate"))
        if status.postcopy:
            raise InPostcopy(f"VM {vm!r} is in {status}: the guest runs on the destination and its "
                              "memory is split between both hosts; a postcopy is recovered, never cancelled")
        await entry.monitor.execute("migrate_cancel")

    async def wait_incoming(self, vm: str, timeout_s: float = 120.0) -> dict[str, float]:
        """Wait until an incoming migration has finished here; return its marks ("resume", "completed").

        Downtime of the move = this "resume" - the source report's timeline["stop"] (same clock).
        """
        entry = self._get(vm)
        mon = entry.monitor
        done = await mon.wait_event("MIGRATION", timeout_s, status=MigrationStatus.COMPLETED)
        entry.incoming = False
        marks = {"completed": done.timestamp_s}
        resume = mon.last("RESUME")
        if resume is not None:
            marks["resume"] = resume.timestamp_s
        faults = await self.postcopy_faults(vm)
        if faults is not None:
            marks["postcopy_blocktime_s"] = faults.blocktime_s
        return marks

    async def postcopy_faults(self, vm: str) -> PostcopyFaults | None:
        """Destination side: QEMU's remote-fault statistics of the VM's incoming postcopy (None before
        a postcopy phase, or where QEMU keeps none)."""
        entry = self._get(vm)
        return postcopy_faults(await entry.monitor.execute("query-migrate"), entry.preempt)

    def incoming_marks(self, vm: str) -> dict[str, float]:
        """What has been seen so far of an incoming migration (no waiting): "resume" once the guest runs
        here, "completed" once every page has arrived. For an agent that polls instead of waiting."""
        mon = self._get(vm).monitor
        marks: dict[str, float] = {}
        if (resume := mon.last("RESUME")) is not None:
            marks["resume"] = resume.timestamp_s
        if (done := mon.last("MIGRATION", status=MigrationStatus.COMPLETED)) is not None:
            marks["completed"] = done.timestamp_s
        return marks

    def incoming_failed(self, vm: str) -> bool:
        """True when the incoming migration of ``vm`` failed (e.g. the source cancelled it)."""
        entry = self._get(vm)
        failed = entry.monitor.last("MIGRATION", status=MigrationStatus.FAILED) is not None
        return failed or not launch.pid_alive(entry.pid)

    # --- guest -----------------------------------------------------------------------------------

    async def set_load(self, vm: str, load: float, dirty_mib_s: float) -> None:
        entry = self._get(vm)
        new = dataclasses.replace(entry.config, load=load, dirty_mib_s=dirty_mib_s)
        launch.validate_config(new)
        async with entry.ctl_lock:
            await guestctl.set_load(entry.paths.ctl, load, dirty_mib_s)
        entry.config = new
        launch.save_config(entry.paths, new)

    async def check_pages(self, vm: str) -> int:
        entry = self._get(vm)
        async with entry.ctl_lock:
            return await guestctl.check(entry.paths.ctl)

    async def guest_stats(self, vm: str) -> guestctl.GuestStats:
        entry = self._get(vm)
        async with entry.ctl_lock:
            return await guestctl.stats(entry.paths.ctl)

    async def guest_delay_histogram(self, vm: str) -> dict[int, int]:
        """The guest's finished tasks per delay bin (``guestctl.delay_bin_upper_s``)."""
        entry = self._get(vm)
        async with entry.ctl_lock:
            return await guestctl.delay_histogram(entry.paths.ctl)

    # --- observation -----------------------------------------------------------------------------

    async def vm_stats(self, vm: str) -> VmStats:
        """CPU since the previous call (cores, from /proc) and QEMU's latest dirty-rate measurement.

        The dirty rate is measured in the background (``calc-dirty-rate``, 1 s); a call returns the
        last finished measurement and starts the next, so it never blocks for the measuring time.
        """
        entry = self._get(vm)
        now, cpu = time.monotonic(), launch.cpu_seconds(entry.pid)
        mark, entry.cpu_mark = entry.cpu_mark, (now, cpu)
        load = (cpu - mark[1]) / (now - mark[0]) if mark and now > mark[0] else 0.0
        if not entry.migrating and not entry.incoming:
            await self._sample_dirty_rate(entry)
        return VmStats(vm, load, entry.dirty_bytes_per_s, entry.config.mem_mib)

    @staticmethod
    async def _sample_dirty_rate(entry: _Vm) -> None:
        try:
            info = await entry.monitor.execute("query-dirty-rate")
            status = dirty_rate_status(info)
            if status is DirtyRateStatus.MEASURED and "dirty-rate" in info:
                entry.dirty_bytes_per_s = float(info["dirty-rate"]) * 1024 * 1024  # QEMU reports MiB/s
            if status is not DirtyRateStatus.MEASURING:
                await entry.monitor.execute("calc-dirty-rate", {"calc-time": 1})
        except DriverError as exc:
            log.debug("dirty rate of %s unavailable: %s", entry.config.name, exc)

    async def _info(self, vm: _Vm) -> VmInfo:
        state = VmRunState.STOPPED
        if launch.pid_alive(vm.pid):
            wait_s = STATUS_WAIT_S if vm.incoming or vm.migrating else None  # only a migration can stick
            try:
                status = (await vm.monitor.execute("query-status", timeout_s=wait_s)).get("status", "")
                state = _RUNSTATES.get(status, VmRunState.PAUSED)
                if state is VmRunState.RUNNING or vm.migrating or vm.incoming:
                    info = await vm.monitor.execute("query-migrate", timeout_s=wait_s)
                    state = self._migration_state(vm, state, info)
            except DriverError as exc:  # a stuck monitor: a postcopy half stays protected as one
                log.debug("status of %s: %s", vm.config.name, exc)
                if vm.incoming or vm.migrating:
                    state = VmRunState.POSTCOPY if vm.incoming else VmRunState.MIGRATING
        return VmInfo(vm.config.name, state, vm.config, vm.pid, str(vm.paths.qmp))

    @staticmethod
    def _migration_state(vm: _Vm, state: VmRunState, info: dict[str, object]) -> VmRunState:
        mig = migration_status(info)
        if mig is MigrationStatus.COMPLETED and vm.incoming:
            vm.incoming = False  # the incoming migration has landed here
        if mig.paused:
            return VmRunState.POSTCOPY_PAUSED  # a broken link: the guest is split between two hosts
        if mig.postcopy and vm.incoming:
            return VmRunState.POSTCOPY
        if vm.migrating or mig.precopy:
            return VmRunState.MIGRATING
        return state

    async def list_vms(self) -> list[VmInfo]:
        return [await self._info(vm) for vm in list(self._vms.values())]

    async def _preempt(self, monitor: Monitor) -> bool:
        return self.settings.postcopy_preempt and PREEMPT in await offered_capabilities(monitor)

    def _get(self, vm: str) -> _Vm:
        try:
            return self._vms[vm]
        except KeyError:
            raise DriverError(f"no VM {vm!r} on this host") from None

    # --- restart ---------------------------------------------------------------------------------

    async def adopt(self) -> list[VmInfo]:
        """Reconnect to the QEMU processes recorded in the state folder; clear records of dead ones."""
        found: list[VmInfo] = []
        for folder in sorted(p for p in self.settings.state_dir.iterdir() if p.is_dir()):
            paths = launch.VmPaths(folder)
            pid = launch.read_pid(paths)
            if folder.name in self._vms or not paths.config.exists():
                continue
            if pid is None or not launch.pid_alive(pid) or not launch.is_qemu(pid):
                log.info("VM %s: no QEMU process any more, removing its state", folder.name)
                shutil.rmtree(folder, ignore_errors=True)
                continue
            monitor = Monitor(f"{folder.name}@{self.settings.state_dir.name}")
            await monitor.connect(paths.qmp)
            vm = _Vm(launch.load_config(paths), paths, pid, monitor)
            vm.preempt = await self._preempt(monitor)
            status = (await monitor.execute("query-status")).get("status")
            mig = migration_status(await monitor.execute("query-migrate"))
            # an incoming migration still running (or paused) here, not an outgoing one we recorded
            vm.incoming = _RUNSTATES.get(str(status)) is VmRunState.INCOMING or (
                mig not in (MigrationStatus.NONE, MigrationStatus.COMPLETED) and not paths.migration.exists())
            self._vms[folder.name] = vm
            found.append(await self._info(vm))
        return found

    async def close(self) -> None:
        """Disconnect from every QEMU; the processes keep running."""
        for vm in self._vms.values():
            await vm.monitor.close()
        self._vms.clear()
