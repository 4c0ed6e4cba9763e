"""libvirt hosts on this machine for tests, the benchmark and the lab: private libvirtd daemons in
network namespaces — two joined by a shaped link (``ShapedLink``, 120 MB/s by default), or the lab's
hosts on its bridge (any ``HostNetwork``) — a shared image folder all see at the same path (the
guests' disks), and the project's test guest as a domain.

An emulated host "suspends" by freezing its libvirtd (SIGSTOP: it stops answering, as a sleeping host
does) and is woken by thawing it (SIGCONT) — both plain argv commands, like a real host's configured
suspend command and the power area's waker. Needs root; ``close()`` removes everything it made.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import libvirt

from consolidator.agent.guest import GuestImage, build_guest
from consolidator.agent.qemu import guestctl
from consolidator.agent.qemu.launch import kernel_cmdline
from consolidator.agent.qemu.netlink import ShapedLink
from consolidator.manager.libvirt.daemons import DaemonSpec, PrivateLibvirtd
from consolidator.manager.libvirt.engine import LibvirtEngine, LibvirtHostSettings
from consolidator.manager.libvirt.guestxml import GuestDomain, domain_xml
from consolidator.manager.libvirt.migration import LibvirtSettings
from consolidator.protocol.schemas import VmConfig

log = logging.getLogger(__name__)
MONITOR_LOG = "2:qemu.qemu_monitor 3:*"  # libvirtd logs each QMP command it sends to QEMU


class HostNetwork(Protocol):
    """The namespaces the daemons run in, and their addresses on the migration network."""

    def open(self) -> None: ...
    def close(self) -> None: ...
    def netns_of(self, host: str) -> str: ...
    def address_of(self, host: str) -> str: ...


class PairNetwork:
    """Two hosts joined by a shaped veth pair: ``names[0]`` at end A, ``names[1]`` at end B."""

    def __init__(self, names: Sequence[str], rate_bytes_per_s: float, tag: str) -> None:
        self.names = tuple(names)
        self.link = ShapedLink(rate_bytes_per_s, tag=f"lv{tag}", subnet=251)

    def open(self) -> None:
        self.link.open()

    def close(self) -> None:
        self.link.close()

    def netns_of(self, host: str) -> str:
        return (self.link.a if host == self.names[0] else self.link.b).netns

    def address_of(self, host: str) -> str:
        return (self.link.a if host == self.names[0] else self.link.b).address


class Testbed:
    """One private libvirtd per host of ``names``: two on a ``PairNetwork`` by default."""

    __test__ = False  # not a pytest class

    def __init__(self, names: Sequence[str] = ("W", "S1"), rate_bytes_per_s: float = 120e6,
                 tag: str | None = None, log_filters: str | None = None,
                 network: HostNetwork | None = None) -> None:
        self.tag = tag or str(os.getpid() % 100000)
        self.names = tuple(names)
        self.network = network or PairNetwork(self.names, rate_bytes_per_s, self.tag)
        self.root = Path(tempfile.mkdtemp(prefix=f"clv{self.tag}-"))
        self.shared = self.root / "shared"
        self.daemons: dict[str, PrivateLibvirtd] = {}
        self.image: GuestImage | None = None
        self.log_filters = log_filters  # e.g. MONITOR_LOG: what libvirt asks of QEMU, in the daemons' logs

    def open(self) -> Testbed:
        try:
            self.shared.mkdir()
            self.network.open()
            for name in self.names:
                spec = DaemonSpec(name, self.network.netns_of(name), self.root / name, shared=(self.shared,),
                                  log_filters=self.log_filters)
                self.daemons[name] = PrivateLibvirtd(spec).start()
        except Exception:
            self.close()
            raise
        return self

    def settings(self, host: str, migration: LibvirtSettings | None = None) -> LibvirtHostSettings:
        """One host's engine settings, as cluster.toml would give them (suspend = freeze the daemon)."""
        d = self.daemons[host]
        return LibvirtHostSettings(uri=d.uri, migrate_uri=f"tcp://{self.network.address_of(host)}",
                                   suspend_command=("kill", "-STOP", str(d.pid)),
                                   wake_command=("kill", "-CONT", str(d.pid)), emulated=True,
                                   migration=migration or LibvirtSettings())

    def engines(self, migration: LibvirtSettings | None = None) -> dict[str, LibvirtEngine]:
        return {name: LibvirtEngine(name, self.settings(name, migration)) for name in self.names}

    def wake(self, host: str) -> None:
        """The waker of an emulated host: thaw its daemon."""
        pid = self.daemons[host].pid
        if pid is None:
            raise RuntimeError(f"{host} has no daemon")
        os.kill(pid, signal.SIGCONT)

    def freeze(self, host: str) -> None:
        pid = self.daemons[host].pid
        if pid is not None:
            os.kill(pid, signal.SIGSTOP)

    def guest(self) -> GuestImage:
        if self.image is None:
            self.image = build_guest()
        return self.image

    def create_guest(self, host: str, config: VmConfig, disk_mib: int = 64, ready_timeout_s: float = 120.0) -> None:
        """Start the test guest on ``host`` (transient domain), disk in the shared folder; wait until
        its workload generator answers."""
        image = self.guest()
        disk = self.shared / f"{config.name}.img"
        with open(disk, "wb") as f:
            f.truncate(disk_mib * 1024 * 1024)
        g = GuestDomain(config.name, image.kernel_path, image.initrd_path, kernel_cmdline(config),
                        mem_mib=config.mem_mib, vcpus=config.vcpus, disk=disk)
        conn = libvirt.open(self.daemons[host].uri)
        try:
            conn.createXML(domain_xml(g), 0)
        finally:
            conn.close()
        asyncio.run(guestctl.wait_ready(self.ctl(host, config.name), ready_timeout_s))

    def ctl(self, host: str, vm: str) -> Path:
        """The guest's control socket as seen from here (it lives in the host's private mounts)."""
        return self.daemons[host].path(f"/var/lib/libvirt/guest/{vm}.ctl")

    def check_pages(self, host: str, vm: str) -> int:
        return asyncio.run(guestctl.check(self.ctl(host, vm)))

    def set_load(self, host: str, vm: str, load: float, dirty_mib_s: float) -> None:
        asyncio.run(guestctl.set_load(self.ctl(host, vm), load, dirty_mib_s))

    def reset(self) -> None:
        """Both daemons answering and no domain left on either (between tests)."""
        for name, d in self.daemons.items():
            self.wake(name)
            conn = libvirt.open(d.uri)
            try:
                for dom in conn.listAllDomains():
                    persistent = dom.isPersistent()
                    if dom.isActive():
                        dom.destroy()
                    if persistent:
                        dom.undefine()
            finally:
                conn.close()

    def close(self) -> None:
        for d in self.daemons.values():
            d.stop()
        self.daemons.clear()
        self.network.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Testbed:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
