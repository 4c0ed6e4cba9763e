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
from consolidator.sim.backlog import UNITS_PER_CORE_S, Accounting, Backlog, to_core_s, to_units
from consolidator.sim.cluster import SimCluster, TickResult
from consolidator.sim.scenario import Scenario
from consolidator.sim.workload import PoissonTasks

log = logging.getLogger(__name__)
# A VM at or above this load is "active" (the paper's return threshold, III-C): the paper's design
# gives an active VM a Server node of its own, so VM-seconds it spends on a Warehouse node are reported.
ACTIVE_LOAD = 0.5
ARRIVALS_STREAM = 1  # second word of the arrivals generator's seed (the loads use the seed alone)


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
    vm_backlog: np.ndarray | None = None  # core·s waiting at the end of each tick (work-conserving guests)


_TICK_ARRAYS = ("host_state", "host_demand", "host_served", "host_watts", "host_vms", "vm_host", "vm_demand",
                "vm_served", "vm_load_avg", "vm_migrating", "vm_backlog")


def _new_record(n: int, dt: float, n_h: int, n_v: int, vms: bool) -> RunRecord:
    def per_vm(dtype: type) -> np.ndarray | None:
        return np.zeros((n, n_v), dtype=dtype) if vms else None

    return RunRecord(
        t_s=np.arange(n) * dt,
        host_state=np.zeros((n, n_h), dtype=np.int8), host_demand=np.zeros((n, n_h)),
        host_served=np.zeros((n, n_h)), host_watts=np.zeros((n, n_h)), host_vms=np.zeros((n, n_h), dtype=np.int32),
        vm_host=per_vm(np.int32), vm_demand=per_vm(np.float64), vm_served=per_vm(np.float64),
        vm_load_avg=per_vm(np.float64), vm_migrating=per_vm(np.bool_), vm_backlog=per_vm(np.float64),
    )


def _truncate(rec: RunRecord, k: int) -> None:
    for name in _TICK_ARRAYS:
        if (a := getattr(rec, name)) is not None:
            setattr(rec, name, a[:k])
    rec.t_s = rec.t_s[:k]


