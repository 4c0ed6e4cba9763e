"""One run summary (models.summary) for the simulator and the lab: hand-checked figures."""

from __future__ import annotations

import numpy as np
import pytest

from consolidator.domain.events import HostPowerChanged, MigrationFinished
from consolidator.domain.types import HostSpec, MigrationMethod, MigrationOutcome, PowerState, Role
from consolidator.models.summary import IntervalSample, RunIdentity, RunMeter
from consolidator.policies.registry import make_policy
from consolidator.sim.engine import Simulation
from consolidator.sim.scenario import load_scenario

HOSTS = [HostSpec("w", Role.WAREHOUSE, cores=1.0), HostSpec("s", Role.SERVER, cores=1.0)]
ON, SUSPENDED = PowerState.ON, PowerState.SUSPENDED
ID = RunIdentity("hand", "paper", MigrationMethod.POSTCOPY, 3, 1.0)


def _sample(t: float, watts: tuple[float, float], demand: tuple[float, float], served: tuple[float, float],
            state: tuple[PowerState, PowerState] = (ON, ON), vm_host: tuple[int, int] = (0, 1),
            load: tuple[float, float] = (0.6, 0.1), dt: float = 1.0) -> IntervalSample:
    vm_d, vm_s = np.array(demand), np.array(served)
    host_d = np.bincount(np.array(vm_host), weights=vm_d, minlength=2)
    codes = np.array([st.code for st in state])
    return IntervalSample(t, dt, codes, np.array(watts), host_d, np.array(vm_host), np.array(load), vm_d, vm_s)


def test_window_energy_unserved_per_vm_and_counts() -> None:
    meter = RunMeter(HOSTS, 2, window_end_s=2.0)
    meter.add(_sample(0.0, (60.0, 50.0), (1.2, 0.1), (1.0, 0.1)))
    # a measured load above the demand (the lab's scatter) offsets the same VM's shortfall, no other's
    meter.add(_sample(1.0, (70.0, 7.0), (0.5, 0.3), (0.6, 0.0), state=(ON, SUSPENDED)))
    meter.add(_sample(2.0, (55.0, 7.0), (0.4, 0.0), (0.1, 0.0), state=(ON, SUSPENDED)))  # after the window
    moves = [MigrationFinished(0.5, "a", "s", "w", MigrationMethod.POSTCOPY, MigrationOutcome.COMPLETED, 0.2, 1e9),
             MigrationFinished(1.5, "b", "s", "w", MigrationMethod.PRECOPY, MigrationOutcome.CANCELLED, 1.0, 1e9)]
    power = [HostPowerChanged(1.0, "s", PowerState.SUSPENDED), HostPowerChanged(2.5, "s", PowerState.ON)]
    s = meter.finish(ID, moves, power)
    assert s.energy_ws == pytest.approx(60 + 50 + 70 + 7)
    assert dict(s.energy_ws_by_host) == pytest.approx({"w": 130.0, "s": 57.0})
    assert s.energy_to_complete_ws == pytest.approx(187 + 62) and s.complete_s == 3.0 and s.duration_s == 2.0
    assert s.demand_core_s == pytest.approx(1.3 + 0.8)
    assert s.unserved_core_s == pytest.approx((0.2 - 0.1) + (0.0 + 0.3))  # vm a: 0.2 − 0.1; vm b: 0.3
    assert s.unserved_cpu_pct == pytest.approx(100 * 0.4 / 2.1)
    assert s.overload_s == 1.0  # host w wanted 1.2 > 1.0 in the first second
    assert s.active_host_s == 3.0 and s.active_on_warehouse_vm_s == 2.0  # vm a, load 0.6 on w, twice
    assert (s.migrations, s.migrations_cancelled, s.suspends, s.wakes) == (1, 1, 1, 1)
    assert s.migration_s_total == pytest.approx(0.3 + 0.5)
    j = s.as_json({"params": {"x": 1}})
    assert j["migration"] == "postcopy" and j["seed"] == 3 and j["params"] == {"x": 1} and "accounting" not in j


def test_the_simulators_summary_is_the_meter_over_its_own_record() -> None:
    """The record the simulator writes, fed back through RunMeter, gives its summary: one definition."""
    sc = load_scenario("simple")
    result = Simulation(sc, make_policy("paper"), MigrationMethod.PRECOPY).run()
    rec = result.record
    assert rec.vm_demand is not None and rec.vm_served is not None and rec.vm_host is not None
    meter = RunMeter(sc.hosts, len(sc.vms), result.summary["duration_s"])
    loads = sc.loads(result.seed)
    for k, t in enumerate(rec.t_s):
        load = loads.at(t) if t < sc.duration_s else np.zeros(len(sc.vms))
        meter.add(IntervalSample(float(t), sc.tick_s, rec.host_state[k], rec.host_watts[k], rec.host_demand[k],
                                 rec.vm_host[k], load, rec.vm_demand[k], rec.vm_served[k]))
    again = meter.finish(result.totals.identity, rec.migrations, rec.power_events, result.totals.work)
    assert again == result.totals
    assert result.summary == again.as_json({k: result.summary[k] for k in ("controller_deferred", "params")})
    assert result.summary["unserved_core_s"] > 0  # the simple scenario starves VM0 for a while
