"""Work-conserving guests: backlog accounting, FIFO delay of work, the drain after the window (DESIGN §2)."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from consolidator.domain.actions import Plan
from consolidator.domain.snapshot import Snapshot
from consolidator.domain.types import MigrationMethod
from consolidator.policies.baselines import NoConsolidation
from consolidator.sim.backlog import UNITS_PER_CORE_S, Accounting, Backlog, GuestModel, to_units
from consolidator.sim.engine import Simulation
from consolidator.sim.scenario import parse_scenario

U = UNITS_PER_CORE_S


def test_served_plus_backlog_is_arrived_exactly_every_tick() -> None:
    rng = np.random.default_rng(7)
    vcpus = np.array([1.0, 2.0, 1.0, 4.0])
    b = Backlog(vcpus, 1.0, Accounting.WORK_CONSERVING)
    for _ in range(500):
        demand = b.demand(to_units(rng.gamma(rng.poisson(40, 4), 0.02)))  # Poisson tasks, 20 ms each
        assert np.all(demand <= vcpus)
        served = b.serve(demand * rng.uniform(0.0, 1.1, 4))  # a host may give less, never more than asked
        assert np.all(served >= 0)
        assert np.array_equal(b.served + b.backlog, b.arrived)  # integers: exact
        assert np.all(b.backlog >= 0)
    assert int(b.served.sum()) + int(b.backlog.sum()) == int(b.arrived.sum())


def _run(arrivals: list[float], served: list[float], vcpus: float = 1.0) -> Backlog:
    b = Backlog(np.array([vcpus]), 1.0, Accounting.WORK_CONSERVING)
    for a, s in zip(arrivals, served, strict=True):
        want = b.demand(to_units(np.array([a])))
        b.serve(np.minimum(want, s))
    return b


@pytest.mark.parametrize(
    ("arrivals", "served", "mean_s", "p95_s"),
    [
        ([0.5, 0.5, 0.5], [1.0, 1.0, 1.0], 0.0, 0.0),  # served in the tick it arrived: no extra delay
        ([2.0, 0.0, 0.0], [1.0, 1.0, 1.0], 0.5, 1.0),  # vCPU bound: half waits one tick
        ([1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0], 2.0, 2.0),  # FIFO: each unit waits exactly 2 ticks
        ([1.0, 0.0, 0.0, 0.0, 0.0], [0.1, 0.0, 0.0, 0.0, 0.9], 3.6, 4.0),  # 10 % at 0 s, 90 % at 4 s
        ([0.25, 0.25, 0.25, 0.25], [0.0, 0.0, 0.0, 1.0], 1.5, 3.0),  # ages 3, 2, 1, 0 in equal shares
    ],
)
def test_fifo_delay_of_work(arrivals: list[float], served: list[float], mean_s: float, p95_s: float) -> None:
    b = _run(arrivals, served)
    assert b.drained()
    d = b.delays()
    assert d.mean_s == pytest.approx(mean_s)
    assert d.p95_s == pytest.approx(p95_s)
    # Little's law: the mean delay is the backlog summed over tick ends over the work served
    assert d.mean_s == pytest.approx(b.backlog_tick_ends / int(b.served.sum()))


def test_fifo_delays_over_a_long_random_run_match_a_queue_of_every_unit() -> None:
    rng = np.random.default_rng(3)
    b = Backlog(np.ones(6), 1.0, Accounting.WORK_CONSERVING)
    queues: list[deque[list[int]]] = [deque() for _ in range(6)]  # the reference: [arrival tick, units] FIFO
    want_hist: Counter[int] = Counter()
    for k in range(2000):
        arrived = to_units(rng.gamma(rng.poisson(30, 6), 0.02) if k < 1500 else np.zeros(6))
        want = b.demand(arrived)
        share = np.where(rng.random(6) < 0.3, 0.2, 1.0)  # starved now and then
        share[0] = 0.0 if 200 <= k < 260 else share[0]  # and VM 0 for a minute
        served = b.serve(want * share)
        for v in range(6):
            queues[v].append([k, int(arrived[v])])
            left = int(served[v])
            while left:
                head = queues[v][0]
                take = min(left, head[1])
                want_hist[k - head[0]] += take
                head[1] -= take
                left -= take
                if head[1] == 0:
                    queues[v].popleft()
    assert b.drained()
    got = b.delay_histogram()
    assert {d: int(u) for d, u in enumerate(got) if u} == {d: u for d, u in want_hist.items() if u}
    d = b.delays()
    assert d.max_s > 30  # a real backlog built up and aged
    assert d.mean_s == pytest.approx(b.backlog_tick_ends / int(b.served.sum()), rel=1e-12)
    assert d.mean_s <= d.p95_s <= d.max_s


def test_lost_cpu_drops_what_was_not_served() -> None:
    b = Backlog(np.array([1.0]), 1.0, Accounting.LOST_CPU)
    for a, s in ((0.8, 0.5), (0.8, 0.8), (0.2, 0.0)):
        want = b.demand(to_units(np.array([a])))
        assert want[0] == pytest.approx(a)  # nothing carried over
        b.serve(np.array([s]))
    assert int(b.served[0]) == to_units(np.array([1.3]))[0]
    assert int(b.dropped[0] + b.backlog[0]) == to_units(np.array([0.5]))[0]


SCENARIO = b"""
name = "starve"
duration_s = 60
overhead_per_vm_cores = 0.0
[guests]
task_mean_s = %(task)s
drain_limit_s = %(limit)s
[[hosts]]
name = "W"
role = "warehouse"
[[hosts]]
name = "S{i}"
role = "server"
count = 2
[[vms]]
name = "A"
host = "W"
load = [[0, 0.8]]
[[vms]]
name = "B"
host = "W"
load = [[0, 0.6]]
"""


class Stay:
    """A policy that leaves every VM where the scenario put it (both on W) and does nothing."""

    name = "stay"

    def initial_placement(self, hosts: object, vms: object, requested: dict[str, str]) -> dict[str, str]:
        return dict(requested)

    def plan(self, snapshot: Snapshot) -> Plan:
        return Plan()


def _starve(task: float = 0.0, limit: float = 3600.0) -> dict[str, Any]:
    """Two VMs on one host of capacity 1.0, never moved."""
    sc = parse_scenario(SCENARIO % {b"task": str(task).encode(), b"limit": str(limit).encode()}, "test")
    return Simulation(sc, Stay(), MigrationMethod.POSTCOPY, record_vms=True).run().summary  # type: ignore[arg-type]


def test_an_overloaded_host_serves_its_capacity_and_the_backlog_drains_after_the_window() -> None:
    s = _starve()
    # 1.4 cores of work a second on a host that serves 1.0: 0.4 core·s a second waits
    assert s["work_arrived_core_s"] == pytest.approx(60 * 1.4)
    assert s["backlog_end_core_s"] == pytest.approx(60 * 0.4)
    assert s["work_served_core_s"] == s["work_arrived_core_s"]
    assert s["completed"] is True
    assert s["complete_s"] == pytest.approx(60 + 24)  # 24 core·s more at 1 core/s
    # power saturates where the host stops serving: 100 W throughout on W, 2 suspended Server nodes
    assert s["energy_ws"] == pytest.approx(60 * (100 + 2 * 7))
    assert s["energy_to_complete_ws"] == pytest.approx(84 * (100 + 2 * 7))
    assert s["delay_p95_s"] > 10 and s["delay_mean_s"] > 5


def test_a_drain_that_hits_its_bound_says_so() -> None:
    s = _starve(limit=10.0)
    assert s["completed"] is False
    assert s["complete_s"] == pytest.approx(70)
    assert s["work_served_core_s"] < s["work_arrived_core_s"]


def test_poisson_arrivals_are_the_same_work_whatever_the_policy_does() -> None:
    a = _starve(task=0.02)
    sc = parse_scenario(SCENARIO % {b"task": b"0.02", b"limit": b"3600"}, "test")
    b = Simulation(sc, NoConsolidation(), MigrationMethod.POSTCOPY).run().summary  # one VM per Server
    assert a["work_arrived_core_s"] == b["work_arrived_core_s"]
    assert a["work_arrived_core_s"] == pytest.approx(60 * 1.4, rel=0.05)  # Poisson around the load
    assert b["delay_mean_s"] < a["delay_mean_s"]


def test_guest_model_in_the_scenario_file() -> None:
    sc = parse_scenario(SCENARIO % {b"task": b"0", b"limit": b"5"}, "test")
    assert sc.guests == GuestModel(Accounting.WORK_CONSERVING, 0.0, 5.0)
    lost = replace(sc, guests=GuestModel(Accounting.LOST_CPU))
    s = Simulation(lost, NoConsolidation(), MigrationMethod.POSTCOPY).run().summary
    assert s["accounting"] == "lost-cpu" and s["complete_s"] == 60
