"""One run summary for the simulator and the live lab: the same measures from the same samples.

Both worlds hand ``RunMeter`` one sample per interval — each host's power state, watts and CPU demand,
each VM's host, workload load, demand and served CPU — and the run's migrations and power events at
the end; ``RunMeter.finish`` gives the typed ``RunSummary`` whose ``as_json`` is ``summary.json``.

Definitions (docs/models.md; DESIGN §2):

- energy: Σ watts · interval over the window [0, duration) (the paper's fixed window); energy to
  complete: over every interval recorded (the simulator runs on until the backlogs drain).
- demand of a VM in an interval: the CPU it wanted to run (new work plus work waiting, at most its
  vCPUs); unserved CPU: per VM, Σ (demand − served) · interval over the window, clipped at zero, summed
  over VMs. The simulator's served CPU never exceeds its demand, so this is its per-interval sum; a
  measured served CPU scatters around the demand from one interval to the next (Poisson tasks, sampling),
  so only a VM's run total says what went unserved.
- overload: host-seconds with CPU demand above the host's capacity; active host: not suspended;
  active VM on a Warehouse node: VM-seconds with workload load ≥ ``ACTIVE_LOAD`` on a Warehouse node.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from consolidator.domain.events import HostPowerChanged, MigrationFinished
from consolidator.domain.types import HostSpec, MigrationMethod, MigrationOutcome, PowerState, Role

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.integer[Any]]

# A VM at or above this load is "active" (the paper's return threshold, III-C): the paper's design
# gives an active VM a Server node of its own, so VM-seconds it spends on a Warehouse node are reported.
ACTIVE_LOAD = 0.5


@dataclass(frozen=True, slots=True)
class RunIdentity:
    scenario: str
    policy: str
    migration: MigrationMethod
    seed: int
    tick_s: float


@dataclass(frozen=True, slots=True)
class WorkTotals:
    """Work-conserving guests (the simulator's backlog): work arrived, served, dropped, waiting, delays."""

    accounting: enum.Enum
    arrived_core_s: float
    served_core_s: float
    dropped_core_s: float
    backlog_end_core_s: float  # waiting at the end of the window
    completed: bool  # False: the drain hit its limit with work still waiting
    delay_mean_s: float
    delay_p95_s: float
    delay_max_s: float


@dataclass(frozen=True, slots=True)
class RunSummary:
    """The measures of one run (simulated or live); ``as_json`` keeps summary.json's keys and order."""

    identity: RunIdentity
    duration_s: float
    energy_ws_by_host: tuple[tuple[str, float], ...]
    energy_to_complete_ws: float
    complete_s: float
    demand_core_s: float
    unserved_core_s: float
    overload_s: float
    active_on_warehouse_vm_s: float
    active_host_s: float
    migrations: int
    migrations_cancelled: int
    migration_s_total: float
    suspends: int
    wakes: int
    work: WorkTotals | None = None

    @property
    def energy_ws(self) -> float:
        return float(sum(e for _, e in self.energy_ws_by_host))

    @property
    def unserved_cpu_pct(self) -> float:
        return 100.0 * self.unserved_core_s / self.demand_core_s if self.demand_core_s > 0 else 0.0

    def as_json(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """summary.json: identity, energy, work (when the run had a backlog), CPU, moves; then ``extra``."""
        i = self.identity
        out: dict[str, Any] = {
            "scenario": i.scenario, "policy": i.policy, "migration": i.migration.value, "seed": i.seed,
            "duration_s": self.duration_s, "tick_s": i.tick_s, "energy_ws": self.energy_ws,
            "energy_ws_by_host": dict(self.energy_ws_by_host),
        }
        w = self.work
        if w is not None:
            out |= {"accounting": w.accounting.value, "work_arrived_core_s": w.arrived_core_s,
                    "work_served_core_s": w.served_core_s, "work_dropped_core_s": w.dropped_core_s,
                    "backlog_end_core_s": w.backlog_end_core_s}
        out |= {"energy_to_complete_ws": self.energy_to_complete_ws, "complete_s": self.complete_s}
        if w is not None:
            out |= {"completed": w.completed, "delay_mean_s": w.delay_mean_s, "delay_p95_s": w.delay_p95_s,
                    "delay_max_s": w.delay_max_s}
        out |= {
            "demand_core_s": self.demand_core_s, "unserved_core_s": self.unserved_core_s,
            "unserved_cpu_pct": self.unserved_cpu_pct, "overload_s": self.overload_s,
            "active_on_warehouse_vm_s": self.active_on_warehouse_vm_s, "migrations": self.migrations,
            "migrations_cancelled": self.migrations_cancelled, "migration_s_total": self.migration_s_total,
            "suspends": self.suspends, "wakes": self.wakes, "active_host_s": self.active_host_s,
        }
        return out | (extra or {})


@dataclass(frozen=True, slots=True)
class IntervalSample:
    """One interval [t_s, t_s + dt_s) of a run: hosts (state codes of models.power, watts, CPU demand)
    and VMs (host index, workload load, demand and served CPU), in the load unit of the hosts' cores."""

    t_s: float
    dt_s: float
    host_state: IntArray
    host_watts: FloatArray
    host_demand: FloatArray
    vm_host: IntArray
    vm_load: FloatArray
    vm_demand: FloatArray
    vm_served: FloatArray


class RunMeter:
    """Accumulates interval samples of one run (constant memory: a run may have 10^6 VMs)."""

    def __init__(self, hosts: Sequence[HostSpec], n_vms: int, window_end_s: float) -> None:
        self.names = [h.name for h in hosts]
        self.cores = np.array([h.cores for h in hosts], dtype=np.float64)
        self.warehouse = np.array([h.role is Role.WAREHOUSE for h in hosts], dtype=np.bool_)
        self.window_end_s = window_end_s
        self.energy_by_host = np.zeros(len(hosts))
        self.energy_all_ws = 0.0
        self.end_s = 0.0
        self.short_by_vm = np.zeros(n_vms)  # Σ (demand − served) · dt in the window, per VM
        self.demand_core_s = 0.0
        self.overload_s = 0.0
        self.active_host_s = 0.0
        self.active_on_warehouse_vm_s = 0.0

    def add(self, s: IntervalSample) -> None:
        self.energy_all_ws += float(s.host_watts.sum()) * s.dt_s
        self.end_s = s.t_s + s.dt_s
        if s.t_s >= self.window_end_s:
            return
        self.energy_by_host += s.host_watts * s.dt_s
        self.demand_core_s += float(s.vm_demand.sum()) * s.dt_s
        self.short_by_vm += (s.vm_demand - s.vm_served) * s.dt_s
        self.overload_s += float(np.count_nonzero(s.host_demand > self.cores + 1e-9)) * s.dt_s
        self.active_host_s += float(np.count_nonzero(s.host_state != PowerState.SUSPENDED.code)) * s.dt_s
        busy_on_warehouse = (s.vm_load >= ACTIVE_LOAD) & self.warehouse[s.vm_host]
        self.active_on_warehouse_vm_s += float(np.count_nonzero(busy_on_warehouse)) * s.dt_s

    def finish(self, identity: RunIdentity, migrations: Sequence[MigrationFinished],
               power_events: Sequence[HostPowerChanged], work: WorkTotals | None = None) -> RunSummary:
        return RunSummary(
            identity=identity, duration_s=self.window_end_s,
            energy_ws_by_host=tuple((n, float(e)) for n, e in zip(self.names, self.energy_by_host, strict=True)),
            energy_to_complete_ws=self.energy_all_ws, complete_s=self.end_s,
            demand_core_s=self.demand_core_s, unserved_core_s=float(np.maximum(self.short_by_vm, 0.0).sum()),
            overload_s=self.overload_s, active_on_warehouse_vm_s=self.active_on_warehouse_vm_s,
            active_host_s=self.active_host_s,
            migrations=sum(1 for m in migrations if m.outcome is MigrationOutcome.COMPLETED),
            migrations_cancelled=sum(1 for m in migrations if m.outcome is MigrationOutcome.CANCELLED),
            migration_s_total=float(sum(m.t_s - m.start_s for m in migrations)),
            suspends=sum(1 for e in power_events if e.state is PowerState.SUSPENDED),
            wakes=sum(1 for e in power_events if e.state is PowerState.ON),
            work=work,
        )
