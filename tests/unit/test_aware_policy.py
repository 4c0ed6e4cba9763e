"""Table-driven tests of the migration-aware policy (policies/aware.py) and of its move pricing."""

from __future__ import annotations

import math

import pytest
from snapshots import snap

from consolidator.domain.actions import Migrate, Suspend
from consolidator.domain.types import MigrationMethod
from consolidator.domain.types import PowerState as P
from consolidator.models.migration import MigrationParams
from consolidator.policies.aware import AwarePolicy
from consolidator.policies.move_cost import MoveCoster
from consolidator.policies.registry import make_policy

ON, SUSP, RES = P.ON, P.SUSPENDED, P.RESUMING
POST, PRE, HYB = MigrationMethod.POSTCOPY, MigrationMethod.PRECOPY, MigrationMethod.HYBRID
ONE = dict(cores=1.0)  # hosts of the paper profile serve 1.0 unit (DESIGN §2)

CASES = [
    # (id, snapshot kwargs, expected migrations as (vm, src, dst), expected suspends)
    ("an overloaded warehouse sheds its active VM to a sleeping server",
     dict(vm_host=[0, 0, 0], vm_load=[0.8, 0.1, 0.2], states=[ON, SUSP, SUSP], **ONE),
     [("VM0", "PM0", "PM1")], []),
    ("an awake empty server is preferred to a sleeping one",
     dict(vm_host=[0, 0], vm_load=[0.85, 0.2], states=[ON, SUSP, ON], **ONE),
     [("VM0", "PM0", "PM2")], []),
    ("a waking server is preferred to a sleeping one",
     dict(vm_host=[0, 0], vm_load=[0.85, 0.2], states=[ON, SUSP, RES], **ONE),
     [("VM0", "PM0", "PM2")], []),
    ("when an idle VM's departure ends the overload and a powered host has room, it goes there: no wake",
     dict(vm_host=[0, 0, 1], vm_load=[0.75, 0.3, 0.5], states=[ON, ON, SUSP], **ONE),
     [("VM1", "PM0", "PM1")], []),
    ("measured overhead counts towards the overload",
     dict(vm_host=[0, 0], vm_load=[0.75, 0.2], states=[ON, SUSP], overhead=[0.1, 0.0], **ONE),
     [("VM0", "PM0", "PM1")], []),
    ("under its capacity a host keeps its VMs",
     dict(vm_host=[0, 0, 1], vm_load=[0.7, 0.25, 0.8], states=[ON, ON, ON], **ONE),
     [], ["PM2"]),
    ("a host with one VM is not relieved: moving it would only overload another",
     dict(vm_host=[0, 1], vm_load=[1.0, 0.85], states=[ON, ON, SUSP], **ONE),
     [], []),
    ("a VM leaving by precopy still counts as gone: the source sheds nothing more",
     dict(vm_host=[1, 0, 0], vm_load=[0.9, 0.2, 0.3], states=[ON, ON, SUSP], busy=[True, False, False],
          runs_on=[0, 0, 0], **ONE),
     [], []),
    ("an idle VM alone on a host packs onto a host with room, best fit",
     dict(vm_host=[0, 1, 2], vm_load=[0.1, 0.5, 0.3], states=[ON, ON, ON], **ONE),
     [("VM0", "PM0", "PM1")], []),
    ("idle VMs pack beside an active VM (First-Fit does; the paper's heuristic does not)",
     dict(vm_host=[0, 1], vm_load=[0.05, 0.7], states=[ON, ON], **ONE),
     [("VM0", "PM0", "PM1")], []),
    ("... but only within fill (0.8): 20 % of the host is left for task noise and a newcomer's catch-up",
     dict(vm_host=[0, 1], vm_load=[0.1, 0.75], states=[ON, ON], **ONE),
     [], []),
    ("a host with an active VM is not emptied; an idle VM alone elsewhere packs onto it",
     dict(vm_host=[0, 0, 1], vm_load=[0.05, 0.55, 0.15], states=[ON, ON], **ONE),
     [("VM2", "PM1", "PM0")], []),
    ("no packing when not every VM of the host fits elsewhere (no half-emptied hosts)",
     dict(vm_host=[0, 0, 1], vm_load=[0.3, 0.3, 0.5], states=[ON, ON], **ONE),
     [], []),
    ("a VM moved less than hold_s ago is not packed",
     dict(vm_host=[0, 1], vm_load=[0.1, 0.5], states=[ON, ON], last_end=[95.0, -math.inf], **ONE),
     [], []),
    ("a VM whose short window is still high is not packed yet (one low sample is not a mode change)",
     dict(vm_host=[0, 1], vm_load=[0.1, 0.5], vm_short=[0.6, 0.5], states=[ON, ON], **ONE),
     [], []),
    ("the 10 s average does not hold back a VM whose short window shows it idle",
     dict(vm_host=[0, 1], vm_load=[0.1, 0.5], vm_short=[0.1, 0.5], vm_avg=[0.8, 0.5], states=[ON, ON], **ONE),
     [("VM0", "PM0", "PM1")], []),
    ("a destination VM's 10 s average counts in room checks (cautious)",
     dict(vm_host=[0, 1], vm_load=[0.1, 0.5], vm_avg=[0.1, 0.85], states=[ON, ON], **ONE),
     [], []),
    ("no host is woken to receive an idle VM",
     dict(vm_host=[1], vm_load=[0.1], states=[SUSP, ON], **ONE),
     [], []),
    ("a host with a move in flight neither sends nor receives an idle VM",
     dict(vm_host=[1, 1, 2], vm_load=[0.1, 0.1, 0.1], states=[ON, ON, ON], busy=[True, False, False],
          runs_on=[0, 1, 2], move_src=[0, -1, -1], **ONE),
     [], []),
    ("a postcopy in flight still holds its source's link: no second move off an overloaded host",
     dict(vm_host=[1, 0, 0], vm_load=[0.9, 0.6, 0.45], states=[ON, ON, SUSP], busy=[True, False, False],
          runs_on=[1, 0, 0], move_src=[0, -1, -1], **ONE),
     [], []),
    ("one move per destination per round: the second idle host waits",
     dict(vm_host=[0, 1, 2], vm_load=[0.1, 0.1, 0.5], states=[ON, ON, ON], **ONE),
     [("VM0", "PM0", "PM2")], []),
    ("empty powered hosts are suspended, not the ones receiving",
     dict(vm_host=[0, 0], vm_load=[0.85, 0.2], states=[ON, ON, ON], **ONE),
     [("VM0", "PM0", "PM1")], ["PM2"]),
]


