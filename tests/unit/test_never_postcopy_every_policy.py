"""Per-VM ``never_postcopy`` is honoured whatever the policy (issue 11 item 2).

Design: policies stay pure and rule-blind; the operator rules gate (control.rules.gate, between the
Relocation Planner and the VM Controller, as the manager service runs it) rewrites a postcopy or
hybrid move of such a VM to precopy. This test runs EVERY registered policy (policies.registry) in
the simulator with postcopy as the run's method, records each snapshot and plan it makes, and
passes them through the gate with every VM marked ``never_postcopy``: no Migrate with postcopy or
hybrid may come out, and (so the test can fail) every policy but ``none`` must have asked for moves.
The agent side (a precopy's ``on_timeout = "postcopy"`` must not switch such a VM) is
tests/manager/test_manager_never_postcopy.py.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from consolidator.control.rules import History, RuleBook, gate
from consolidator.domain.actions import Migrate, Plan
from consolidator.domain.snapshot import Snapshot
from consolidator.domain.types import MigrationMethod
from consolidator.policies.registry import make_policy, policy_names
from consolidator.sim.engine import Simulation
from consolidator.sim.scenario import load_scenario

POSTCOPY_LIKE = (MigrationMethod.POSTCOPY, MigrationMethod.HYBRID)


class Recording:
    """A policy that plans exactly as the wrapped one and keeps (snapshot, plan) of each round."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.rounds: list[tuple[Snapshot, Plan]] = []

    def __getattr__(self, name: str) -> Any:  # name, interval_s, history_length, initial_placement
        return getattr(self.inner, name)

    def plan(self, snapshot: Snapshot) -> Plan:
        plan = self.inner.plan(snapshot)
        self.rounds.append((snapshot, plan))
        return plan


def _args(name: str) -> dict[str, float]:
    # the literature policies plan every 300 s (CloudSim); every 10 s gives them rounds in a short run
    return {"interval_s": 10.0} if "-" in name else {}


@pytest.mark.parametrize("name", policy_names())
def test_no_postcopy_for_a_never_postcopy_vm(name: str) -> None:
    scenario = dataclasses.replace(load_scenario("complex"), duration_s=300.0)  # 5 of its 15 minutes
    policy = Recording(make_policy(name, **_args(name)))
    # the ideal is the paper's instant world (its moves are INSTANT)
    Simulation(scenario, policy, MigrationMethod.POSTCOPY, seed=1, record_vms=False, instant=name == "ideal").run()
    never = frozenset(v.name for v in scenario.vms)
    asked = rewritten_all = 0
    for snapshot, plan in policy.rounds:
        moves = [a for a in plan.actions if isinstance(a, Migrate)]
        asked += len(moves)
        gated = gate(plan, snapshot, RuleBook(never_postcopy=never), History(), {})
        sent = [a for a in gated.plan.actions if isinstance(a, Migrate)]
        assert not [a for a in sent if a.method in POSTCOPY_LIKE], f"{name} at {snapshot.t_s}: {sent}"
        assert len(sent) == len(moves)  # rewritten to precopy, not dropped
        rewritten = sum(1 for a in moves if a.method in POSTCOPY_LIKE)
        assert [r.rule for r in gated.refusals] == ["never_postcopy"] * rewritten
        rewritten_all += rewritten
    if name == "none":
        assert asked == 0
    else:
        assert asked > 0, f"{name} asked for no move in the complex scenario: the check above saw nothing"
    if name not in ("none", "ideal"):  # ideal's moves are INSTANT; every other policy sends postcopy here
        assert rewritten_all > 0, f"{name} asked for no postcopy move: nothing for the gate to rewrite"
