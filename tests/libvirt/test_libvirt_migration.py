"""Real migrations through the libvirt engine: two private libvirtd on this machine (network, mount
and UTS namespaces), QEMU 10 under TCG, a 120 MB/s tbf-shaped link, the project's test guest with a
disk on a shared image folder and a virtio NIC. The guest's page-integrity check runs after every move.

One test bed for the module; the guest moves back and forth, each test starting from where it is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from consolidator.domain.types import MigrationMethod, MigrationOutcome, PowerState

libvirt = pytest.importorskip("libvirt", reason="the libvirt-python binding is not installed (40-libvirt.sh)")

from consolidator.experiments.libvirt_testbed import MONITOR_LOG, Testbed  # noqa: E402
from consolidator.manager.client import AgentError  # noqa: E402
from consolidator.manager.leash import MigrationLeash  # noqa: E402
from consolidator.manager.libvirt.daemons import why_libvirtd_cannot_run  # noqa: E402
from consolidator.manager.libvirt.engine import LibvirtEngine  # noqa: E402
from consolidator.protocol.migration import DEFAULT_OPTIONS, MigrationOptions, OnTimeout  # noqa: E402
from consolidator.protocol.schemas import EventView, VmConfig, VmRunState  # noqa: E402

WHY = why_libvirtd_cannot_run()
pytestmark = [pytest.mark.qemu, pytest.mark.slow, pytest.mark.skipif(WHY is not None, reason=WHY or "")]
HOSTS = ("A", "B")


class Pair:
    """The two hosts' LibvirtEngines in one event loop, as the manager holds them."""

    def __init__(self, bed: Testbed) -> None:
        self.loop = asyncio.new_event_loop()
        self.engines = bed.engines()
        self.after = dict.fromkeys(self.engines, 0)
        self.run(self._skip_history())

    async def _skip_history(self) -> None:
        for host, engine in self.engines.items():
            self.after[host] = (await engine.events(0)).next_seq - 1

    def run(self, work: Any) -> Any:
        return self.loop.run_until_complete(work)

    def next(self, host: str, kind: str, timeout_s: float = 120.0) -> EventView:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            batch = self.run(self.engines[host].events(self.after[host], timeout_s=1.0))
            for event in batch.events:
                self.after[host] = event.seq
                if event.kind == kind:
                    return event
        raise AssertionError(f"no {kind} event from {host} within {timeout_s} s")

    def move(self, vm: str, src: str, dst: str, method: MigrationMethod,
             options: MigrationOptions = DEFAULT_OPTIONS) -> tuple[EventView, float | None]:
        """One move to its end: the source's migration_finished and the downtime (destination's
        resume mark - source's pause mark, as the manager's forwarder computes it)."""
        self.run(self.engines[src].migrate_to(vm, self.engines[dst], method, options))
        done = self.next(src, "migration_finished")
        marks = self.run(self.engines[dst].incoming_marks(vm))
        downtime = None if marks.resume is None or done.stop_wall_s is None else marks.resume - done.stop_wall_s
        return done, downtime

    def close(self) -> None:
        for engine in self.engines.values():
            self.run(engine.close())
        self.loop.close()


@pytest.fixture(scope="module")
def bed() -> Iterator[Testbed]:
    with Testbed(HOSTS, log_filters=MONITOR_LOG) as testbed:
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


def move_once(bed: Testbed, method: MigrationMethod, load: float, dirty_mib_s: float,
              options: MigrationOptions = DEFAULT_OPTIONS) -> tuple[str, EventView, float | None]:
    """Set the guest's load where it runs, move it to the other host: (source, finished event, downtime)."""
    src = where(bed)
    bed.set_load(src, "vm0", load, dirty_mib_s)
    pair = Pair(bed)
    try:
        done, downtime = pair.move("vm0", src, other(src), method, options)
    finally:
        pair.close()
    return src, done, downtime


def assert_moved(bed: Testbed, src: str, done: EventView) -> None:
    """The move completed, the guest runs at the other host, and its pages are intact there."""
    assert done.outcome is MigrationOutcome.COMPLETED, done.detail
    assert where(bed) == other(src)
    assert bed.check_pages(other(src), "vm0") == 0


def test_postcopy_at_80_mib_s_with_preempt(bed: Testbed) -> None:
    src, done, downtime = move_once(bed, MigrationMethod.POSTCOPY, 0.5, 80)
    assert_moved(bed, src, done)
    assert downtime is not None and 0 < downtime < 0.5
    assert 200e6 < done.bytes_sent < 400e6  # 256 MiB once, not resent
    # libvirt has no flag for it: with VIR_MIGRATE_POSTCOPY it turns QEMU's postcopy-preempt on at both
    # ends by itself when both QEMU offer it (QEMU 10 does); its monitor log shows what it asked
    for host in HOSTS:
        assert '"capability":"postcopy-preempt","state":true' in bed.daemons[host].log_text(), host


