"""The guest image: built from real Debian packages, cached by the hash of its inputs."""

from __future__ import annotations

import gzip

import pytest

from consolidator.agent.guest import GuestImage, build_guest
from consolidator.agent.guest import build as guest_build
from consolidator.agent.guest.cpio import Archive


def test_newc_archive_entries_are_aligned_and_terminated() -> None:
    archive = Archive()
    archive.add_dir("bin")
    archive.add_char_device("dev/console", major=5, minor=1)
    archive.add_file("init", b"#!/bin/sh\n", mode=0o755)
    data = archive.finish()
    assert data.startswith(b"070701")
    assert data.count(b"070701") == 4  # three entries and the trailer
    assert b"TRAILER!!!\0" in data
    assert len(data) % 4 == 0
    console = data.index(b"dev/console")
    header = data[console - 110 : console]
    assert header[78:86] == b"00000005" and header[86:94] == b"00000001"  # rdevmajor, rdevminor


@pytest.mark.qemu
def test_build_makes_kernel_and_initramfs_with_workload(guest: GuestImage) -> None:
    assert guest.kernel_path.stat().st_size > 1_000_000
    assert "cloud-amd64" in guest.kernel_version
    initramfs = gzip.decompress(guest.initrd_path.read_bytes())
    for name in (b"init\0", b"bin/busybox\0", b"bin/workload\0", b"dev/console\0"):
        assert name in initramfs


@pytest.mark.qemu
def test_build_is_cached_until_an_input_changes(guest: GuestImage, monkeypatch: pytest.MonkeyPatch) -> None:
    before = guest.initrd_path.stat().st_mtime_ns
    again = build_guest()
    assert again == guest
    assert guest.initrd_path.stat().st_mtime_ns == before  # not rebuilt
    pkg, version = guest_build._kernel_package()
    assert guest_build.input_key(pkg, version) == guest.key
    assert guest_build.input_key(pkg, version + "+changed") != guest.key
    monkeypatch.setattr(guest_build, "INIT_SCRIPT", guest_build.INIT_SCRIPT + "# changed\n")
    assert guest_build.input_key(pkg, version) != guest.key
