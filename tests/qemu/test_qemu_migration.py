"""Real live migrations between two QEMU processes over a 120 MB/s shaped link (TCG here).

Each test checks the guest's memory afterwards: every page of its working set must hold its last
write (the workload generator's ``check``), because a migration that loses a page is worse than none.
"""

from __future__ import annotations

import asyncio

import pytest
from qemu_support import LINK_BYTES_PER_S, Pair

from consolidator.agent.hypervisor import MigrationReport, MigrationRequest
from consolidator.domain.types import MigrationMethod, MigrationOutcome
from consolidator.protocol.migration import MigrationOptions, OnTimeout
from consolidator.protocol.schemas import VmConfig, VmRunState

pytestmark = [pytest.mark.qemu, pytest.mark.slow, pytest.mark.timeout(300)]


async def _migrate(pair: Pair, config: VmConfig, request_args: dict[str, object],
                   ) -> tuple[MigrationReport, dict[str, float] | None, int, int]:
    """Boot at A, migrate to B; return the report, B's marks, bad pages where the VM ended, and its
    count of page writes a second after the migration minus just after (the guest keeps running)."""
    src, dst = pair.drivers()
    try:
        await src.create_vm(config)
        await asyncio.sleep(1.0)  # let the workload dirty memory at its rate
        uri = await dst.prepare_incoming(config, pair.link.b.address)
        method = request_args.pop("method")
        options = MigrationOptions(max_bandwidth_bytes_per_s=LINK_BYTES_PER_S, **request_args)  # type: ignore[arg-type]
        request = MigrationRequest(vm=config.name, dst_uri=uri, method=method, options=options)  # type: ignore[arg-type]
        report = await src.migrate(request)
        marks = None
        if report.outcome is MigrationOutcome.COMPLETED:
            marks = await dst.wait_incoming(config.name)
            seen = dst.incoming_marks(config.name)
            assert seen["resume"] == marks["resume"] and seen["completed"] == marks["completed"]
            home = dst
        else:
            home = src
        written = (await home.guest_stats(config.name)).pages_written
        await asyncio.sleep(1.0)
        progress = (await home.guest_stats(config.name)).pages_written - written
        bad = await home.check_pages(config.name)
        states = {info.name: info.state for info in await home.list_vms()}
        assert states[config.name] is VmRunState.RUNNING
        return report, marks, bad, progress
    finally:
        for driver in (src, dst):
            for info in await driver.list_vms():
                await driver.destroy_vm(info.name)
            await driver.close()


def test_postcopy_moves_a_busy_guest_intact_in_touched_ram_over_bandwidth(pair: Pair) -> None:
    config = VmConfig("pc1", mem_mib=256, load=0.3, dirty_mib_s=80)
    report, marks, bad, progress = asyncio.run(
        _migrate(pair, config, {"method": MigrationMethod.POSTCOPY}))
    assert report.outcome is MigrationOutcome.COMPLETED, report.detail
    assert bad == 0
    assert progress > 0  # the guest runs at the destination
    assert marks is not None and "resume" in marks and "stop" in report.timeline
    downtime = marks["resume"] - report.timeline["stop"]
    assert 0 <= downtime < 0.5
    touched_s = report.normal_bytes / LINK_BYTES_PER_S
    assert report.total_s <= 1.2 * touched_s, (report.total_s, touched_s)
    assert report.postcopy_requests > 0  # the guest faulted pages in across the link
    assert report.postcopy_preempt  # QEMU 10 offers postcopy-preempt and the driver enables it
    assert marks["postcopy_blocktime_s"] > 0  # the destination's QEMU counted its vCPU's fault waits


def test_precopy_that_cannot_converge_is_cancelled_and_the_guest_keeps_running(pair: Pair) -> None:
    config = VmConfig("pre1", mem_mib=256, load=0.2, dirty_mib_s=200)  # 210 MB/s > 120 MB/s link
    report, marks, bad, progress = asyncio.run(_migrate(pair, config, {
        "method": MigrationMethod.PRECOPY, "timeout_s": 8.0, "on_timeout": OnTimeout.CANCEL}))
    assert report.outcome is MigrationOutcome.CANCELLED
    assert not report.converged and marks is None
    assert 7.5 <= report.total_s <= 15
    assert report.bytes_sent > 256 * 2**20  # it kept resending dirty pages
    assert bad == 0 and progress > 0  # intact and still running at the source


def test_precopy_timeout_can_switch_to_postcopy_instead(pair: Pair) -> None:
    config = VmConfig("pre2", mem_mib=256, load=0.2, dirty_mib_s=200)
    report, _, bad, progress = asyncio.run(_migrate(pair, config, {
        "method": MigrationMethod.PRECOPY, "timeout_s": 5.0, "on_timeout": OnTimeout.POSTCOPY}))
    assert report.outcome is MigrationOutcome.COMPLETED, report.detail
    assert report.switched_to_postcopy
    assert bad == 0 and progress > 0


def test_hybrid_completes_where_precopy_cannot(pair: Pair) -> None:
    config = VmConfig("hy1", mem_mib=256, load=0.2, dirty_mib_s=200)
    report, marks, bad, progress = asyncio.run(_migrate(pair, config, {
        "method": MigrationMethod.HYBRID, "hybrid_precopy_rounds": 1}))
    assert report.outcome is MigrationOutcome.COMPLETED, report.detail
    assert report.switched_to_postcopy
    assert report.rounds >= 2  # at least one full precopy pass before the switch
    assert bad == 0 and progress > 0 and marks is not None


def test_precopy_of_an_idle_guest_converges(pair: Pair) -> None:
    config = VmConfig("pre0", mem_mib=256)
    report, marks, bad, _ = asyncio.run(_migrate(pair, config, {"method": MigrationMethod.PRECOPY}))
    assert report.outcome is MigrationOutcome.COMPLETED and report.converged
    assert not report.switched_to_postcopy
    assert bad == 0 and marks is not None
