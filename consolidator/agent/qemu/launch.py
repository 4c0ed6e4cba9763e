"""Everything about one QEMU process except QMP: its files, its argv, its cgroup and its pid.

A VM's state folder ``<state_dir>/<name>/`` holds ``config.json`` (the VmConfig), ``qemu.pid``,
``qmp.sock``, ``ctl.sock`` (the guest's control serial port) and ``console.log``; that is all
``adopt()`` needs to find the process again after the driver restarts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

from consolidator.agent.guest import GuestImage
from consolidator.agent.hypervisor import DriverError, MigrationRequest
from consolidator.domain.types import MigrationMethod
from consolidator.protocol.migration import MigrationOptions
from consolidator.protocol.schemas import VmConfig

log = logging.getLogger(__name__)

VM_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
MAX_UNIX_PATH = 107  # sun_path is 108 bytes with the NUL
MIN_MEM_MIB, MAX_MEM_MIB = 64, 65536


@dataclass(frozen=True, slots=True)
class VmPaths:
    """The files of one VM in the driver's state folder."""

    folder: Path

    @property
    def config(self) -> Path:
        return self.folder / "config.json"

    @property
    def pidfile(self) -> Path:
        return self.folder / "qemu.pid"

    @property
    def qmp(self) -> Path:
        return self.folder / "qmp.sock"

    @property
    def ctl(self) -> Path:
        return self.folder / "ctl.sock"

    @property
    def console(self) -> Path:
        return self.folder / "console.log"

    @property
    def migration(self) -> Path:
        """The outgoing migration in flight (request and start), so a restarted agent can watch it on."""
        return self.folder / "migration.json"


def validate_config(config: VmConfig) -> None:
    """Reject names and sizes QEMU or the state folder cannot take, before anything starts."""
    if not VM_NAME.match(config.name):
        raise DriverError(f"VM name {config.name!r} must match {VM_NAME.pattern}")
    if not MIN_MEM_MIB <= config.mem_mib <= MAX_MEM_MIB:
        raise DriverError(f"mem_mib {config.mem_mib} outside {MIN_MEM_MIB}..{MAX_MEM_MIB}")
    if not 1 <= config.vcpus <= 64:
        raise DriverError(f"vcpus {config.vcpus} outside 1..64")
    if not 0 < config.cpu_quota <= 64:
        raise DriverError(f"cpu_quota {config.cpu_quota} must be in (0, 64]")
    if not 0 <= config.load <= 1 or config.dirty_mib_s < 0:
        raise DriverError(f"load {config.load} must be in 0..1 and dirty_mib_s {config.dirty_mib_s} >= 0")
    if config.wws_mib is not None and not 1 <= config.wws_mib <= config.mem_mib - 48:
        raise DriverError(f"wws_mib {config.wws_mib} must be in 1..mem_mib-48 ({config.mem_mib - 48})")


def vm_paths(state_dir: Path, name: str) -> VmPaths:
    paths = VmPaths(state_dir / name)
    if len(str(paths.qmp)) > MAX_UNIX_PATH:
        raise DriverError(f"state dir {state_dir} is too long for a unix socket path")
    return paths


def save_config(paths: VmPaths, config: VmConfig) -> None:
    tmp = paths.config.with_suffix(".tmp")
    tmp.write_text(json.dumps(dataclasses.asdict(config), indent=2))
    os.replace(tmp, paths.config)


