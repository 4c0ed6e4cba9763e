"""The libvirt engine passes the ClusterPort contract (tests/contract/cluster_contract.py) against two
real libvirtd daemons on this machine (private namespaces, QEMU under TCG, a 120 MB/s shaped link),
migrating the project's test guest; the guest's page-integrity check runs after the move."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator

import pytest
from cluster_contract import check_wake_then_migrate_then_suspend

from consolidator.domain.events import Event
from consolidator.domain.types import MigrationMethod, PowerState

try:
    from consolidator.agent.hypervisor import VmConfig
    from consolidator.manager.libvirt.daemons import why_libvirtd_cannot_run
except ImportError as exc:  # the binding is missing: the module's skip says so
    pytest.skip(f"libvirt engine cannot be imported: {exc}", allow_module_level=True)

WHY = why_libvirtd_cannot_run()
pytestmark = [pytest.mark.qemu, pytest.mark.slow, pytest.mark.skipif(WHY is not None, reason=WHY or "")]


class LibvirtHarness:
    def __init__(self, bed: object) -> None:
        from consolidator.manager.libvirt.cluster import LibvirtCluster

        self.bed = bed
        self.events: queue.Queue[Event] = queue.Queue()
        self.seen: list[Event] = []
        t0 = time.monotonic()
        self.cluster = LibvirtCluster(bed.hosts(), self.events.put, lambda: time.monotonic() - t0,  # type: ignore[attr-defined]
                                      waker=bed.wake, power_states={"S1": PowerState.SUSPENDED})  # type: ignore[attr-defined]
        self.cluster.open()

    def wait_for(self, match: Callable[[Event], bool], timeout_s: float) -> Event | None:
        end = time.monotonic() + timeout_s
        while True:
            for i, event in enumerate(self.seen):
                if match(event):
                    return self.seen.pop(i)
            left = end - time.monotonic()
            if left <= 0:
                return None
            try:
                self.seen.append(self.events.get(timeout=left))
            except queue.Empty:
                return None


@pytest.fixture(scope="module")
def bed() -> Iterator[object]:
    from consolidator.manager.libvirt.testbed import Testbed

    with Testbed(("W", "S1")) as testbed:
        yield testbed


@pytest.mark.parametrize("method", [MigrationMethod.POSTCOPY, MigrationMethod.PRECOPY, MigrationMethod.HYBRID])
def test_libvirt_contract(bed: object, method: MigrationMethod) -> None:
    bed.reset()  # type: ignore[attr-defined]
    bed.create_guest("W", VmConfig("vm0", 256, load=0.3, dirty_mib_s=20))  # type: ignore[attr-defined]
    bed.freeze("S1")  # type: ignore[attr-defined]  # S1 starts suspended
    h = LibvirtHarness(bed)
    try:
        check_wake_then_migrate_then_suspend(h, method, timeout_s=120)
        assert h.cluster.errors == []
        bed.wake("W")  # type: ignore[attr-defined]
        assert bed.check_pages("S1", "vm0") == 0  # type: ignore[attr-defined]
    finally:
        bed.wake("W")  # type: ignore[attr-defined]
        h.cluster.close()
