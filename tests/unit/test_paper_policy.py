"""Table-driven tests of the paper's Warehouse/Server heuristic (III-C) and of the baselines."""

from __future__ import annotations

import pytest
from snapshots import snap

from consolidator.domain.actions import Migrate, Suspend
from consolidator.domain.types import MigrationMethod
from consolidator.domain.types import PowerState as P
from consolidator.policies.baselines import IdealFirstFit, NoConsolidation
from consolidator.policies.paper import PaperPolicy

ON, SUSP = P.ON, P.SUSPENDED

CASES = [
    # (id, snapshot kwargs, expected migrations as (vm, src, dst), expected suspends)
    ("overloaded warehouse sends its busiest VM to a sleeping server",
     dict(vm_host=[0, 0, 0], vm_load=[0.8, 0.05, 0.1], states=[ON, SUSP, SUSP]),
     [("VM0", "PM0", "PM1")], []),
    ("an awake empty server is preferred to a sleeping one",
     dict(vm_host=[0, 0], vm_load=[0.85, 0.1], states=[ON, SUSP, ON]),
     [("VM0", "PM0", "PM2")], []),
    ("overhead counts towards the threshold",
     dict(vm_host=[0, 0], vm_load=[0.75, 0.1], states=[ON, SUSP], overhead=[0.1, 0.0]),
     [("VM0", "PM0", "PM1")], []),
    ("below the threshold nothing moves",
     dict(vm_host=[0, 0], vm_load=[0.7, 0.1], states=[ON, SUSP]),
     [], []),
    ("the busiest VM still leaving by precopy holds the others back",
     dict(vm_host=[1, 0, 0], vm_load=[0.9, 0.5, 0.45], states=[ON, ON, SUSP], busy=[True, False, False],
          runs_on=[0, 0, 0]),
     [], []),
    ("a VM running at its postcopy destination no longer counts at the source",
     dict(vm_host=[1, 0, 0], vm_load=[0.9, 0.5, 0.45], states=[ON, ON, SUSP], busy=[True, False, False],
          runs_on=[1, 0, 0]),
     [("VM1", "PM0", "PM2")], []),
    ("an idle VM on a server returns after its hold, and its server is then empty",
     dict(vm_host=[1], vm_load=[0.3], states=[ON, ON], last_end=[70.0]),
     [("VM0", "PM1", "PM0")], []),
    ("no return within the 20 s hold",
     dict(vm_host=[1], vm_load=[0.3], states=[ON, ON], last_end=[90.0]),
     [], ["PM0"]),
    ("no return above the 50 % return threshold",
     dict(vm_host=[1], vm_load=[0.6], states=[ON, ON]),
     [], ["PM0"]),
    ("no return when the warehouse lacks CPU",
     dict(vm_host=[0, 1], vm_load=[0.6, 0.4], states=[ON, ON]),
     [], []),
    ("no return when the warehouse lacks memory",
     dict(vm_host=[1, 0], vm_load=[0.1, 0.0], states=[ON, ON], vm_mem=2048.0, host_mem=3072.0),
     [], []),
    ("return to a sleeping warehouse (the controller wakes it)",
     dict(vm_host=[1], vm_load=[0.1], states=[SUSP, ON]),
     [("VM0", "PM1", "PM0")], []),
    ("empty powered hosts are suspended",
     dict(vm_host=[0], vm_load=[0.1], states=[ON, ON, ON]),
     [], ["PM1", "PM2"]),
]


@pytest.mark.parametrize(("case", "kwargs", "moves", "suspends"), CASES, ids=[c[0] for c in CASES])
def test_paper_policy(case: str, kwargs: dict, moves: list, suspends: list) -> None:
    plan = PaperPolicy().plan(snap(**kwargs))
    got_moves = [(a.vm, a.src, a.dst) for a in plan.actions if isinstance(a, Migrate)]
    got_suspends = [a.host for a in plan.actions if isinstance(a, Suspend)]
    assert got_moves == moves
    assert got_suspends == suspends


def test_paper_policy_uses_the_runs_method() -> None:
    plan = PaperPolicy().plan(snap(vm_host=[0], vm_load=[0.95], states=[ON, SUSP], method=MigrationMethod.PRECOPY))
    assert [a.method for a in plan.actions] == [MigrationMethod.PRECOPY]


def test_fcfs_order_is_by_how_long_a_vm_has_been_eligible() -> None:
    """One request per Warehouse node per round (it admits one VM at a time): the longest-waiting VM asks."""
    plan = PaperPolicy().plan(snap(vm_host=[1, 2], vm_load=[0.1, 0.1], states=[ON, ON, ON], last_end=[60.0, 10.0]))
    assert [a.vm for a in plan.actions if isinstance(a, Migrate)] == ["VM1"]
    two = snap(vm_host=[2, 3], vm_load=[0.1, 0.1], states=[ON, ON, ON, ON], warehouses=(0, 1), last_end=[60.0, 10.0])
    assert [(a.vm, a.dst) for a in PaperPolicy().plan(two).actions if isinstance(a, Migrate)] == [
        ("VM1", "PM0"), ("VM0", "PM1")]


def test_a_warehouse_with_a_vm_arriving_is_not_asked() -> None:
    s = snap(vm_host=[0, 2], vm_load=[0.1, 0.1], states=[ON, ON, ON], warehouses=(0, 1), busy=[True, False],
             runs_on=[2, 2])
    assert [(a.vm, a.dst) for a in PaperPolicy().plan(s).actions if isinstance(a, Migrate)] == [("VM1", "PM1")]


@pytest.mark.parametrize(
    ("loads", "capacity", "targets"),
    [
        ([0.8, 0.1, 0.1, 0.9], 1.0, [0, 0, 0, 1]),
        ([0.6, 0.6, 0.6], 1.0, [0, 1, 2]),
        ([0.6, 0.6, 0.6], 1.5, [0, 0, 1]),
        ([0.2] * 5, 1.0, [0] * 5),
    ],
)
def test_ideal_first_fit(loads: list[float], capacity: float, targets: list[int]) -> None:
    s = snap(vm_host=[0] * len(loads), vm_load=loads, states=[ON] * 4)
    assert IdealFirstFit(capacity=capacity).assign(s).tolist() == targets
    plan = IdealFirstFit(capacity=capacity).plan(s)
    assert all(a.method is MigrationMethod.INSTANT for a in plan.actions if isinstance(a, Migrate))


def test_none_places_one_vm_per_server_and_never_moves() -> None:
    from consolidator.sim.scenario import load_scenario

    sc = load_scenario("complex")
    placement = NoConsolidation().initial_placement(sc.hosts, sc.vms, sc.placement)
    assert sorted(placement.values()) == ["PM1", "PM2", "PM3", "PM4", "PM5"]
    assert NoConsolidation().plan(snap(vm_host=[0], vm_load=[1.0], states=[ON, SUSP])).actions == ()
