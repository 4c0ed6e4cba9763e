"""A literature policy (Beloglazov & Buyya) run by the manager service, over in-process agents (driver
double; the real-QEMU run is tests/agent/test_lab_literature.py): the service plans on the policy's
interval grid, fills the load history at that interval, and gives the planner the interval's mean loads
and the hosts' capacity and core speed from cluster.toml."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from service_doubles import Cluster
from test_manager_service import boot, run_for, run_until

from consolidator.domain.actions import Plan
from consolidator.domain.snapshot import Snapshot
from consolidator.policies.base import Policy


class Watched:
    """The policy, with every snapshot it is given kept for the test."""

    def __init__(self, inner: Policy, seen: list[Snapshot]) -> None:
        self.inner, self.seen = inner, seen

    def plan(self, snap: Snapshot) -> Plan:
        self.seen.append(snap)
        return self.inner.plan(snap)


def test_mad_mmt_plans_at_its_interval_with_history_and_sheds_load(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    seen: list[Snapshot] = []

    async def main() -> None:
        await boot(cluster, "pm0", "vm0", 0.6)
        await boot(cluster, "pm0", "vm1", 0.3)  # pm0 at 0.9 of 1.0: over MAD's fallback threshold (THR 0.7)
        service = cluster.manager(policy={"name": "mad-mmt", "args": {"interval_s": 0.5}},
                                  hosts={"pm2": {**cluster.config().hosts["pm2"].model_dump(mode="json"),
                                                 "core_speed": 0.5}})
        await service.start()
        service.loop.policy = Watched(service.loop.policy, seen)  # type: ignore[assignment]
        await run_until(service, lambda: bool(cluster.migrations()) and not service.cluster.in_flight)
        await run_for(service, 1.2)
        await service.shutdown()

    asyncio.run(main())
    times = np.array([s.t_s for s in seen])
    cells = np.floor(times / 0.5 + 1e-9)  # rounds on the grid k * 0.5 s (late ones stay in theirs)
    assert len(times) >= 3 and np.all(np.diff(cells) >= 1), times  # one round per 0.5 s, not per 0.1 s period
    assert len(times) <= cells[-1] - cells[0] + 1
    lengths = [int(s.vm_history_len[0]) for s in seen]
    assert lengths == list(range(1, len(seen) + 1)), lengths  # one history value per round
    first = seen[0]
    later = seen[-1]
    assert later.vm_load_now[0] == later.vm_load_history[0, 0]  # "now" is the interval's mean
    assert later.vm_load_history[:, 0] == pytest.approx([0.6, 0.3])
    assert list(first.host_core_speed) == [1.0, 1.0, 0.5] and list(first.host_cores) == [1.0, 1.0, 1.0]
    # MMT: equal RAM, the first VM; PABFD: not pm2, whose cores (speed 0.5) are slower than vm0's 0.6
    assert cluster.migrations() == ["vm0 pm0->tcp:127.0.0.1:49153"]
