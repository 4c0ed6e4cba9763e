"""Faults in the middle of a live migration between two real agents (real QEMU, TCG, issue 11): an
agent killed with SIGKILL (after a restart the migration's outcome is read from QEMU, its event
follows in the same numbering, the time-out is still enforced, no guest lost or left behind twice),
and a migration link cut during postcopy, recovered by the manager's event forwarder."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
from live_lab import VM, Lab, finished_event, start_move

from consolidator.agent.qemu.migration import STALL_S
from consolidator.manager.client import AgentClient, AgentError
from consolidator.protocol.schemas import MigrateBody

pytestmark = [pytest.mark.qemu, pytest.mark.slow, pytest.mark.timeout(600)]


def _sigkill(lab: Lab, host: str) -> None:
    pid = lab.pids.pop(host)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


async def _wait_state(client: AgentClient, vm: str, state: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(v.name == vm and v.state.value == state for v in await client.list_vms()):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{vm} not {state} on {client.host}: {await client.list_vms()}")


@pytest.mark.parametrize("killed", ["pm0", "pm1"])
def test_postcopy_completes_when_an_agent_is_killed_midway(lab: Lab, killed: str) -> None:
    async def main() -> None:
        move = await start_move(lab, method="postcopy", max_bandwidth_bytes_per_s=20e6)  # ~13 s of background copy
        src, dst, before = move.src, move.dst, move.before
        await _wait_state(dst, "vm0", "postcopy")
        _sigkill(lab, killed)
        await asyncio.sleep(1.0)
        await lab.start(killed)
        src, dst = lab.client("pm0"), lab.client("pm1")
        done = await finished_event(src, before)
        assert done["outcome"] == "completed", done
        seqs = [e.seq for e in (await src.events(before)).events]
        assert seqs == list(range(before + 1, before + 1 + len(seqs)))  # no number reused or skipped
        assert [e.kind for e in (await src.events(before)).events][:1] == ["migration_started"]
        assert await src.list_vms() == []  # the source QEMU is gone, not left stopped
        await _wait_state(dst, "vm0", "running")
        assert await dst.check_pages("vm0") == 0
        await dst.destroy_vm("vm0")
        await src.close()
        await dst.close()

    asyncio.run(main())


def test_a_precopy_timeout_is_enforced_across_a_source_agent_kill(lab: Lab) -> None:
    body = VM.model_copy(update={"dirty_mib_s": 200.0, "load": 0.3})  # cannot converge at 20 MB/s

    async def main() -> None:
        move = await start_move(lab, body, method="precopy", max_bandwidth_bytes_per_s=20e6, timeout_s=8.0)
        src, dst, before, started = move.src, move.dst, move.before, move.started_wall_s
        await asyncio.sleep(2.0)
        _sigkill(lab, "pm0")
        await asyncio.sleep(1.0)
        await lab.start("pm0")
        src = lab.client("pm0")
        done = await finished_event(src, before)
        took = time.time() - started
        assert done["outcome"] == "cancelled", done
        assert 8.0 <= took < 30, took  # the time-out counted from the original start, not the restart
        await _wait_state(src, "vm0", "running")  # the guest stays, running, at the source
        assert await src.check_pages("vm0") == 0
        await src.destroy_vm("vm0")
        if any(v.name == "vm0" for v in await dst.list_vms()):  # the abandoned incoming QEMU
            await dst.destroy_vm("vm0")
        await src.close()
        await dst.close()

    asyncio.run(main())


def test_the_manager_recovers_a_postcopy_whose_link_was_cut(lab: Lab) -> None:
    """Through the agents' API with the manager's event forwarder: pm0's link goes down mid-postcopy,
    the source agent pauses it and says so, the forwarder asks pm1 to listen again and pm0 to resume
    there; the move completes once the link is back, every page intact."""
    import subprocess

    from consolidator.domain.events import MigrationFinished
    from consolidator.domain.types import MigrationOutcome
    from consolidator.manager.events import EventForwarder

    netns = lab.net.netns_of("pm0")
    seen: list[object] = []

    async def main() -> None:
        await lab.start("pm0")
        await lab.start("pm1")
        src, dst = lab.client("pm0"), lab.client("pm1")
        forwarder = EventForwarder({"pm0": src, "pm1": dst}, time.time(), seen.append)
        await forwarder.start()
        try:
            await src.create_vm(VM)
            uri = await dst.prepare_incoming(VM)
            await src.migrate("vm0", MigrateBody(dst_uri=uri, dst_host="pm1", method="postcopy",
                                                 max_bandwidth_bytes_per_s=20e6))
            await _wait_state(dst, "vm0", "postcopy")
            subprocess.run(["ip", "-n", netns, "link", "set", "eth0", "down"], check=True)
            try:
                await _wait_state(src, "vm0", "postcopy-paused", STALL_S + 15)
                for refused in (src.cancel_migration("vm0"), dst.destroy_vm("vm0"), src.suspend()):
                    with pytest.raises(AgentError) as caught:
                        await refused
                    assert caught.value.status == 409
                await asyncio.sleep(4.0)
            finally:
                subprocess.run(["ip", "-n", netns, "link", "set", "eth0", "up"], check=True)
            deadline = time.monotonic() + 120
            while not any(isinstance(e, MigrationFinished) for e in seen):
                assert time.monotonic() < deadline, "no migration_finished"
                await asyncio.sleep(0.2)
            finished = next(e for e in seen if isinstance(e, MigrationFinished))
            assert finished.outcome is MigrationOutcome.COMPLETED, finished
            stats = forwarder.recovery.stats
            assert stats.paused == 1 and stats.resumed == 1, stats
            print(f"\nmanager-driven recovery: paused {stats.paused_s[0]:.2f} s, {stats.attempts} recover call(s)")
            await _wait_state(dst, "vm0", "running")
            assert await dst.check_pages("vm0") == 0
            assert await src.list_vms() == []
            await dst.destroy_vm("vm0")
        finally:
            await forwarder.stop()
            await src.close()
            await dst.close()

    asyncio.run(main())