@pytest.mark.parametrize(("case", "kwargs", "moves", "suspends"), CASES, ids=[c[0] for c in CASES])
def test_aware_policy(case: str, kwargs: dict, moves: list, suspends: list) -> None:
    plan = AwarePolicy().plan(snap(**kwargs))
    got_moves = [(a.vm, a.src, a.dst) for a in plan.actions if isinstance(a, Migrate)]
    got_suspends = [a.host for a in plan.actions if isinstance(a, Suspend)]
    assert got_moves == moves
    assert got_suspends == suspends


def test_wake_ahead_for_a_host_waiting_for_its_link() -> None:
    """A saturated host whose link is taken gets an empty host woken (or kept awake) for its next move."""
    kw = dict(vm_host=[1, 0, 0, 0], vm_load=[0.9, 0.4, 0.35, 0.3], busy=[True, False, False, False],
              runs_on=[1, 0, 0, 0], move_src=[0, -1, -1, -1], **ONE)
    plan = AwarePolicy().plan(snap(states=[ON, ON, SUSP, SUSP], **kw))
    assert [(type(a).__name__, a.host) for a in plan.actions] == [("Wake", "PM2")]
    plan = AwarePolicy().plan(snap(states=[ON, ON, ON, ON], **kw))
    assert [(type(a).__name__, a.host) for a in plan.actions] == [("Suspend", "PM3")]  # PM2 is kept
    assert not AwarePolicy(wake_ahead=0).plan(snap(states=[ON, ON, SUSP, SUSP], **kw)).actions
    assert not AwarePolicy(wake_ahead_vms=4).plan(snap(states=[ON, ON, SUSP, SUSP], **kw)).actions


def test_a_guest_catching_up_after_its_move_does_not_send_it_away_again() -> None:
    """A VM that arrived within hold_s counts at its 10 s average (its stall included), and its host is
    saturated only if saturated over the whole window."""
    kw = dict(vm_host=[0, 0], vm_load=[0.6, 0.45], vm_avg=[0.6, 0.2], host_avg=[0.8, 0.0], states=[ON, SUSP], **ONE)
    assert AwarePolicy().plan(snap(**kw)).actions  # settled: 1.05 served, saturated -> relief
    assert not AwarePolicy().plan(snap(last_end=[-math.inf, 95.0], **kw)).actions
    # a resident that is busy on both averages still overloads the host: relief despite the newcomer
    busy = dict(kw, vm_load=[0.8, 0.45], vm_avg=[0.8, 0.2])
    assert [a.vm for a in AwarePolicy().plan(snap(last_end=[-math.inf, 95.0], **busy)).actions] == ["VM0"]


