"""The Relocation Planner's extension point: a policy turns a Snapshot into a Plan, touching nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from consolidator.domain.actions import Plan
from consolidator.domain.snapshot import Snapshot
from consolidator.domain.types import HostSpec, VmSpec


class Policy(Protocol):
    @property
    def name(self) -> str:
        """The name it is registered under."""
        ...

    def plan(self, snapshot: Snapshot) -> Plan:
        """Return the actions this policy wants now. Pure: same snapshot, same plan."""
        ...

    def initial_placement(
        self, hosts: Sequence[HostSpec], vms: Sequence[VmSpec], requested: Mapping[str, str]
    ) -> dict[str, str]:
        """Where VMs start; most policies keep the scenario's ``requested`` placement."""
        ...


def plan_interval_s(policy: Policy) -> float | None:
    """Seconds between planning rounds of a policy that plans at an interval (its ``interval_s``,
    e.g. CloudSim's 300 s), or None: it plans every period."""
    value = getattr(policy, "interval_s", None)
    return None if value is None else float(value)


def history_length(policy: Policy) -> int:
    """Values of load history at the planning interval the policy reads (its ``history_length``; 0: none)."""
    return int(getattr(policy, "history_length", 0))