@dataclass
class _Window:
    """Sums over the scenario's window [0, duration): the paper's Table IV measures."""

    demand_core_s: float = 0.0
    unserved_core_s: float = 0.0
    overload_s: float = 0.0
    active_on_warehouse_vm_s: float = 0.0
    backlog_end_units: int = 0

    def add(self, tick: TickResult, demand: np.ndarray, load: np.ndarray, dt: float, cores: np.ndarray,
            warehouse: np.ndarray) -> None:
        self.demand_core_s += float(demand.sum()) * dt
        self.unserved_core_s += float((demand - tick.vm_served).sum()) * dt
        self.overload_s += float(np.count_nonzero(tick.host_demand > cores + 1e-9)) * dt
        self.active_on_warehouse_vm_s += float(np.count_nonzero((load >= ACTIVE_LOAD) & warehouse[tick.vm_host])) * dt


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
        self.tasks = PoissonTasks(scenario.guests.task_mean_s)
        # Arrivals draw from their own stream: every policy sees the same work for a seed.
        self.arrivals_rng = np.random.default_rng([self.seed, ARRIVALS_STREAM])
        self.backlog = Backlog(self.cluster.vm_cap, scenario.tick_s, scenario.guests.accounting)

    def run(self) -> RunResult:
        """Arrivals until the scenario's duration, then ticks until every backlog is served (bounded)."""
        sc = self.scenario
        dt = sc.tick_s
        n = math.ceil(sc.duration_s / dt - 1e-9)
        limit = n + (math.ceil(sc.guests.drain_limit_s / dt - 1e-9)
                     if sc.guests.accounting is Accounting.WORK_CONSERVING else 0)
        # np.zeros leaves untouched rows unallocated: room for the longest drain costs nothing until used
        rec = _new_record(limit, dt, len(sc.hosts), len(sc.vms), self.record_vms)
        acc = _Window()
        warehouse = self.cluster.is_warehouse()
        self._deliver(rec)
        k = 0
        while k < n or (k < limit and not self.backlog.drained()):
            t = k * dt
            load = self.loads.at(t) if k < n else np.zeros(len(sc.vms))
            demand = self.backlog.demand(to_units(self.tasks.work_core_s(load, dt, self.arrivals_rng)))
            tick = self.cluster.step(t, dt, demand)
            self.backlog.serve(tick.vm_served)
            self._record(rec, k, tick)
            if rec.vm_backlog is not None:
                rec.vm_backlog[k] = self.backlog.backlog / (UNITS_PER_CORE_S)
            if k < n:
                acc.add(tick, demand, load, dt, self.cluster.cores, warehouse)
            if k == n - 1:
                acc.backlog_end_units = int(self.backlog.backlog.sum())
            self.loop.monitor.record_arrays(t + dt, tick.host_served, tick.vm_served, tick.vm_host,
                                            store=self.store_samples)
            self._deliver(rec)
            self.loop.tick(t + dt)
            self._deliver(rec)
            if rec.vm_load_avg is not None:
                rec.vm_load_avg[k] = self.loop.monitor.vm_avg()
            k += 1
        self.sink.flush()
        _truncate(rec, k)
        summary = self._summary(rec, dt, n, acc)
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

    def _summary(self, rec: RunRecord, dt: float, n: int, acc: _Window) -> dict[str, Any]:
        sc = self.scenario
        energy_by_host = rec.host_watts[:n].sum(axis=0) * dt
        done = [m for m in rec.migrations if m.outcome.value == "completed"]
        demand = acc.demand_core_s
        return {
            "scenario": sc.name,
            "policy": self.policy.name,
            "migration": self.method.value,
            "seed": self.seed,
            "duration_s": float(n * dt),
            "tick_s": dt,
            "energy_ws": float(energy_by_host.sum()),
            "energy_ws_by_host": {h.name: float(e) for h, e in zip(sc.hosts, energy_by_host, strict=True)},
            **self._work_summary(rec, dt, n, acc),
            "demand_core_s": demand,
            "unserved_core_s": acc.unserved_core_s,
            "unserved_cpu_pct": 100.0 * acc.unserved_core_s / demand if demand > 0 else 0.0,
            "overload_s": acc.overload_s,
            "active_on_warehouse_vm_s": acc.active_on_warehouse_vm_s,
            "migrations": len(done),
            "migrations_cancelled": sum(1 for m in rec.migrations if m.outcome.value == "cancelled"),
            "migration_s_total": float(sum(m.t_s - m.start_s for m in rec.migrations)),
            "suspends": sum(1 for e in rec.power_events if e.state is PowerState.SUSPENDED),
            "wakes": sum(1 for e in rec.power_events if e.state is PowerState.ON),
            "active_host_s": float(np.count_nonzero(rec.host_state[:n] != 2) * dt),
            "controller_deferred": self.loop.controller.rejected,
            "params": {"overhead_per_vm_cores": sc.overhead_per_vm_cores,
                       "max_moves_per_host": sc.max_moves_per_host, "instant": self.cluster.instant,
                       "guests": {"accounting": sc.guests.accounting.value, "task_mean_s": sc.guests.task_mean_s,
                                  "drain_limit_s": sc.guests.drain_limit_s},
                       "migration": {k: (v.value if isinstance(v, enum.Enum) else v)
                                     for k, v in dataclasses.asdict(sc.migration).items()}},
        }

    def _work_summary(self, rec: RunRecord, dt: float, n: int, acc: _Window) -> dict[str, Any]:
        """Work arrived and served, the backlog, energy and time to complete it, and the delay of work."""
        b = self.backlog
        delays = b.delays()
        drained = b.drained() or b.accounting is Accounting.LOST_CPU
        return {
            "accounting": b.accounting.value,
            "work_arrived_core_s": to_core_s(b.arrived),
            "work_served_core_s": to_core_s(b.served),
            "work_dropped_core_s": to_core_s(b.dropped + (b.backlog if b.accounting is Accounting.LOST_CPU else 0)),
            "backlog_end_core_s": acc.backlog_end_units / UNITS_PER_CORE_S,
            "energy_to_complete_ws": float(rec.host_watts.sum()) * dt,
            "complete_s": float(len(rec.t_s) * dt),
            "completed": drained,  # False: the drain hit guests.drain_limit_s with work still waiting
            "delay_mean_s": delays.mean_s,
            "delay_p95_s": delays.p95_s,
            "delay_max_s": delays.max_s,
        }
