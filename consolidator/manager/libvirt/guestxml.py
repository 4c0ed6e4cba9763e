"""Domain XML for the project's test guest under libvirt (tests, benchmark and the lab only).

An operator's domains are theirs; the engine never writes their XML. The test guest boots its kernel
and initramfs directly, has a virtio disk on shared storage and a virtio NIC (so a migration moves
what real domains have), its console on serial 0 (a file) and the workload generator's control
channel on serial 1: a unix socket under the daemon's private ``/var/lib/libvirt/guest/``, so the
source's and the destination's QEMU on one machine never bind the same path.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

GUEST_DIR = "/var/lib/libvirt/guest"  # inside a daemon's private mounts


@dataclass(frozen=True, slots=True)
class GuestDomain:
    name: str
    kernel: Path
    initrd: Path
    cmdline: str
    mem_mib: int = 256
    vcpus: int = 1
    disk: Path | None = None  # a raw image on storage both hosts see at the same path
    nic: bool = True
    cpu_quota: float | None = None  # cores (cputune quota/period); None: no cap
    emulator: str = "/usr/bin/qemu-system-x86_64"

    @property
    def ctl_path(self) -> str:
        return f"{GUEST_DIR}/{self.name}.ctl"


def mac_of(name: str) -> str:
    """A stable locally administered MAC for a guest name."""
    h = hashlib.sha1(name.encode()).digest()
    return f"52:54:00:{h[0]:02x}:{h[1]:02x}:{h[2]:02x}"


def domain_xml(g: GuestDomain) -> str:
    """The XML for ``virDomainCreateXML`` (transient) or ``virDomainDefineXML`` (persistent)."""
    devices = [f"<emulator>{escape(g.emulator)}</emulator>"]
    if g.disk is not None:
        # cache='none': libvirt treats the disk as safe to migrate (no host page cache to flush)
        devices.append("<disk type='file' device='disk'><driver name='qemu' type='raw' cache='none'/>"
                       f"<source file={quoteattr(str(g.disk))}/><target dev='vda' bus='virtio'/></disk>")
    if g.nic:
        devices.append(f"<interface type='ethernet'><mac address='{mac_of(g.name)}'/>"
                       "<model type='virtio'/></interface>")
    devices += [
        f"<serial type='file'><source path={quoteattr(f'/var/log/libvirt/qemu/{g.name}-console.log')}/>"
        "<target port='0'/></serial>",
        f"<serial type='unix'><source mode='bind' path={quoteattr(g.ctl_path)}/><target port='1'/></serial>",
        "<memballoon model='none'/>",
    ]
    cputune = ""
    if g.cpu_quota is not None:
        cputune = f"<cputune><period>100000</period><quota>{max(1000, int(g.cpu_quota * 100000))}</quota></cputune>"
    return (
        f"<domain type='qemu'><name>{escape(g.name)}</name>"
        f"<memory unit='MiB'>{g.mem_mib}</memory><vcpu>{g.vcpus}</vcpu>{cputune}"
        "<os><type arch='x86_64' machine='pc'>hvm</type>"
        f"<kernel>{escape(str(g.kernel))}</kernel><initrd>{escape(str(g.initrd))}</initrd>"
        f"<cmdline>{escape(g.cmdline)}</cmdline></os>"
        "<features><acpi/></features><clock offset='utc'/>"
        "<on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>"
        f"<devices>{''.join(devices)}</devices></domain>"
    )