def test_saturated_for_the_whole_window_is_overloaded_even_if_the_vms_look_light() -> None:
    """Served load under-reports a starved VM's demand: a host pinned at capacity sheds a VM anyway."""
    s = snap(vm_host=[0, 0], vm_load=[0.5, 0.4], states=[ON, SUSP], overhead=[0.1, 0.0], **ONE)
    assert s.host_load_now[0] == pytest.approx(0.9)
    s2 = snap(vm_host=[0, 0], vm_load=[0.55, 0.45], states=[ON, SUSP], **ONE)  # served 1.0 = capacity
    assert not AwarePolicy(overload=1.05).plan(s).actions
    assert [(a.vm, a.dst) for a in AwarePolicy(overload=1.05).plan(s2).actions] == [("VM0", "PM1")]


METHOD_CASES = [
    # (id, coster kwargs, load, dirty bytes/s, source excess cores, source sleeps, expected method)
    ("an active VM off an overloaded host: postcopy ends the overload at once", {}, 0.85, 170e6, 0.5, False, POST),
    ("dirtying faster than the link: precopy never converges, not chosen even if delay is all that counts",
     dict(delay_weight_ws=1e6), 0.9, 180e6, 0.0, False, HYB),
    ("an idle VM when delay is priced high: precopy, no stall", dict(delay_weight_ws=1e4), 0.05, 10e6, 0.0, True, PRE),
    ("an idle VM when only energy counts: postcopy, the shortest", dict(delay_weight_ws=0.0), 0.15, 30e6, 0.0, True,
     POST),
    ("only precopy allowed and it cannot converge: nothing finite", dict(methods=(PRE,)), 0.9, 180e6, 0.0, False,
     None),
]


@pytest.mark.parametrize(("case", "kwargs", "load", "dirty", "excess", "sleeps", "expected"), METHOD_CASES,
                         ids=[c[0] for c in METHOD_CASES])
def test_move_method_choice(case: str, kwargs: dict, load: float, dirty: float, excess: float, sleeps: bool,
                            expected: MigrationMethod | None) -> None:
    best = MoveCoster(**kwargs).cheapest(1 << 30, load, dirty, 120e6, excess, sleeps)
    if expected is None:
        assert math.isinf(best.cost_ws)
    else:
        assert best.method is expected
        assert math.isfinite(best.cost_ws)


def test_move_cost_parts() -> None:
    """Postcopy leaves the source after set-up; precopy keeps an overloaded source overloaded throughout."""
    c = MoveCoster(params=MigrationParams(postcopy_fault_s=0.0))
    post = c.cost(POST, 1 << 30, 0.5, 50e6, 120e6, source_excess_cores=0.4, source_sleeps=False)
    pre = c.cost(PRE, 1 << 30, 0.5, 50e6, 120e6, source_excess_cores=0.4, source_sleeps=False)
    assert post.at_source_s == pytest.approx(0.05)
    assert post.delayed_core_s == pytest.approx(0.4 * 0.05)  # no fault cost: only the set-up
    assert pre.at_source_s == pytest.approx(pre.duration_s)
    assert pre.delayed_core_s == pytest.approx(0.4 * pre.duration_s)
    assert pre.energy_ws == pytest.approx(pre.duration_s * 6.0 + 20.0 * pre.duration_s)


def test_plan_chooses_postcopy_to_relieve_and_keeps_instant_for_ideal_runs() -> None:
    s = snap(vm_host=[0, 0], vm_load=[0.85, 0.3], states=[ON, SUSP], **ONE)
    assert [a.method for a in AwarePolicy().plan(s).actions] == [POST]
    s_instant = snap(vm_host=[0, 0], vm_load=[0.85, 0.3], states=[ON, SUSP], method=MigrationMethod.INSTANT, **ONE)
    assert [a.method for a in AwarePolicy().plan(s_instant).actions] == [MigrationMethod.INSTANT]


def test_registered_with_validated_numeric_arguments() -> None:
    assert make_policy("aware", fill=0.8).name == "aware"
    with pytest.raises(Exception, match="takes no argument 'params'"):
        make_policy("aware", params=1.0)
    with pytest.raises(Exception, match="fill <= overload"):
        make_policy("aware", fill=1.2)
