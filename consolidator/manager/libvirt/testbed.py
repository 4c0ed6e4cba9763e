"""Two libvirt hosts on this machine for tests, the benchmark and the lab: private libvirtd daemons in
two network namespaces joined by a shaped link (``ShapedLink``, 120 MB/s by default), a shared image
folder both see at the same path (the guest's disk), and the project's test guest as a domain.

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
from pathlib import Path

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


class Testbed:
    """Hosts ``names[0]`` (link end A) and ``names[1]`` (end B), each a private libvirtd."""

    __test__ = False  # not a pytest class

    def __init__(self, names: tuple[str, str] = ("W", "S1"), rate_bytes_per_s: float = 120e6,
                 tag: str | None = None) -> None:
        self.tag = tag or str(os.getpid() % 100000)
        self.names = names
        self.link = ShapedLink(rate_bytes_per_s, tag=f"lv{self.tag}", subnet=251)
        self.root = Path(tempfile.mkdtemp(prefix=f"clv{self.tag}-"))
        self.shared = self.root / "shared"
        self.daemons: dict[str, PrivateLibvirtd] = {}
        self.image: GuestImage | None = None

    def open(self) -> Testbed:
        try:
            self.shared.mkdir()
            self.link.open()
            for name, end in zip(self.names, (self.link.a, self.link.b), strict=True):
                spec = DaemonSpec(name, end.netns, self.root / name, shared=(self.shared,))
                self.daemons[name] = PrivateLibvirtd(spec).start()
        except Exception:
            self.close()
            raise
        return self

    def settings(self, host: str, migration: LibvirtSettings | None = None) -> LibvirtHostSettings:
        """One host's engine settings, as cluster.toml would give them (suspend = freeze the daemon)."""
        end = self.link.a if host == self.names[0] else self.link.b
        d = self.daemons[host]
        return LibvirtHostSettings(uri=d.uri, migrate_uri=f"tcp://{end.address}",
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
        self.link.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Testbed:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
