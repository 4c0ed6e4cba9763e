"""Simulated hosts and VMs: the simulator's implementation of ClusterPort, stepped in virtual time.

Commands (start_migration, suspend_host, ...) take effect at the current virtual time and queue
events; ``step`` advances the physics by one tick: migrations over shared links, CPU served and
unserved, power and energy, and power-state transitions that come due.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from consolidator.domain.events import Event, HostPowerChanged, MigrationFinished, MigrationStarted
from consolidator.domain.types import HostSpec, MigrationMethod, MigrationOutcome, PowerState, VmSpec
from consolidator.models.migration import MigrationParams, MigrationProcess, Phase
from consolidator.models.power import PowerTable

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SimMove:
    vm: int
    src: int
    dst: int
    method: MigrationMethod
    start_s: float
    process: MigrationProcess


@dataclass(frozen=True, slots=True)
class TickResult:
    """What one tick did, for the recorder (arrays indexed like the hosts / VMs)."""

    host_state: np.ndarray
    host_demand: np.ndarray
    host_served: np.ndarray
    host_watts: np.ndarray
    vm_host: np.ndarray
    vm_demand: np.ndarray
    vm_served: np.ndarray
    vm_migrating: np.ndarray


class SimCluster:
    def __init__(
        self,
        hosts: Sequence[HostSpec],
        vms: Sequence[VmSpec],
        placement: dict[str, str],
        initial_states: dict[str, PowerState],
        migration: MigrationParams,
        overhead_per_vm_cores: float = 0.0,
        shared_link_bytes_per_s: float | None = None,
        instant: bool = False,
        uncapped_power: bool = False,
    ) -> None:
        self.hosts = tuple(hosts)
        self.vms = tuple(vms)
        self.host_index = {h.name: i for i, h in enumerate(self.hosts)}
        self.vm_index = {v.name: i for i, v in enumerate(self.vms)}
        self.params = migration
        self.overhead = overhead_per_vm_cores
        self.shared_link = shared_link_bytes_per_s
        self.instant = instant
        self.uncapped_power = uncapped_power
        self.power = PowerTable.build([h.power for h in self.hosts], [h.cores for h in self.hosts])
        self.cores = np.array([h.cores for h in self.hosts])
        # The paper's ideal is an estimate with instant moves and power proportional to load: nothing caps it.
        self.serve_cap = np.full(len(self.hosts), np.inf) if instant else self.cores
        self.nic = np.array([h.nic_bytes_per_s for h in self.hosts])
        self.suspend_s = np.array([h.power.suspend_s for h in self.hosts])
        self.resume_s = np.array([h.power.resume_s for h in self.hosts])
        self.vcpus = np.array([v.vcpus for v in self.vms], dtype=np.float64)
        # A VM runs at most its vCPUs at their speed, and no vCPU faster than a core of its host (CloudSim
        # caps a 2500-MIPS VM on an 1860-MIPS core); with unit speeds both are the vCPU count.
        self.vm_cap = self.vcpus * np.array([v.vcpu_speed for v in self.vms], dtype=np.float64)
        self.core_speed = np.array([h.core_speed for h in self.hosts], dtype=np.float64)
        self._unit_speeds = bool(np.all(self.vm_cap == self.vcpus) and np.all(self.core_speed == 1.0))
        # dirty rate per unit of served load: the spec's rate is at 100 % of one vCPU
        self.dirty_full = np.array([v.dirty_bytes_per_s_at_full / v.vcpu_speed for v in self.vms])
        self.vm_at = np.array([self.host_index[placement[v.name]] for v in self.vms], dtype=np.int64)
        self.state = np.array([initial_states.get(h.name, PowerState.ON).code for h in self.hosts],
                              dtype=np.int8)
        self.due = np.full(len(self.hosts), np.inf)  # when the current transition completes
        self.moves: dict[int, SimMove] = {}
        self.events: list[Event] = []
        self.now = 0.0
        self.completed: list[MigrationFinished] = []

    # -- ClusterPort ------------------------------------------------------------------------------
    def start_migration(self, vm: str, src: str, dst: str, method: MigrationMethod) -> None:
        v, s, d = self.vm_index[vm], self.host_index[src], self.host_index[dst]
        if v in self.moves or self.vm_at[v] != s or self.state[d] != PowerState.ON.code:
            raise RuntimeError(f"invalid migration {vm} {src}->{dst} (controller bug)")
        self.events.append(MigrationStarted(self.now, vm, src, dst, method))
        if method is MigrationMethod.INSTANT:
            self.vm_at[v] = d
            self._finished(v, s, d, method, self.now, self.now, MigrationOutcome.COMPLETED)
            return
        spec = self.vms[v]
        proc = MigrationProcess(method, spec.mem_bytes, spec.wws_bytes, self.params)
        self.moves[v] = SimMove(v, s, d, method, self.now, proc)

    def cancel_migration(self, vm: str) -> None:
        v = self.vm_index[vm]
        move = self.moves.get(v)
        if move is None or move.process.phase is Phase.POSTCOPY:
            return  # a postcopy cannot be cancelled: the guest already runs at the destination
        del self.moves[v]
        self._finished(v, move.src, move.dst, move.method, move.start_s, self.now, MigrationOutcome.CANCELLED,
                       move.process)

    def suspend_host(self, host: str) -> None:
        self._transition(self.host_index[host], PowerState.SUSPENDING, PowerState.SUSPENDED, self.suspend_s)

    def wake_host(self, host: str) -> None:
        self._transition(self.host_index[host], PowerState.RESUMING, PowerState.ON, self.resume_s)

    def _transition(self, h: int, during: PowerState, after: PowerState, seconds: np.ndarray) -> None:
        if self.instant or seconds[h] == 0:
            self._set_state(h, after, self.now)
            return
        self._set_state(h, during, self.now)
        self.due[h] = self.now + seconds[h]

    def _set_state(self, h: int, state: PowerState, t: float) -> None:
        self.state[h] = state.code
        self.due[h] = np.inf
        self.events.append(HostPowerChanged(t, self.hosts[h].name, state))

    def _finished(self, v: int, s: int, d: int, method: MigrationMethod, start: float, end: float,
                  outcome: MigrationOutcome, proc: MigrationProcess | None = None) -> None:
        event = MigrationFinished(
            end, self.vms[v].name, self.hosts[s].name, self.hosts[d].name, method, outcome, start,
            bytes_sent=proc.bytes_sent if proc else 0.0, downtime_s=proc.downtime_s if proc else 0.0,
            rounds=proc.rounds if proc else 0,
        )
        self.events.append(event)
        self.completed.append(event)

    def drain(self) -> list[Event]:
        out, self.events = self.events, []
        return out

    # -- physics ----------------------------------------------------------------------------------
    def step(self, t: float, dt: float, demand: np.ndarray) -> TickResult:
        """Advance [t, t + dt): migrations, CPU, power; transitions due by t + dt fire at their time."""
        self.now = t
        demand = np.minimum(demand, self.vm_cap)
        run_host = self.vm_at.copy()
        share = np.ones(len(self.vms))
        migrating = np.zeros(len(self.vms), dtype=bool)
        extra_watts = np.zeros(len(self.hosts))
        if self.moves:
            self._advance_moves(t, dt, demand, run_host, share, migrating, extra_watts)
        counts = np.bincount(run_host, minlength=len(self.hosts))
        served_vm, host_demand, host_served = self._serve(demand * share, run_host, counts)
        watts = self.power.watts(self.state, host_served, self.uncapped_power) + extra_watts
        self._fire_transitions(t + dt)
        self.now = t + dt
        return TickResult(self.state.copy(), host_demand, host_served, watts, run_host, demand, served_vm,
                          migrating)

    def _serve(self, want: np.ndarray, run_host: np.ndarray, counts: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CPU served to each VM and host: a host over its capacity shares it in proportion to demand."""
        if not self._unit_speeds:
            want = np.minimum(want, self.vcpus * self.core_speed[run_host])
        host_demand = np.bincount(run_host, weights=want, minlength=len(self.hosts)) + self.overhead * counts
        host_served = np.minimum(host_demand, self.serve_cap)
        host_served[self.state != PowerState.ON.code] = 0.0
        over = np.divide(host_served, host_demand, out=np.ones_like(host_demand), where=host_demand > 0)
        return want * over[run_host], host_demand, host_served

    def _advance_moves(self, t: float, dt: float, demand: np.ndarray, run_host: np.ndarray,
                       share: np.ndarray, migrating: np.ndarray, extra_watts: np.ndarray) -> None:
        moves = list(self.moves.values())
        for m in moves:
            if m.process.runs_at_destination:
                run_host[m.vm] = m.dst
        # A guest dirties memory only while it runs: at the CPU its host serves it, not the CPU it wants.
        served, _, _ = self._serve(demand, run_host, np.bincount(run_host, minlength=len(self.hosts)))
        out_deg = np.bincount([m.src for m in moves], minlength=len(self.hosts))
        in_deg = np.bincount([m.dst for m in moves], minlength=len(self.hosts))
        link = self.shared_link / len(moves) if self.shared_link else np.inf
        power = self.power
        for m in moves:
            proc = m.process
            migrating[m.vm] = True
            extra_watts[m.src] += power.migration[m.src]
            extra_watts[m.dst] += power.migration[m.dst]
            if proc.phase in (Phase.SETUP, Phase.PRECOPY):
                extra_watts[m.src] += power.dirty_tracking[m.src]
            rate = min(self.nic[m.src] / out_deg[m.src], self.nic[m.dst] / in_deg[m.dst], link)
            share[m.vm] = proc.advance(dt, rate, served[m.vm] * self.dirty_full[m.vm])
            if proc.done:
                del self.moves[m.vm]
                if proc.outcome is MigrationOutcome.COMPLETED:
                    self.vm_at[m.vm] = m.dst
                assert proc.outcome is not None
                self._finished(m.vm, m.src, m.dst, m.method, m.start_s, float(t + proc.end_offset_s), proc.outcome,
                               proc)

    def _fire_transitions(self, until: float) -> None:
        for h in np.flatnonzero(self.due <= until + 1e-9):
            sleeping = PowerState.from_code(self.state[h]) is PowerState.SUSPENDING
            self._set_state(int(h), PowerState.SUSPENDED if sleeping else PowerState.ON, float(self.due[h]))
