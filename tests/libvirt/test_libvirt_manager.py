"""The manager service (``consolidator manager``) over libvirt hosts: cluster.toml with
``driver = "libvirt"`` for two real libvirtd on this machine, auto mode, the paper's policy. A lightly
loaded VM on the Server node is moved back to the Warehouse by postcopy and the emptied Server is
suspended (its daemon frozen by the configured argv); the guest's pages are intact."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consolidator.domain.events import Event, HostPowerChanged, MigrationFinished
from consolidator.domain.types import MigrationOutcome, PowerState

libvirt = pytest.importorskip("libvirt", reason="the libvirt-python binding is not installed (40-libvirt.sh)")

from consolidator.experiments.libvirt_testbed import Testbed  # noqa: E402
from consolidator.manager.config import parse_cluster_config  # noqa: E402
from consolidator.manager.libvirt.daemons import why_libvirtd_cannot_run  # noqa: E402
from consolidator.manager.libvirt.engine import LibvirtEngine  # noqa: E402
from consolidator.manager.service import ManagerService  # noqa: E402
from consolidator.protocol.schemas import VmConfig  # noqa: E402

WHY = why_libvirtd_cannot_run()
pytestmark = [pytest.mark.qemu, pytest.mark.slow, pytest.mark.skipif(WHY is not None, reason=WHY or "")]


@pytest.fixture(scope="module")
def bed() -> Iterator[Testbed]:
    with Testbed(("pm0", "pm1")) as testbed:
        yield testbed


def cluster_toml(bed: Testbed, folder: Path) -> dict[str, Any]:
    """What an operator would write for these two hosts (as a parsed TOML table)."""
    (folder / "tok").write_text("manager-test-token-0123456789")
    hosts = {}
    for name, role in zip(bed.names, ("warehouse", "server"), strict=True):
        s = bed.settings(name)
        hosts[name] = {"driver": "libvirt", "role": role, "cores": 1.0, "mem_mib": 4096, "uri": s.uri,
                       "migrate_uri": s.migrate_uri, "suspend_command": list(s.suspend_command),
                       "wake_command": list(s.wake_command), "emulated": True}
    return {"mode": "auto", "period_s": 1.0, "window_periods": 3, "run_store": str(folder / "run.sqlite"),
            "api_token_file": str(folder / "tok"), "policy": {"name": "paper", "args": {"hold_s": 1}},
            "limits": {"min_hold_s": 0, "reserve_hosts": 0}, "migration": {"method": "postcopy"},
            "hosts": hosts}


def test_manager_consolidates_libvirt_hosts(bed: Testbed, tmp_path: Path) -> None:
    bed.reset()
    bed.create_guest("pm1", VmConfig("vm0", 256, load=0.05, dirty_mib_s=5))
    cfg = parse_cluster_config(cluster_toml(bed, tmp_path), "cluster.toml")
    seen: list[Event] = []

    async def main() -> None:
        service = ManagerService(cfg)  # engines from cluster.toml: make_engine -> LibvirtEngine
        assert all(isinstance(e, LibvirtEngine) for e in service.engines.values())
        service.observers.append(seen.append)
        await service.start()
        stop = asyncio.Event()

        async def watch() -> None:
            end = time.monotonic() + 120
            while time.monotonic() < end and not any(
                    isinstance(e, HostPowerChanged) and e.host == "pm1" and e.state is PowerState.SUSPENDED
                    for e in seen):
                await asyncio.sleep(0.5)
            stop.set()

        watcher = asyncio.create_task(watch())
        try:
            await service.run(stop)
        finally:
            await watcher
            await service.shutdown()

    asyncio.run(main())
    moves = [e for e in seen if isinstance(e, MigrationFinished)]
    assert [(m.vm, m.src, m.dst, m.outcome) for m in moves] == [("vm0", "pm1", "pm0", MigrationOutcome.COMPLETED)]
    assert 0 < moves[0].downtime_s < 0.5  # measured by the forwarder from the two hosts' events
    assert any(isinstance(e, HostPowerChanged) and e.host == "pm1" and e.state is PowerState.SUSPENDED for e in seen)
    bed.wake("pm1")
    assert bed.check_pages("pm0", "vm0") == 0
