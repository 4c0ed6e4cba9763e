"""The libvirt engine passes the ClusterPort contract (tests/contract/cluster_contract.py) the way the
manager runs it: RemoteCluster and the event forwarder over one LibvirtEngine per host, against two
real libvirtd daemons on this machine (private namespaces, QEMU 10 under TCG, a 120 MB/s shaped
link), moving the project's test guest; the guest's page-integrity check runs after the move."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cluster_contract import check_wake_then_migrate_then_suspend

from consolidator.domain.events import Event
from consolidator.domain.types import MigrationMethod

libvirt = pytest.importorskip("libvirt", reason="the libvirt-python binding is not installed (40-libvirt.sh)")

from consolidator.experiments.libvirt_testbed import Testbed  # noqa: E402
from consolidator.manager.cluster import RemoteCluster  # noqa: E402
from consolidator.manager.events import EventForwarder  # noqa: E402
from consolidator.manager.libvirt.daemons import why_libvirtd_cannot_run  # noqa: E402
from consolidator.protocol.schemas import VmConfig  # noqa: E402

WHY = why_libvirtd_cannot_run()
pytestmark = [pytest.mark.qemu, pytest.mark.slow, pytest.mark.skipif(WHY is not None, reason=WHY or "")]


class _InLoop:
    """The port's calls, queued into the harness's event loop (RemoteCluster spawns asyncio tasks)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, cluster: RemoteCluster) -> None:
        self._loop, self._cluster = loop, cluster

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._cluster, name)
        return lambda *args: self._loop.call_soon(method, *args)


class ManagerHarness:
    def __init__(self, bed: Testbed) -> None:
        self.loop = asyncio.new_event_loop()
        self.engines = bed.engines()
        self.engines["S1"].mark_suspended()
        self.seen: list[Event] = []
        t0 = time.time()
        self.remote = RemoteCluster(dict(self.engines), self._deliver, t0)  # type: ignore[arg-type]
        self.forwarder = EventForwarder(dict(self.engines), t0, self._deliver)  # type: ignore[arg-type]
        self.loop.run_until_complete(self.forwarder.start())
        self.cluster = _InLoop(self.loop, self.remote)

    def _deliver(self, event: Event) -> None:
        self.remote.on_event(event)
        self.seen.append(event)

    def wait_for(self, match: Callable[[Event], bool], timeout_s: float) -> Event | None:
        async def wait() -> Event | None:
            end = time.monotonic() + timeout_s
            while time.monotonic() < end:
                for i, event in enumerate(self.seen):
                    if match(event):
                        return self.seen.pop(i)
                await asyncio.sleep(0.05)
            return None

        return self.loop.run_until_complete(wait())

    def close(self) -> None:
        async def stop() -> None:
            await self.forwarder.stop()
            await self.remote.drain()
            for engine in self.engines.values():
                await engine.close()

        self.loop.run_until_complete(stop())
        self.loop.close()


@pytest.fixture(scope="module")
def bed() -> Iterator[Testbed]:
    with Testbed(("W", "S1")) as testbed:
        yield testbed


@pytest.mark.parametrize("method", [MigrationMethod.POSTCOPY, MigrationMethod.PRECOPY, MigrationMethod.HYBRID])
def test_libvirt_contract(bed: Testbed, method: MigrationMethod) -> None:
    bed.reset()
    bed.create_guest("W", VmConfig("vm0", 256, load=0.3, dirty_mib_s=20))
    bed.freeze("S1")  # S1 starts suspended: its libvirtd does not answer
    h = ManagerHarness(bed)
    try:
        check_wake_then_migrate_then_suspend(h, method, timeout_s=120)
        assert h.remote.errors == []
        bed.wake("W")
        assert bed.check_pages("S1", "vm0") == 0
    finally:
        bed.wake("W")
        h.close()
