"""ControlLoop with a policy that plans at an interval: rounds on a fixed grid (a late period does not
shift later rounds), one history value per round, and the round's latest loads are its interval's means."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from consolidator.control.loop import build_loop
from consolidator.control.ports import NullSink
from consolidator.domain.actions import Plan
from consolidator.domain.snapshot import Snapshot
from consolidator.domain.types import HostSpec, MigrationMethod, PowerState, Role, VmSpec


@dataclass
class EveryInterval:
    """A planner at an interval that keeps what it was shown."""

    interval_s: float
    history_length: int = 0
    name: str = "watch"
    seen: list[Snapshot] = field(default_factory=list)

    def plan(self, snap: Snapshot) -> Plan:
        self.seen.append(snap)
        return Plan()

    def initial_placement(self, hosts, vms, requested):  # type: ignore[no-untyped-def]
        return dict(requested)


class NoCluster:
    def start_migration(self, *args: object) -> None: ...
    def cancel_migration(self, *args: object) -> None: ...
    def suspend_host(self, *args: object) -> None: ...
    def wake_host(self, *args: object) -> None: ...


def _loop(policy: EveryInterval):  # type: ignore[no-untyped-def]
    return build_loop([HostSpec("pm0", Role.WAREHOUSE, cores=1.0)], [VmSpec("vm0")], {"vm0": "pm0"}, policy,
                      NoCluster(), NullSink(), MigrationMethod.POSTCOPY, {"pm0": PowerState.ON})


@pytest.mark.parametrize(
    ("times", "rounds"),
    [
        ([1, 2, 3, 4, 5, 6, 7], [3, 6]),  # at multiples of 3 s: the first round ends the first whole interval
        ([1, 2, 4.2, 5, 7.5, 8], [4.2, 7.5]),  # late periods: the first period on or past 3, 6
        ([1, 2, 3, 9, 10, 12], [3, 9, 12]),  # a gap of several intervals: one round, then back on the grid
        ([0.5, 1.0, 1.5], [0.5, 1.0, 1.5]),  # CloudSim's PlanetLab setup: periods as long as the interval
    ],
)
def test_rounds_keep_their_grid(times: list[float], rounds: list[float]) -> None:
    policy = EveryInterval(interval_s=3.0 if rounds[-1] > 2 else 0.5)
    loop = _loop(policy)
    for t in times:
        loop.tick(t)
    assert [s.t_s for s in policy.seen] == rounds and loop.plans == len(rounds)


def test_a_round_sees_its_intervals_mean_loads_and_history() -> None:
    policy = EveryInterval(interval_s=2.0, history_length=3)
    loop = _loop(policy)
    for t, load in [(1, 0.4), (2, 0.2), (3, 0.6), (4, 0.9), (5, 0.3), (6, 0.5)]:
        loop.monitor.record_arrays(t, np.array([load + 0.05]), np.array([load]), np.array([0]), store=False)
        loop.tick(t)
    first, second, third = policy.seen
    assert [s.t_s for s in policy.seen] == [2, 4, 6]
    assert first.vm_load_now[0] == pytest.approx((0.4 + 0.2) / 2)  # periods 1 and 2
    assert second.vm_load_now[0] == pytest.approx((0.6 + 0.9) / 2)
    assert third.vm_load_now[0] == pytest.approx((0.3 + 0.5) / 2)
    assert third.host_load_now[0] == pytest.approx(0.45)
    assert list(third.vm_load_history[0]) == pytest.approx([0.4, 0.75, 0.3]) and third.vm_history_len[0] == 3
    assert loop.monitor.vm_now[0] == 0.5  # the monitor's latest sample is unchanged


def test_a_planner_every_period_keeps_no_history() -> None:
    policy = EveryInterval(interval_s=2.0)
    policy.interval_s = None  # type: ignore[assignment]
    loop = _loop(policy)
    loop.monitor.record_arrays(1, np.array([0.5]), np.array([0.45]), np.array([0]), store=False)
    loop.tick(1)
    assert loop.monitor.history_length == 0 and policy.seen[0].vm_load_now[0] == 0.45
