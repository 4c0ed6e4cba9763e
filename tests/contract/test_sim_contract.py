"""The simulator passes the ClusterPort contract (tests/contract/cluster_contract.py)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from cluster_contract import check_wake_then_migrate_then_suspend

from consolidator.domain.events import Event
from consolidator.domain.types import HostSpec, MigrationMethod, PowerState, Role, VmSpec
from consolidator.models.migration import MigrationParams
from consolidator.sim.cluster import SimCluster


class SimHarness:
    def __init__(self) -> None:
        hosts = [HostSpec("W", Role.WAREHOUSE), HostSpec("S1", Role.SERVER)]
        self.cluster = SimCluster(hosts, [VmSpec("vm0")], {"vm0": "W"}, {"S1": PowerState.SUSPENDED},
                                  MigrationParams())
        self.t = 0.0
        self.seen: list[Event] = []

    def wait_for(self, match: Callable[[Event], bool], timeout_s: float) -> Event | None:
        end = self.t + timeout_s
        while True:
            self.seen += self.cluster.drain()
            for i, event in enumerate(self.seen):
                if match(event):
                    return self.seen.pop(i)
            if self.t >= end:
                return None
            self.cluster.step(self.t, 1.0, np.array([0.5]))
            self.t += 1.0


@pytest.mark.parametrize("method", [MigrationMethod.POSTCOPY, MigrationMethod.PRECOPY, MigrationMethod.HYBRID])
def test_simulator_contract(method: MigrationMethod) -> None:
    check_wake_then_migrate_then_suspend(SimHarness(), method, timeout_s=120)
