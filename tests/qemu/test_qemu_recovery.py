"""Postcopy recovery with real QEMU (TCG here): the migration link is cut while the guest already runs
on the destination, and the move still completes with every page intact (issue 11, item 1).

The cut is the source end of the veth going down (this kernel has no ``netem``), longer than STALL_S
(a shorter one TCP rides out by itself). TCP notices nothing for minutes, so the driver sees the hung
link (no byte sent for STALL_S) and pauses it on purpose:
QEMU's MIGRATION event ``postcopy-paused``. The destination listens again (``migrate-recover``), the
source retries ``migrate`` with ``resume`` with backoff while the link is down, and gets through once
it is back up.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from typing import Any

import pytest
from qemu_support import Pair

from consolidator.agent.hypervisor import MigrationRequest
from consolidator.agent.qemu.migration import STALL_S
from consolidator.domain.types import MigrationMethod, MigrationOutcome
from consolidator.protocol.migration import MigrationOptions
from consolidator.protocol.schemas import VmConfig, VmRunState

pytestmark = [pytest.mark.qemu, pytest.mark.slow, pytest.mark.timeout(300)]
DOWN_S = 4.0  # how long the link stays down after the destination listens again


def _link(pair: Pair, state: str) -> None:
    subprocess.run(["ip", "-n", pair.link.a.netns, "link", "set", pair.link.a.device, state], check=True)


async def _wait_state(driver: Any, vm: str, state: VmRunState, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(i.name == vm and i.state is state for i in await driver.list_vms()):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{vm} not {state.value} within {timeout_s} s: {await driver.list_vms()}")


async def _wait_seen(seen: dict[str, float], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while what not in seen:
        assert time.monotonic() < deadline, f"the observer heard no {what!r}"
        await asyncio.sleep(0.05)


def test_postcopy_survives_a_cut_link_and_completes_intact(pair: Pair) -> None:
    config = VmConfig("rc1", mem_mib=256, load=0.3, dirty_mib_s=40)
    seen: dict[str, float] = {}

    async def observe(what: str, details: dict[str, Any]) -> None:
        seen[what] = time.time()

    async def main() -> None:
        src, dst = pair.drivers()
        try:
            await src.create_vm(config)
            await asyncio.sleep(1.0)
            uri = await dst.prepare_incoming(config, pair.link.b.address)
            # 20 MB/s: the background copy of 256 MiB takes ~13 s, time enough to cut it midway
            request = MigrationRequest(vm="rc1", dst_uri=uri, method=MigrationMethod.POSTCOPY,
                                       options=MigrationOptions(max_bandwidth_bytes_per_s=20e6))
            moving = asyncio.create_task(src.migrate(request, observe))
            await _wait_state(dst, "rc1", VmRunState.POSTCOPY, 30)
            await asyncio.sleep(1.0)
            cut = time.time()
            _link(pair, "down")
            await _wait_state(src, "rc1", VmRunState.POSTCOPY_PAUSED, STALL_S + 10)
            await _wait_seen(seen, "paused", 2)
            new_uri = await dst.recover_incoming("rc1", pair.link.b.address)  # while the link is down
            assert new_uri.startswith(f"tcp:{pair.link.b.address}:") and new_uri != uri
            await _wait_state(dst, "rc1", VmRunState.POSTCOPY_PAUSED, 5)
            src.resume_migration("rc1", new_uri)
            await asyncio.sleep(DOWN_S)  # resume attempts fail meanwhile, with backoff
            assert "resumed" not in seen
            up = time.time()
            _link(pair, "up")
            report = await asyncio.wait_for(moving, 120)
            done = time.time()
            assert report.outcome is MigrationOutcome.COMPLETED, report.detail
            assert report.timeline["recoveries"] == 1
            marks = await dst.wait_incoming("rc1", 30)
            written = (await dst.guest_stats("rc1")).pages_written
            await asyncio.sleep(1.0)
            assert (await dst.guest_stats("rc1")).pages_written > written  # the guest runs on
            assert await dst.check_pages("rc1") == 0
            assert [i.state for i in await dst.list_vms()] == [VmRunState.RUNNING]
            assert await src.list_vms() == []
            pause_s, recover_s = seen["paused"] - cut, seen["resumed"] - up
            print(f"\nlink cut -> postcopy-paused {pause_s:.2f} s (stall detection {STALL_S} s); "
                  f"link up -> postcopy-active again {recover_s:.2f} s; link up -> completed {done - up:.2f} s; "
                  f"paused in all {report.timeline['paused_s']:.2f} s; completed at {marks['completed']:.2f}")
            assert pause_s < STALL_S + 3
            assert recover_s < 10  # backoff tops out at 4 s between attempts
        finally:
            _link(pair, "up")
            for driver in (src, dst):
                for info in await driver.list_vms():
                    await driver.destroy_vm(info.name)
                await driver.close()

    asyncio.run(main())
