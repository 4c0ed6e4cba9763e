"""Operator rules (control.rules.gate): a pure filter; table-driven, one rule per row."""

from __future__ import annotations

import numpy as np
import pytest

from consolidator.control.rules import Failures, History, RuleBook, gate
from consolidator.domain.actions import Action, Migrate, Plan, Suspend, Wake
from consolidator.domain.events import HostPowerChanged, MigrationFinished
from consolidator.domain.snapshot import Snapshot
from consolidator.domain.types import MigrationMethod, MigrationOutcome, PowerState

POST = MigrationMethod.POSTCOPY
HOSTS = ("pm0", "pm1", "pm2", "pm3")
ON, SUSPENDED = PowerState.ON, PowerState.SUSPENDED


def snap(t_s: float = 100.0, states: tuple[PowerState, ...] = (ON, ON, ON, SUSPENDED),
         vm_host: tuple[int, ...] = (0, 0, 1), last_end: float = -np.inf) -> Snapshot:
    n = len(vm_host)
    return Snapshot(
        t_s=t_s, method=POST, host_names=HOSTS, host_is_warehouse=np.array([True, False, False, False]),
        host_state=np.array([st.code for st in states], dtype=np.int8), host_cores=np.ones(4),
        host_mem_mib=np.full(4, 4096.0),
        host_load_avg=np.zeros(4), host_load_now=np.zeros(4), host_load_short=np.zeros(4),
        host_overhead_now=np.zeros(4),
        vm_names=tuple(f"vm{i}" for i in range(n)), vm_host=np.array(vm_host, dtype=np.int64),
        vm_runs_on=np.array(vm_host, dtype=np.int64), vm_mem_mib=np.full(n, 256.0), vm_load_avg=np.full(n, 0.1),
        vm_load_now=np.full(n, 0.1), vm_load_short=np.full(n, 0.1), vm_busy=np.zeros(n, dtype=bool),
        vm_move_src=np.full(n, -1, dtype=np.int64), vm_last_move_end_s=np.full(n, last_end),
        vm_dirty_bytes_per_s=np.zeros(n), host_nic_bytes_per_s=np.full(4, 120e6))


M0 = Migrate("vm0", "pm0", "pm2", POST)
ROWS: list[tuple[str, RuleBook, dict[str, object], Action, str | None]] = [
    ("nothing set", RuleBook(), {}, M0, None),
    ("pin", RuleBook(pinned=frozenset({"vm0"})), {}, M0, "pin"),
    ("exclude", RuleBook(excluded=frozenset({"vm0"})), {}, M0, "exclude"),
    ("maintenance target", RuleBook(maintenance=frozenset({"pm2"})), {}, M0, "maintenance"),
    ("maintenance never woken", RuleBook(maintenance=frozenset({"pm3"})), {}, Wake("pm3"), "maintenance"),
    ("min hold", RuleBook(min_hold_s=60), {"last_end": 70.0}, M0, "min_hold"),
    ("hold over", RuleBook(min_hold_s=60), {"last_end": 30.0}, M0, None),
    ("vm moves per hour", RuleBook(max_moves_per_vm_per_hour=2), {"starts": [10.0, 90.0]}, M0, "vm_moves_per_hour"),
    ("migration rate", RuleBook(max_migrations_per_minute=2), {"all": [50.0, 90.0]}, M0, "migration_rate"),
    ("rate window passed", RuleBook(max_migrations_per_minute=2), {"all": [10.0, 20.0]}, M0, None),
    ("host concurrency", RuleBook(max_migrations_per_host=1), {"in_flight": {"vm2": ("pm1", "pm2")}}, M0,
     "host_concurrency"),
    ("move backoff", RuleBook(move_backoff_s=30, move_retry_max=5), {"move_fail": (2, 60.0)}, M0, "move_backoff"),
    ("move backoff over", RuleBook(move_backoff_s=10, move_retry_max=5), {"move_fail": (2, 60.0)}, M0, None),
    ("move retry cap", RuleBook(move_retry_max=3, give_up_s=3600), {"move_fail": (3, 10.0)}, M0, "move_retry_cap"),
    ("wake backoff", RuleBook(wake_backoff_s=60), {"wake_fail": (1, 90.0)}, Wake("pm3"), "wake_backoff"),
    ("wake cap blocks a move to a sleeping host", RuleBook(wake_retry_max=1), {"wake_fail": (1, 90.0)},
     Migrate("vm0", "pm0", "pm3", POST), "wake_retry_cap"),
    ("reserve", RuleBook(reserve_hosts=1), {}, Suspend("pm2"), "reserve"),
    ("maintenance not suspended", RuleBook(maintenance=frozenset({"pm2"})), {}, Suspend("pm2"), "maintenance"),
]


