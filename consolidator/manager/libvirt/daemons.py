"""Private libvirtd daemons on one machine: each "host" is a libvirtd in its own network, mount and UTS
namespace, with its own /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/log/libvirt (DESIGN §5).

Used by the tests, the benchmark and ``lab run --engine libvirt``; an operator's hosts run their own
libvirtd and need none of this. The daemon's unix socket is placed under ``root/sock`` (outside the
private mounts), so the manager in the initial namespaces reaches it as
``qemu+unix:///system?socket=<root>/sock/libvirt-sock`` — a local socket, root only (mode 0700).
Needs root. ``stop()`` kills the daemon and every QEMU it started.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE = ("etc/libvirt:/etc/libvirt", "run:/run/libvirt", "lib:/var/lib/libvirt", "log:/var/log/libvirt",
           "cache:/var/cache/libvirt")

LIBVIRTD_CONF = """\
unix_sock_dir = "{sock}"
unix_sock_rw_perms = "0700"
unix_sock_ro_perms = "0700"
unix_sock_admin_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
host_uuid = "{host_uuid}"
log_filters = "{filters}"
log_outputs = "1:file:{log}/libvirtd.log"
keepalive_interval = 5
keepalive_count = 5
"""

# No security driver, no per-VM mount namespace, no virtlogd: the daemon runs in a container-like
# sandbox where those would fail; QEMU runs as root in the daemon's namespaces.
QEMU_CONF = """\
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
namespaces = []
stdio_handler = "file"
cgroup_controllers = [ "cpu", "cpuacct" ]
migration_port_min = 49152
migration_port_max = 49215
shared_filesystems = [{shared}]
"""


def libvirtd_binary() -> str:
    """libvirtd's path (Debian puts it in /usr/sbin, which a non-login PATH may lack)."""
    return shutil.which("libvirtd") or "/usr/sbin/libvirtd"


def why_libvirtd_cannot_run() -> str | None:
    """Why private libvirtd daemons cannot run here, or None if they can."""
    if os.geteuid() != 0:
        return "needs root (network and mount namespaces)"
    for tool in ("libvirtd", "ip", "unshare", "mount", "qemu-system-x86_64"):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            return f"{tool} is not installed (scripts/setup.d/40-libvirt.sh installs libvirt)"
    try:
        import libvirt  # noqa: F401
    except ImportError:
        return "the libvirt-python binding is not installed (pip install '.[libvirt]')"
    return None


@dataclass(frozen=True, slots=True)
class DaemonSpec:
    name: str  # host name, also the daemon's hostname in its UTS namespace
    netns: str  # network namespace it runs in (made by the caller, e.g. ShapedLink)
    root: Path  # private state folder on the real filesystem
    shared: tuple[Path, ...] = ()  # folders every daemon sees at the same path: shared storage
    log_filters: str | None = None  # libvirtd's log_filters; None: $CONSOLIDATOR_LIBVIRTD_LOG_FILTERS or "3:*"


class PrivateLibvirtd:
    """One libvirtd in its own namespaces; ``uri`` reaches it from the initial namespaces."""

    def __init__(self, spec: DaemonSpec, start_timeout_s: float = 30.0) -> None:
        self.spec = spec
        self.start_timeout_s = start_timeout_s
        self.host_uuid = str(uuid.uuid4())
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        return self.spec.root / "sock" / "libvirt-sock"

    @property
    def uri(self) -> str:
        return f"qemu+unix:///system?socket={self.socket_path}"

    def path(self, inside: str) -> Path:
        """Where a path under the daemon's private /var/lib/libvirt is on the real filesystem."""
        rel = Path(inside).relative_to("/var/lib/libvirt")
        return self.spec.root / "lib" / rel

    def _write_config(self) -> None:
        root = self.spec.root
        for sub in ("etc/libvirt/qemu", "run", "lib/guest", "log/qemu", "cache", "sock"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "sock").chmod(0o700)
        (root / "etc/libvirt/libvirtd.conf").write_text(LIBVIRTD_CONF.format(
            sock=root / "sock", host_uuid=self.host_uuid, log="/var/log/libvirt",
            filters=self.spec.log_filters or os.environ.get("CONSOLIDATOR_LIBVIRTD_LOG_FILTERS", "3:*")))
        (root / "etc/libvirt/qemu.conf").write_text(
            QEMU_CONF.format(shared=", ".join(f'"{p}"' for p in self.spec.shared)))
        (root / "etc/libvirt/libvirt.conf").write_text("")
        # its own name resolves without DNS (libvirtd looks it up at start and for migrations)
        (root / "hosts").write_text(f"127.0.0.1 localhost\n127.0.1.1 {self.spec.name}\n")

    def start(self) -> PrivateLibvirtd:
        import libvirt

        self._write_config()
        binds = [f"{self.spec.root / a}:{b}" for a, b in (p.split(":") for p in PRIVATE)]
        binds.append(f"{self.spec.root / 'hosts'}:/etc/hosts")
        argv = ["ip", "netns", "exec", self.spec.netns, "unshare", "--mount", "--uts", "--propagation",
                "private", sys.executable, "-m", "consolidator.manager.libvirt.nsboot", self.spec.name,
                *binds, "--", libvirtd_binary(), "-f", "/etc/libvirt/libvirtd.conf",
                "--pid-file", "/run/libvirt/libvirtd.pid"]
        out = open(self.spec.root / "libvirtd.out", "ab")  # noqa: SIM115 - the daemon owns it
        self._proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"libvirtd for {self.spec.name} exited ({self._proc.returncode}): "
                                   f"{self._tail()}")
            if self.socket_path.exists():
                try:
                    libvirt.open(self.uri).close()
                    break
                except libvirt.libvirtError:
                    pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"libvirtd for {self.spec.name} did not answer within "
                                   f"{self.start_timeout_s} s: {self._tail()}")
            time.sleep(0.1)
        log.info("libvirtd %s up in netns %s: %s", self.spec.name, self.spec.netns, self.uri)
        return self

    def log_text(self) -> str:
        """The daemon's log file (its private /var/log/libvirt/libvirtd.log)."""
        p = self.spec.root / "log" / "libvirtd.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def _tail(self) -> str:
        text = ""
        for name in ("libvirtd.out", "log/libvirtd.log"):
            p = self.spec.root / name
            if p.exists():
                text += p.read_text(errors="replace")[-600:]
        return text.strip()

    @property
    def pid(self) -> int | None:
        """The daemon's pid (the exec chain ip -> unshare -> python -> libvirtd keeps it)."""
        return None if self._proc is None else self._proc.pid

    def qemu_pids(self) -> list[int]:
        """QEMU processes this daemon started (pid files under its private /run/libvirt/qemu)."""
        pids = []
        for pidfile in (self.spec.root / "run" / "qemu").glob("*.pid"):
            try:
                pids.append(int(pidfile.read_text().strip()))
            except (OSError, ValueError):
                continue
        return pids

    def stop(self) -> None:
        """Kill the daemon, then its QEMU processes (they outlive a killed libvirtd)."""
        pids = self.qemu_pids()
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            os.killpg(self._proc.pid, signal.SIGCONT)  # a frozen ("suspended") daemon must see it
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait(5)
        for pid in pids + self.qemu_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._proc = None
