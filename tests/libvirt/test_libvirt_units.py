"""Pure parts of the libvirt engine: migration flags and parameters, event classification, domain
XML and statistics parsing (table-driven; no daemon needed, only the libvirt binding's constants)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

libvirt = pytest.importorskip("libvirt", reason="the libvirt-python binding is not installed (40-libvirt.sh)")

from consolidator.domain.types import MigrationMethod  # noqa: E402
from consolidator.manager.libvirt import migration as mig  # noqa: E402
from consolidator.manager.libvirt.conn import MarkKind, classify  # noqa: E402
from consolidator.manager.libvirt.guestxml import GuestDomain, domain_xml, mac_of  # noqa: E402
from consolidator.manager.libvirt.stats import parse_domain  # noqa: E402
from consolidator.protocol.migration import MigrationOptions, OnTimeout  # noqa: E402

BASE = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
POST = libvirt.VIR_MIGRATE_POSTCOPY
PERSIST = libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE


@pytest.mark.parametrize(("method", "on_timeout", "persistent", "tls", "expected"), [
    (MigrationMethod.PRECOPY, OnTimeout.CANCEL, False, False, BASE),
    (MigrationMethod.PRECOPY, OnTimeout.POSTCOPY, False, False, BASE | POST),  # may switch at the timeout
    (MigrationMethod.POSTCOPY, OnTimeout.CANCEL, False, False, BASE | POST),
    (MigrationMethod.HYBRID, OnTimeout.CANCEL, True, False, BASE | POST | PERSIST),
    (MigrationMethod.PRECOPY, OnTimeout.CANCEL, True, True, BASE | PERSIST | libvirt.VIR_MIGRATE_TLS),
])
def test_flags(method: MigrationMethod, on_timeout: OnTimeout, persistent: bool, tls: bool, expected: int) -> None:
    options = MigrationOptions(on_timeout=on_timeout)
    assert mig.migration_flags(method, options, mig.LibvirtSettings(tls=tls), persistent) == expected


def test_postcopy_recovery_is_not_asked_of_a_libvirt_that_crashes_on_it() -> None:
    assert not mig.resume_is_safe(11_003_000)  # Debian's 11.3.0: the destination libvirtd segfaults
    assert mig.resume_is_safe(11_004_000) and mig.resume_is_safe(10_010_000)
    assert mig.resume_is_safe(0)  # unknown: tried


def test_params_in_mib_per_s_and_postcopy_cap_only_with_postcopy() -> None:
    options = MigrationOptions(max_bandwidth_bytes_per_s=120e6)
    pre = mig.migration_params(options, MigrationMethod.PRECOPY, "tcp://10.0.0.2")
    assert pre == {libvirt.VIR_MIGRATE_PARAM_URI: "tcp://10.0.0.2", libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: 114}
    post = mig.migration_params(options, MigrationMethod.POSTCOPY, None)
    assert post == {libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: 114, libvirt.VIR_MIGRATE_PARAM_BANDWIDTH_POSTCOPY: 114}
    assert mig.migration_params(MigrationOptions(max_bandwidth_bytes_per_s=None), MigrationMethod.PRECOPY,
                                None) == {}


@pytest.mark.parametrize(("event", "detail", "kind"), [
    (libvirt.VIR_DOMAIN_EVENT_SUSPENDED, libvirt.VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED, MarkKind.STOPPED_FOR_MOVE),
    (libvirt.VIR_DOMAIN_EVENT_SUSPENDED, libvirt.VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY, MarkKind.STOPPED_FOR_MOVE),
    (libvirt.VIR_DOMAIN_EVENT_SUSPENDED, libvirt.VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY_FAILED, MarkKind.POSTCOPY_FAILED),
    (libvirt.VIR_DOMAIN_EVENT_RESUMED, libvirt.VIR_DOMAIN_EVENT_RESUMED_POSTCOPY, MarkKind.RUNNING_AT_DST),
    (libvirt.VIR_DOMAIN_EVENT_RESUMED, libvirt.VIR_DOMAIN_EVENT_RESUMED_MIGRATED, MarkKind.RUNNING_AT_DST),
    (libvirt.VIR_DOMAIN_EVENT_STOPPED, libvirt.VIR_DOMAIN_EVENT_STOPPED_MIGRATED, MarkKind.LEFT_SOURCE),
    (libvirt.VIR_DOMAIN_EVENT_STOPPED, libvirt.VIR_DOMAIN_EVENT_STOPPED_DESTROYED, MarkKind.OTHER),
    (libvirt.VIR_DOMAIN_EVENT_SUSPENDED, libvirt.VIR_DOMAIN_EVENT_SUSPENDED_PAUSED, MarkKind.OTHER),
])
def test_lifecycle_classification(event: int, detail: int, kind: MarkKind) -> None:
    assert classify(event, detail) is kind


def test_domain_xml_has_shared_disk_virtio_nic_and_control_socket() -> None:
    g = GuestDomain("vm0", Path("/k/vmlinuz"), Path("/k/initrd"), "console=ttyS0 wl.load=0.5",
                    mem_mib=256, disk=Path("/shared/vm0.img"), cpu_quota=0.5)
    root = ET.fromstring(domain_xml(g))
    assert root.findtext("name") == "vm0" and root.findtext("memory") == "256"
    disk = root.find("devices/disk")
    assert disk is not None and disk.find("source").get("file") == "/shared/vm0.img"  # type: ignore[union-attr]
    assert disk.find("driver").get("cache") == "none"  # type: ignore[union-attr]
    nic = root.find("devices/interface")
    assert nic is not None and nic.find("model").get("type") == "virtio"  # type: ignore[union-attr]
    assert nic.find("mac").get("address") == mac_of("vm0")  # type: ignore[union-attr]
    serials = root.findall("devices/serial")
    assert serials[1].find("source").get("path") == "/var/lib/libvirt/guest/vm0.ctl"  # type: ignore[union-attr]
    assert root.findtext("cputune/quota") == "50000"
    assert root.findtext("os/cmdline") == "console=ttyS0 wl.load=0.5"


def test_domain_xml_escapes_names() -> None:
    g = GuestDomain("a<b", Path("/k"), Path("/i"), "x & y")
    root = ET.fromstring(domain_xml(g))
    assert root.findtext("name") == "a<b" and root.findtext("os/cmdline") == "x & y"


def test_parse_domain_stats() -> None:
    d = parse_domain("vm0", {"state.state": libvirt.VIR_DOMAIN_RUNNING, "cpu.time": 2_000_000_000,
                             "balloon.current": 262144, "dirtyrate.calc_status": 2,
                             "dirtyrate.megabytes_per_second": 68})
    assert (d.cpu_ns, d.mem_mib, d.running, d.dirty_bytes_per_s) == (2_000_000_000, 256.0, True, 68 * 2**20)
    measuring = parse_domain("vm0", {"dirtyrate.calc_status": 1, "dirtyrate.megabytes_per_second": 0})
    assert measuring.dirty_bytes_per_s is None and not measuring.running


@pytest.mark.parametrize(("state", "reason", "incoming", "run"), [
    (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_BOOTED, False, "running"),
    (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_POSTCOPY, False, "postcopy"),  # destination
    (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_MIGRATION, True, "incoming"),  # destination, precopy
    (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_MIGRATION, False, "migrating"),  # source switch-over
    (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_POSTCOPY, False, "migrating"),  # source serving pages
    (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_USER, False, "paused"),
    (libvirt.VIR_DOMAIN_SHUTOFF, 0, False, "stopped"),
])
def test_run_states_for_discovery(state: int, reason: int, incoming: bool, run: str) -> None:
    from consolidator.manager.libvirt.engine import _run_state

    assert _run_state(state, reason, incoming).value == run