@pytest.mark.parametrize(("book", "state", "action", "rule"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_each_rule(book: RuleBook, state: dict[str, object], action: Action, rule: str | None) -> None:
    history = History()
    for t in state.get("starts", []):  # type: ignore[attr-defined]
        history.note_started("vm0", t)
    history.all_starts += state.get("all", [])  # type: ignore[arg-type]
    if "move_fail" in state:
        history.move_failures["vm0"] = Failures(*state["move_fail"])  # type: ignore[misc]
    if "wake_fail" in state:
        history.wake_failures["pm3"] = Failures(*state["wake_fail"])  # type: ignore[misc]
    s = snap(last_end=float(state.get("last_end", -np.inf)))  # type: ignore[arg-type]
    gated = gate(Plan((action,)), s, book, history, state.get("in_flight", {}))  # type: ignore[arg-type]
    if rule is None:
        assert gated.plan.actions == (action,) and gated.refusals == ()
    else:
        assert [r.rule for r in gated.refusals] == [rule]
        assert action not in gated.plan.actions


def test_never_postcopy_sends_by_precopy() -> None:
    gated = gate(Plan((M0,)), snap(), RuleBook(never_postcopy=frozenset({"vm0"})), History(), {})
    assert gated.plan.actions == (Migrate("vm0", "pm0", "pm2", MigrationMethod.PRECOPY),)
    assert [r.rule for r in gated.refusals] == ["never_postcopy"]


def test_maintenance_evacuates_to_the_fullest_host_with_room() -> None:
    book = RuleBook(maintenance=frozenset({"pm0"}), pinned=frozenset({"vm1"}))
    gated = gate(Plan(()), snap(), book, History(), {})
    assert gated.plan.actions == (Migrate("vm0", "pm0", "pm1", POST, "maintenance: evacuate"),)  # vm1 pinned


def test_reserve_wakes_a_sleeping_host() -> None:
    s = snap(states=(ON, ON, ON, SUSPENDED), vm_host=(0, 1, 2))  # no empty host awake
    gated = gate(Plan(()), s, RuleBook(reserve_hosts=1), History(), {})
    assert [type(a) for a in gated.plan.actions] == [Wake] and gated.plan.actions[0].host == "pm3"  # type: ignore[union-attr]


def test_admitted_moves_count_against_the_limits_in_the_same_plan() -> None:
    plan = Plan((M0, Migrate("vm1", "pm0", "pm1", POST)))
    gated = gate(plan, snap(), RuleBook(max_migrations_per_host=1), History(), {})
    assert gated.plan.actions == (M0,) and [r.rule for r in gated.refusals] == ["host_concurrency"]


def test_history_replays_failures_and_clears_them_on_success() -> None:
    h = History()
    fail = MigrationFinished(10.0, "vm0", "pm0", "pm1", POST, MigrationOutcome.FAILED, start_s=9.0)
    h.replay([fail, fail, HostPowerChanged(12.0, "pm3", PowerState.FAILED, "wake failed: no answer")])
    assert h.move_failures["vm0"].count == 2 and h.starts["vm0"] == [9.0, 9.0]
    assert h.wake_failures["pm3"].count == 1
    h.on_event(MigrationFinished(20.0, "vm0", "pm0", "pm1", POST, MigrationOutcome.COMPLETED, start_s=19.0))
    h.on_event(HostPowerChanged(21.0, "pm3", PowerState.ON))
    assert "vm0" not in h.move_failures and "pm3" not in h.wake_failures
