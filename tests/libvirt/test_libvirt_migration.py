"""Real migrations through the libvirt engine: two private libvirtd on this machine (network, mount
and UTS namespaces), QEMU 10 under TCG, a 120 MB/s tbf-shaped link, the project's test guest with a
disk on a shared image folder and a virtio NIC. The guest's page-integrity check runs after every move.

One test bed for the module; the guest moves back and forth, each test starting from where it is.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator

import pytest

from consolidator.domain.events import Event, HostPowerChanged, MigrationFinished
from consolidator.domain.types import MigrationMethod, MigrationOutcome, PowerState

libvirt = pytest.importorskip("libvirt", reason="the libvirt-python binding is not installed (40-libvirt.sh)")

from consolidator.agent.hypervisor import OnTimeout, VmConfig  # noqa: E402
from consolidator.manager.cluster import MigrationOptions  # noqa: E402
from consolidator.manager.libvirt.cluster import LibvirtCluster  # noqa: E402
from consolidator.manager.libvirt.daemons import why_libvirtd_cannot_run  # noqa: E402
from consolidator.manager.libvirt.testbed import Testbed  # noqa: E402

WHY = why_libvirtd_cannot_run()
pytestmark = [pytest.mark.qemu, pytest.mark.slow, pytest.mark.skipif(WHY is not None, reason=WHY or "")]
HOSTS = ("A", "B")


class Engine:
    """A LibvirtCluster whose events land in a queue; ``move`` runs one migration to its end."""

    def __init__(self, bed: Testbed, options: MigrationOptions = MigrationOptions()) -> None:
        self.bed = bed
        self.events: queue.Queue[Event] = queue.Queue()
        t0 = time.monotonic()
        self.cluster = LibvirtCluster(bed.hosts(), self.events.put, lambda: time.monotonic() - t0,
                                      waker=bed.wake, options=options).open()

    def next(self, kind: type, timeout_s: float = 120.0) -> Event:
        end = time.monotonic() + timeout_s
        while True:
            event = self.events.get(timeout=max(0.01, end - time.monotonic()))
            if isinstance(event, kind):
                return event

    def move(self, vm: str, src: str, dst: str, method: MigrationMethod) -> MigrationFinished:
        self.cluster.start_migration(vm, src, dst, method)
        done = self.next(MigrationFinished)
        assert isinstance(done, MigrationFinished)
        return done

    def close(self) -> None:
        self.cluster.close()


@pytest.fixture(scope="module")
def bed() -> Iterator[Testbed]:
    with Testbed(HOSTS) as testbed:
        testbed.create_guest("A", VmConfig("vm0", 256, load=0.5, dirty_mib_s=80))
        yield testbed


def where(bed: Testbed, vm: str = "vm0") -> str:
    """The host whose libvirtd runs the VM (and the other one)."""
    found = []
    for host, d in bed.daemons.items():
        conn = libvirt.open(d.uri)
        try:
            if any(dom.name() == vm and dom.isActive() for dom in conn.listAllDomains()):
                found.append(host)
        finally:
            conn.close()
    assert len(found) == 1, f"{vm} runs on {found}"
    return found[0]


def other(host: str) -> str:
    return HOSTS[1] if host == HOSTS[0] else HOSTS[0]


def test_postcopy_at_80_mib_s(bed: Testbed) -> None:
    src = where(bed)
    bed.set_load(src, "vm0", 0.5, 80)
    engine = Engine(bed)
    try:
        done = engine.move("vm0", src, other(src), MigrationMethod.POSTCOPY)
        result = engine.cluster.results["vm0"]
    finally:
        engine.close()
    assert done.outcome is MigrationOutcome.COMPLETED, done.detail
    assert where(bed) == other(src)
    assert result.switched_to_postcopy and 0 < done.downtime_s < 0.5
    assert 200e6 < done.bytes_sent < 400e6  # 256 MiB once, not resent
    assert bed.check_pages(other(src), "vm0") == 0


def test_precopy_that_cannot_converge_is_cancelled_at_its_timeout(bed: Testbed) -> None:
    src = where(bed)
    bed.set_load(src, "vm0", 1.0, 200)  # 200 MiB/s of writes over a 120 MB/s link
    engine = Engine(bed, MigrationOptions(timeout_s=8.0, on_timeout=OnTimeout.CANCEL))
    try:
        done = engine.move("vm0", src, other(src), MigrationMethod.PRECOPY)
    finally:
        engine.close()
    assert done.outcome is MigrationOutcome.CANCELLED, done.detail
    assert 8.0 <= done.t_s - done.start_s < 30.0
    assert where(bed) == src  # the guest keeps running at the source
    assert bed.check_pages(src, "vm0") == 0


def test_precopy_switched_to_postcopy_at_its_timeout(bed: Testbed) -> None:
    src = where(bed)
    bed.set_load(src, "vm0", 1.0, 200)
    engine = Engine(bed, MigrationOptions(timeout_s=6.0, on_timeout=OnTimeout.POSTCOPY))
    try:
        done = engine.move("vm0", src, other(src), MigrationMethod.PRECOPY)
        result = engine.cluster.results["vm0"]
    finally:
        engine.close()
    assert done.outcome is MigrationOutcome.COMPLETED, done.detail
    assert result.switched_to_postcopy and result.rounds >= 2
    assert bed.check_pages(other(src), "vm0") == 0


def test_hybrid_at_200_mib_s(bed: Testbed) -> None:
    src = where(bed)
    bed.set_load(src, "vm0", 1.0, 200)
    engine = Engine(bed)
    try:
        done = engine.move("vm0", src, other(src), MigrationMethod.HYBRID)
        result = engine.cluster.results["vm0"]
    finally:
        engine.close()
    assert done.outcome is MigrationOutcome.COMPLETED, done.detail
    assert result.switched_to_postcopy and result.rounds >= 2  # one full precopy pass, then postcopy
    assert bed.check_pages(other(src), "vm0") == 0


def test_discovery_and_statistics(bed: Testbed) -> None:
    host = where(bed)
    bed.set_load(host, "vm0", 0.5, 40)
    engine = Engine(bed)
    try:
        found = engine.cluster.discover()
        assert found.placement == {"vm0": host}
        assert [(v.name, v.mem_mib, v.vcpus) for v in found.vms] == [("vm0", 256, 1)]
        engine.cluster.poll(0.0)  # first poll: counters and a dirty-rate measurement start
        time.sleep(2.0)
        stats = engine.cluster.poll(2.0)
    finally:
        engine.close()
    assert set(stats) == set(HOSTS)
    (vm,) = stats[host].vms
    assert vm.vm == "vm0" and 0.3 < vm.cpu_load < 1.2  # TCG runs the 0.5 load plus emulation
    assert vm.dirty_bytes_per_s is not None and 10 * 2**20 < vm.dirty_bytes_per_s < 80 * 2**20
    assert stats[other(host)].vms == ()


def test_refusals_unconfigured_peer_and_suspend_with_domains(bed: Testbed) -> None:
    host = where(bed)
    engine = Engine(bed)
    try:
        done = engine.move("vm0", host, "elsewhere", MigrationMethod.POSTCOPY)
        assert done.outcome is MigrationOutcome.FAILED and "not a host of the configuration" in done.detail
        engine.cluster.suspend_host(host)
        refused = engine.next(HostPowerChanged)
        assert isinstance(refused, HostPowerChanged)
        assert refused.state is PowerState.ON and "domains running: vm0" in refused.detail
    finally:
        engine.close()
    assert where(bed) == host
