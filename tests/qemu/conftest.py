"""Fixtures for the real-QEMU tests: the built guest, a shaped link between two namespaces, drivers.

Everything here is real: QEMU 10 (TCG on this machine), Linux network namespaces, ``tc tbf``.
Tests skip only where QEMU cannot run at all (no binary, not root for namespaces and cgroups).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from qemu_support import LINK_BYTES_PER_S, Pair, kill_leftovers

from consolidator.agent.guest import GuestImage, build_guest
from consolidator.agent.qemu.launch import why_qemu_cannot_run
from consolidator.agent.qemu.netlink import ShapedLink


@pytest.fixture(scope="session")
def guest() -> GuestImage:
    reason = why_qemu_cannot_run()
    if reason:
        pytest.skip(reason)
    return build_guest()


@pytest.fixture(scope="session")
def link(guest: GuestImage) -> Iterator[ShapedLink]:
    with ShapedLink(LINK_BYTES_PER_S, tag=str(90000 + os.getpid() % 9000)) as shaped:
        yield shaped


@pytest.fixture
def pair(link: ShapedLink, guest: GuestImage) -> Iterator[Pair]:
    root = Path(f"/tmp/cq-{os.getpid()}")  # short: unix socket paths must stay under 108 bytes
    shutil.rmtree(root, ignore_errors=True)
    yield Pair(root, link, guest)
    kill_leftovers(root)
    shutil.rmtree(root, ignore_errors=True)