def load_config(paths: VmPaths) -> VmConfig:
    try:
        return VmConfig(**json.loads(paths.config.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise DriverError(f"cannot read {paths.config}: {exc}") from exc


def why_qemu_cannot_run() -> str | None:
    """Why live VMs with shaped links cannot run on this machine, or None if they can."""
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86_64 is not installed (scripts/setup.d/20-qemu.sh installs it)"
    if os.geteuid() != 0:
        return "needs root for network namespaces, tc and cgroups"
    if shutil.which("ip") is None:
        return "iproute2 ('ip') is not installed"
    return None


def detect_accel() -> str:
    """'kvm' where the CPU shows vmx/svm and /dev/kvm opens, else 'tcg' (DESIGN §5: paravirtual KVM)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "tcg"
    has_vt = re.search(r"^flags\s*:.*\b(vmx|svm)\b", flags, re.MULTILINE) is not None
    if has_vt and os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "kvm"
    return "tcg"


def kernel_cmdline(config: VmConfig, seed: int = 1) -> str:
    # no_timer_check: the kernel's boot-time IO-APIC timer check fails when a TCG vCPU is starved (a
    # busy machine) and the guest then hangs ("8254 timer not connected to IO-APIC"); VMs skip it
    words = ["console=ttyS0", "quiet", "panic=-1", "no_timer_check", f"wl.load={config.load:g}",
             f"wl.dirty={config.dirty_mib_s:g}", f"wl.seed={seed}", f"wl.quota={config.cpu_quota:g}"]
    if config.wws_mib is not None:
        words.append(f"wl.wws_mib={config.wws_mib}")
    return " ".join(words)


def qemu_argv(binary: str, config: VmConfig, image: GuestImage, paths: VmPaths, accel: str,
              incoming: bool, netns: str | None = None) -> list[str]:
    """The full argv (no shell); QEMU daemonizes once its monitor and devices are up."""
    accel_arg = "tcg,tb-size=64" if accel == "tcg" else accel
    argv = [] if netns is None else ["ip", "netns", "exec", netns]
    argv += [
        binary, "-name", config.name, "-machine", "pc", "-accel", accel_arg,
        "-m", f"{config.mem_mib}M", "-smp", str(config.vcpus),
        "-nodefaults", "-display", "none", "-no-reboot",
        "-kernel", str(image.kernel_path), "-initrd", str(image.initrd_path),
        "-append", kernel_cmdline(config),
        "-chardev", f"file,id=con,path={paths.console}", "-serial", "chardev:con",
        "-chardev", f"socket,id=ctl,path={paths.ctl},server=on,wait=off", "-serial", "chardev:ctl",
        "-qmp", f"unix:{paths.qmp},server=on,wait=off",
        "-pidfile", str(paths.pidfile), "-daemonize",
    ]
    if incoming:
        argv += ["-incoming", "defer"]
    return argv


def save_migration(paths: VmPaths, request: MigrationRequest, started_s: float) -> None:
    record = {"vm": request.vm, "dst_uri": request.dst_uri, "method": request.method.value,
              "options": request.options.model_dump(mode="json"), "started_s": started_s}
    tmp = paths.migration.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, paths.migration)


def load_migration(paths: VmPaths) -> tuple[MigrationRequest, float] | None:
    """The recorded migration in flight, or None (none recorded, or a record that cannot be read)."""
    try:
        record = json.loads(paths.migration.read_text())
        started_s = float(record.pop("started_s"))
        options = MigrationOptions.model_validate(record["options"])
        return MigrationRequest(record["vm"], record["dst_uri"], MigrationMethod(record["method"]), options), started_s
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as exc:  # pydantic's ValidationError is a ValueError
        log.warning("unreadable migration record %s: %s", paths.migration, exc)
        return None


def read_pid(paths: VmPaths) -> int | None:
    try:
        return int(paths.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def is_qemu(pid: int) -> bool:
    try:
        return b"qemu-system" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the whole QEMU process (all threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError as exc:
        raise DriverError(f"process {pid} is gone") from exc
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def kill(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


class CpuQuota:
    """Caps a QEMU process at ``cpu_quota`` cores with a cgroup: v2 ``cpu.max`` or v1 CFS quota.

    One group per (state dir, VM) so a VM's source and destination processes never share one.
    ``host_cap_cores``: the host's VMs together get at most this many cores (an emulated host of a
    smaller capacity, e.g. a capped Server node in the lab): their groups then sit in one group
    ``<tag>-host`` with that quota. Where neither controller is writable the VM runs uncapped and a
    warning says so.
    """

    PERIOD_US = 100_000

    def __init__(self, state_dir: Path, root: Path = Path("/sys/fs/cgroup"),
                 host_cap_cores: float | None = None) -> None:
        self._tag = hashlib.sha1(str(state_dir.resolve()).encode()).hexdigest()[:8]
        self._root = root
        self._host_cap = host_cap_cores

    def _base(self) -> tuple[Path, bool] | None:
        v2 = self._root / "cgroup.controllers"
        if v2.exists() and "cpu" in v2.read_text().split():
            return self._root / "consolidator", True
        if (self._root / "cpu" / "cpu.cfs_quota_us").exists():
            return self._root / "cpu" / "consolidator", False
        return None

    def _group(self, vm: str) -> tuple[Path, bool] | None:
        found = self._base()
        if found is None:
            return None
        base, is_v2 = found
        if self._host_cap is not None:
            base = base / f"{self._tag}-host"
        return base / f"{self._tag}-{vm}", is_v2

    def _write_quota(self, group: Path, cores: float, is_v2: bool) -> None:
        quota_us = max(1000, int(cores * self.PERIOD_US))
        if is_v2:
            (group / "cpu.max").write_text(f"{quota_us} {self.PERIOD_US}")
        else:
            (group / "cpu.cfs_period_us").write_text(str(self.PERIOD_US))
            (group / "cpu.cfs_quota_us").write_text(str(quota_us))

    def group_path(self, vm: str) -> Path | None:
        """Where the VM's group is (or would be); None without a usable controller."""
        found = self._group(vm)
        return None if found is None else found[0]

    def apply(self, vm: str, pid: int, cores: float) -> Path | None:
        found = self._group(vm)
        if found is None:
            log.warning("no writable cpu cgroup controller: VM %s runs without a CPU quota", vm)
            return None
        group, is_v2 = found
        try:
            if is_v2:
                chain = [self._root]
                for part in group.parent.relative_to(self._root).parts:
                    chain.append(chain[-1] / part)
                for parent in chain:
                    parent.mkdir(exist_ok=True)
                    (parent / "cgroup.subtree_control").write_text("+cpu")
                group.mkdir(exist_ok=True)
            else:
                group.mkdir(parents=True, exist_ok=True)
            if self._host_cap is not None:
                self._write_quota(group.parent, self._host_cap, is_v2)
                cores = min(cores, self._host_cap)  # v1 refuses a child quota above its parent's (EINVAL)
            self._write_quota(group, cores, is_v2)
            (group / "cgroup.procs").write_text(str(pid))
        except OSError as exc:
            log.warning("cannot set a CPU quota for VM %s in %s: %s", vm, group, exc)
            return None
        return group

    def groups(self) -> list[str]:
        """The VM names of this state folder's groups that exist (left by any run of its driver)."""
        found = self._group("x")
        if found is None or not found[0].parent.exists():
            return []
        prefix = f"{self._tag}-"
        return sorted(p.name.removeprefix(prefix) for p in found[0].parent.iterdir()
                      if p.is_dir() and p.name.startswith(prefix) and p.name != f"{self._tag}-host")

    def remove(self, vm: str) -> bool:
        """Delete the VM's group; False while it still holds a (just exited, not yet reaped) process."""
        found = self._group(vm)
        if found is None or not found[0].exists():
            return True
        try:
            found[0].rmdir()
        except OSError as exc:
            log.debug("cgroup %s not removed yet: %s", found[0], exc)
            return False
        if self._host_cap is not None:  # the host's group goes with its last VM
            with contextlib.suppress(OSError):
                found[0].parent.rmdir()
        return True