def test_precopy_that_cannot_converge_is_cancelled_at_its_timeout(bed: Testbed) -> None:
    # 200 MiB/s of writes, moved at 40 MB/s: no convergence even when a busy machine slows the guest
    src, done, _ = move_once(bed, MigrationMethod.PRECOPY, 1.0, 200,
                             MigrationOptions(timeout_s=8.0, on_timeout=OnTimeout.CANCEL,
                                              max_bandwidth_bytes_per_s=40e6))
    assert done.outcome is MigrationOutcome.CANCELLED, done.detail
    assert done.start_wall_s is not None and 8.0 <= done.t_wall_s - done.start_wall_s < 30.0
    assert where(bed) == src  # the guest keeps running at the source
    assert bed.check_pages(src, "vm0") == 0


def test_precopy_switched_to_postcopy_at_its_timeout(bed: Testbed) -> None:
    src, done, _ = move_once(bed, MigrationMethod.PRECOPY, 1.0, 200,
                             MigrationOptions(timeout_s=6.0, on_timeout=OnTimeout.POSTCOPY,
                                              max_bandwidth_bytes_per_s=60e6))
    assert_moved(bed, src, done)
    assert done.switched_to_postcopy and done.rounds >= 2


def test_hybrid_at_200_mib_s(bed: Testbed) -> None:
    src, done, downtime = move_once(bed, MigrationMethod.HYBRID, 1.0, 200)
    assert_moved(bed, src, done)
    assert done.switched_to_postcopy and done.rounds >= 2  # one full precopy pass, then postcopy
    assert downtime is not None and 0 < downtime < 0.5


def test_discovery_and_statistics(bed: Testbed) -> None:
    host = where(bed)
    bed.set_load(host, "vm0", 0.5, 40)
    pair = Pair(bed)
    try:
        (view,) = pair.run(pair.engines[host].list_vms())
        assert (view.name, view.state, view.config.mem_mib, view.config.vcpus) == ("vm0", VmRunState.RUNNING, 256, 1)
        assert pair.run(pair.engines[other(host)].list_vms()) == []
        pair.run(pair.engines[host].host_stats())  # first poll: counters and a dirty-rate measurement start
        time.sleep(2.0)
        stats = pair.run(pair.engines[host].host_stats())
    finally:
        pair.close()
    (vm,) = stats.vms
    # the 0.5 load plus emulation; less when the machine is loaded (an idle TCG guest: about 0.02)
    assert vm.name == "vm0" and 0.1 < vm.cpu_load < 1.2
    # the generator writes as its tasks are served: a starved guest (a busy machine) writes less
    assert vm.dirty_bytes_per_s is not None and 2 * 2**20 < vm.dirty_bytes_per_s < 80 * 2**20
    assert stats.power_state is PowerState.ON and stats.emulated and stats.cpu_load == vm.cpu_load


def test_refusals(bed: Testbed) -> None:
    """A move only to another libvirt host of the configuration; no suspend with domains running;
    destroy_vm never touches a running domain."""
    host = where(bed)
    pair = Pair(bed)
    try:
        src = pair.engines[host]
        with pytest.raises(AgentError, match="not run by libvirt"):
            pair.run(src.migrate_to("vm0", object(), MigrationMethod.POSTCOPY, MigrationOptions()))
        with pytest.raises(AgentError, match="domains running: vm0"):
            pair.run(src.suspend())
        with pytest.raises(AgentError, match="runs here"):
            pair.run(src.destroy_vm("vm0"))
    finally:
        pair.close()
    assert where(bed) == host
    assert bed.check_pages(host, "vm0") == 0


@pytest.mark.parametrize(("only_source", "networks", "refusal"), [
    (False, ["192.0.2.0/24"], "is outside the migration networks (192.0.2.0/24)"),
    (True, [], "is not a migration peer of"),
])
def test_leash_refuses_before_libvirt_connects(bed: Testbed, only_source: bool, networks: list[str],
                                               refusal: str) -> None:
    """cluster.toml's leash (manager.leash): a destination outside its hosts or migration networks is
    refused before libvirt is asked anything; the guest stays, intact."""
    host = where(bed)
    pair = Pair(bed)
    # the guest is wherever the earlier tests left it: name the peers from its host
    leash = MigrationLeash.of((host,) if only_source else HOSTS, networks)
    try:
        src = LibvirtEngine(host, bed.settings(host), leash)
        with pytest.raises(AgentError) as info:
            pair.run(src.migrate_to("vm0", pair.engines[other(host)], MigrationMethod.POSTCOPY, DEFAULT_OPTIONS))
        assert info.value.status == 403 and refusal in info.value.detail
        assert not src.link.is_open()  # refused before this engine connected to its libvirtd
        pair.run(src.close())
    finally:
        pair.close()
    assert where(bed) == host
    assert bed.check_pages(host, "vm0") == 0
