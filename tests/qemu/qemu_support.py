"""Helpers of the real-QEMU tests (a module of its own so test files can import it by a unique name)."""

from __future__ import annotations

import signal
from pathlib import Path

from consolidator.agent.guest import GuestImage
from consolidator.agent.qemu import DriverSettings, QemuDriver, launch
from consolidator.agent.qemu.netlink import ShapedLink

LINK_BYTES_PER_S = 120e6  # the paper's GbE migration network (DESIGN §2)


class Pair:
    """Settings for a source host (namespace A) and a destination host (namespace B)."""

    def __init__(self, root: Path, link: ShapedLink, guest: GuestImage) -> None:
        self.link = link
        self.src_settings = DriverSettings(root / "a", netns=link.a.netns, guest=guest)
        self.dst_settings = DriverSettings(root / "b", netns=link.b.netns, guest=guest)

    def drivers(self) -> tuple[QemuDriver, QemuDriver]:
        """New drivers; make them inside the test's event loop (QMP clients bind to it)."""
        return QemuDriver(self.src_settings), QemuDriver(self.dst_settings)


def kill_leftovers(root: Path) -> None:
    """A failed test must not leave QEMU running: kill what its state folders record."""
    for pidfile in root.glob("*/*/qemu.pid"):
        pid = launch.read_pid(launch.VmPaths(pidfile.parent))
        if pid is not None and launch.is_qemu(pid):
            launch.kill(pid, signal.SIGKILL)
