"""The simulator: one object owns a run (clock, random generator, cluster, control loop, records).

Each tick: the workload sets demand, the cluster advances its physics, the Load Monitor records the
period, events from the world reach the control loop, and ``loop.tick(now)`` plans and acts — the
same control code that drives real hosts through agents.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from consolidator.control.loop import ControlLoop, build_loop
from consolidator.control.ports import NullSink, SampleSink
from consolidator.domain.events import HostPowerChanged, MigrationFinished
from consolidator.domain.types import MigrationMethod, PowerState
from consolidator.models.summary import IntervalSample, RunIdentity, RunMeter, RunSummary, WorkTotals
from consolidator.policies.base import Policy
from consolidator.sim.backlog import UNITS_PER_CORE_S, Accounting, Backlog, to_core_s, to_units
from consolidator.sim.cluster import SimCluster, TickResult
from consolidator.sim.scenario import Scenario
from consolidator.sim.workload import PoissonTasks

log = logging.getLogger(__name__)
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
class RunResult:
    """One run (simulated or live): its scenario, per-tick record, typed summary, and the keys that
    summary.json adds to the summary's own (the run's params, the controller's deferred moves)."""

    scenario: Scenario
    record: RunRecord
    totals: RunSummary
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def policy(self) -> str:
        return self.totals.identity.policy

    @property
    def method(self) -> MigrationMethod:
        return self.totals.identity.migration

    @property
    def seed(self) -> int:
        return self.totals.identity.seed

    @functools.cached_property
    def summary(self) -> dict[str, Any]:
        """summary.json (docs/run-format.md)."""
        return self.totals.as_json(self.extra)


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
        meter = RunMeter(sc.hosts, len(sc.vms), n * dt)
        backlog_end_units = 0
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
            meter.add(IntervalSample(t, dt, tick.host_state, tick.host_watts, tick.host_demand, tick.vm_host,
                                     load, demand, tick.vm_served))
            if k == n - 1:
                backlog_end_units = int(self.backlog.backlog.sum())
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
        identity = RunIdentity(sc.name, self.policy.name, self.method, self.seed, dt)
        totals = meter.finish(identity, rec.migrations, rec.power_events, self._work(backlog_end_units))
        return RunResult(sc, rec, totals, {"controller_deferred": self.loop.controller.rejected,
                                           "params": self._params()})

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

    def _params(self) -> dict[str, Any]:
        sc = self.scenario
        return {"overhead_per_vm_cores": sc.overhead_per_vm_cores, "max_moves_per_host": sc.max_moves_per_host,
                "instant": self.cluster.instant,
                "guests": {"accounting": sc.guests.accounting.value, "task_mean_s": sc.guests.task_mean_s,
                           "drain_limit_s": sc.guests.drain_limit_s},
                "migration": {k: (v.value if isinstance(v, enum.Enum) else v)
                              for k, v in dataclasses.asdict(sc.migration).items()}}

    def _work(self, backlog_end_units: int) -> WorkTotals:
        """Work arrived and served, the backlog at the window's end, and the delay of work."""
        b = self.backlog
        delays = b.delays()
        lost = b.accounting is Accounting.LOST_CPU
        return WorkTotals(
            accounting=b.accounting, arrived_core_s=to_core_s(b.arrived), served_core_s=to_core_s(b.served),
            dropped_core_s=to_core_s(b.dropped + (b.backlog if lost else 0)),
            backlog_end_core_s=backlog_end_units / UNITS_PER_CORE_S,
            completed=b.drained() or lost, delay_mean_s=delays.mean_s, delay_p95_s=delays.p95_s,
            delay_max_s=delays.max_s)
