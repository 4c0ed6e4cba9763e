"""The ClusterPort contract every cluster driver must pass (simulated and live).

A driver's test module provides a ``Harness``: a cluster with a Warehouse ``W`` (on, holding VM
``vm0``) and a Server ``S1`` (suspended), and a way to let time pass until an event arrives. The
same checks then run against it. See tests/contract/test_sim_contract.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from consolidator.control.ports import ClusterPort
from consolidator.domain.events import Event, HostPowerChanged, MigrationFinished, MigrationStarted
from consolidator.domain.types import MigrationMethod, MigrationOutcome, PowerState


class Harness(Protocol):
    cluster: ClusterPort

    def wait_for(self, match: Callable[[Event], bool], timeout_s: float) -> Event | None:
        """Let (virtual or wall) time pass until an event matches; None on timeout."""
        ...


def _power(host: str, state: PowerState) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, HostPowerChanged) and e.host == host and e.state is state


def check_wake_then_migrate_then_suspend(h: Harness, method: MigrationMethod, timeout_s: float) -> None:
    h.cluster.wake_host("S1")
    assert h.wait_for(_power("S1", PowerState.ON), timeout_s), "S1 did not come on"
    h.cluster.start_migration("vm0", "W", "S1", method)
    started = h.wait_for(lambda e: isinstance(e, MigrationStarted) and e.vm == "vm0", timeout_s)
    assert started is not None, "no MigrationStarted"
    done = h.wait_for(lambda e: isinstance(e, MigrationFinished) and e.vm == "vm0", timeout_s)
    assert isinstance(done, MigrationFinished), "no MigrationFinished"
    assert done.outcome is MigrationOutcome.COMPLETED and (done.src, done.dst) == ("W", "S1")
    assert done.t_s >= done.start_s
    h.cluster.suspend_host("W")
    assert h.wait_for(_power("W", PowerState.SUSPENDED), timeout_s), "W did not suspend"
