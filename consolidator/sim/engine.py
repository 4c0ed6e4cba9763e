"""The simulator: one object owns a run (clock, random generator, cluster, control loop, records).

Each tick: the workload sets demand, the cluster advances its physics, the Load Monitor records the
period, events from the world reach the control loop, and ``loop.tick(now)`` plans and acts — the
same control code that drives real hosts through agents.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from consolidator.control.loop import ControlLoop, build_loop
from consolidator.control.ports import NullSink, SampleSink
from consolidator.domain.events import HostPowerChanged, MigrationFinished
from consolidator.domain.types import MigrationMethod, PowerState
from consolidator.policies.base import Policy
from consolidator.sim.cluster import SimCluster, TickResult
from consolidator.sim.scenario import Scenario

log = logging.getLogger(__name__)
# A VM at or above this load is "active" (the paper's return threshold, III-C): the paper's design
# gives an active VM a Server node of its own, so VM-seconds it spends on a Warehouse node are reported.
ACTIVE_LOAD = 0.5


@dataclass
class RunRecord:
    """Per-tick arrays (hosts × ticks, VMs × ticks) plus the event logs; written out by sim.output."""

    t_s: np.ndarray
    host_state: np.ndarray
    host_demand: np.ndarray
    host_served: np.ndarray
    host_watts: np.ndarray
    host_vms: np.ndarray
    vm_host: np.ndarray | None
    vm_demand: np.ndarray | None
    vm_served: np.ndarray | None
    vm_load_avg: np.ndarray | None
    vm_migrating: np.ndarray | None
    migrations: list[MigrationFinished] = field(default_factory=list)
    power_events: list[HostPowerChanged] = field(default_factory=list)


@dataclass
class RunResult:
    scenario: Scenario
    policy: str
    method: MigrationMethod
    seed: int
    summary: dict[str, Any]
    record: RunRecord


class Simulation:
    def __init__(
        self,
        scenario: Scenario,
        policy: Policy,
        method: MigrationMethod,
        seed: int | None = None,
        sink: SampleSink | None = None,
        record_vms: bool = True,
        instant: bool = False,
        store_samples: bool = True,
    ) -> None:
        """``instant``: the paper's ideal — moves and power transitions take no time, power is uncapped."""
        self.scenario = scenario
        self.policy = policy
        self.method = method
        self.seed = scenario.seed if seed is None else seed
        self.sink = sink if sink is not None else NullSink()
        self.store_samples = store_samples and not isinstance(self.sink, NullSink)
        self.record_vms = record_vms
        placement = policy.initial_placement(scenario.hosts, scenario.vms, scenario.placement)
        used = set(placement.values())
        states = {h.name: PowerState.ON if h.name in used else PowerState.SUSPENDED for h in scenario.hosts}
        self.cluster = SimCluster(scenario.hosts, scenario.vms, placement, states, scenario.migration,
                                  scenario.overhead_per_vm_cores, scenario.shared_link_bytes_per_s, instant,
                                  uncapped_power=instant)
        self.loop: ControlLoop = build_loop(scenario.hosts, scenario.vms, placement, policy, self.cluster,
                                            self.sink, method, states,
                                            max_moves_per_host=scenario.max_moves_per_host)
        self.loads = scenario.loads(self.seed)

    def run(self) -> RunResult:
        sc = self.scenario
        dt = sc.tick_s
        n = math.ceil(sc.duration_s / dt - 1e-9)
        n_h, n_v = len(sc.hosts), len(sc.vms)
        rec = RunRecord(
            t_s=np.arange(n) * dt,
            host_state=np.zeros((n, n_h), dtype=np.int8), host_demand=np.zeros((n, n_h)),
            host_served=np.zeros((n, n_h)), host_watts=np.zeros((n, n_h)),
            host_vms=np.zeros((n, n_h), dtype=np.int32),
            vm_host=np.zeros((n, n_v), dtype=np.int32) if self.record_vms else None,
            vm_demand=np.zeros((n, n_v)) if self.record_vms else None,
            vm_served=np.zeros((n, n_v)) if self.record_vms else None,
            vm_load_avg=np.zeros((n, n_v)) if self.record_vms else None,
            vm_migrating=np.zeros((n, n_v), dtype=bool) if self.record_vms else None,
        )
        demand_total = unserved_total = overload_s = active_on_wh = 0.0
        warehouse = self.cluster.is_warehouse()
        self._deliver(rec)
        for k in range(n):
            t = k * dt
            demand = self.loads.at(t)
            tick = self.cluster.step(t, dt, demand)
            self._record(rec, k, tick)
            vm_demand = np.minimum(demand, self.cluster.vcpus)
            demand_total += float(vm_demand.sum()) * dt
            unserved_total += float((vm_demand - tick.vm_served).sum()) * dt
            overload_s += float(np.count_nonzero(tick.host_demand > self.cluster.cores + 1e-9)) * dt
            active_on_wh += float(np.count_nonzero((vm_demand >= ACTIVE_LOAD) & warehouse[tick.vm_host])) * dt
            self.loop.monitor.record_arrays(t + dt, tick.host_served, tick.vm_served, tick.vm_host,
                                            store=self.store_samples)
            self._deliver(rec)
            self.loop.tick(t + dt)
            self._deliver(rec)
            if rec.vm_load_avg is not None:
                rec.vm_load_avg[k] = self.loop.monitor.vm_avg()
        self.sink.flush()
        summary = self._summary(rec, dt, demand_total, unserved_total, overload_s)
        summary["active_on_warehouse_vm_s"] = active_on_wh
        return RunResult(sc, self.policy.name, self.method, self.seed, summary, rec)

    def _deliver(self, rec: RunRecord) -> None:
        """Hand every queued world event to the control loop, including those its reactions cause."""
        while events := self.cluster.drain():
            for event in events:
                if isinstance(event, MigrationFinished):
                    rec.migrations.append(event)
                elif isinstance(event, HostPowerChanged):
                    rec.power_events.append(event)
                self.loop.on_event(event)

    def _record(self, rec: RunRecord, k: int, tick: TickResult) -> None:
        rec.host_state[k] = tick.host_state
        rec.host_demand[k] = tick.host_demand
        rec.host_served[k] = tick.host_served
        rec.host_watts[k] = tick.host_watts
        rec.host_vms[k] = np.bincount(tick.vm_host, minlength=len(self.scenario.hosts))
        if rec.vm_host is not None:
            rec.vm_host[k] = tick.vm_host
            rec.vm_demand[k] = tick.vm_demand  # type: ignore[index]
            rec.vm_served[k] = tick.vm_served  # type: ignore[index]
            rec.vm_migrating[k] = tick.vm_migrating  # type: ignore[index]

    def _summary(self, rec: RunRecord, dt: float, demand: float, unserved: float, overload_s: float
                 ) -> dict[str, Any]:
        sc = self.scenario
        energy_by_host = rec.host_watts.sum(axis=0) * dt
        done = [m for m in rec.migrations if m.outcome.value == "completed"]
        return {
            "scenario": sc.name,
            "policy": self.policy.name,
            "migration": self.method.value,
            "seed": self.seed,
            "duration_s": float(len(rec.t_s) * dt),
            "tick_s": dt,
            "energy_ws": float(energy_by_host.sum()),
            "energy_ws_by_host": {h.name: float(e) for h, e in zip(sc.hosts, energy_by_host, strict=True)},
            "demand_core_s": demand,
            "unserved_core_s": unserved,
            "unserved_cpu_pct": 100.0 * unserved / demand if demand > 0 else 0.0,
            "overload_s": overload_s,
            "migrations": len(done),
            "migrations_cancelled": sum(1 for m in rec.migrations if m.outcome.value == "cancelled"),
            "migration_s_total": float(sum(m.t_s - m.start_s for m in rec.migrations)),
            "suspends": sum(1 for e in rec.power_events if e.state is PowerState.SUSPENDED),
            "wakes": sum(1 for e in rec.power_events if e.state is PowerState.ON),
            "active_host_s": float(np.count_nonzero(rec.host_state != 2) * dt),
            "controller_deferred": self.loop.controller.rejected,
            "params": {"overhead_per_vm_cores": sc.overhead_per_vm_cores,
                       "max_moves_per_host": sc.max_moves_per_host, "instant": self.cluster.instant,
                       "migration": {k: (v.value if isinstance(v, enum.Enum) else v)
                                     for k, v in dataclasses.asdict(sc.migration).items()}},
        }

