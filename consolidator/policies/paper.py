"""The paper's Warehouse/Server heuristic (Hirofuchi et al. 2011, Section III-C), every period.

Description: Distribution — a powered Warehouse node whose load reaches ``overload_threshold``
sends its most CPU-consuming VM to an empty Server node (an awake one if any, else a sleeping
one, which the controller wakes). While that VM is still running there (a precopy in progress) it
remains the most CPU-consuming VM, so nothing else leaves: one long precopy holds up the rest, as the
paper observed (IV-C). Consolidation — a VM on a Server node, not moved for ``hold_s``
since its last migration ended, whose averaged load is under ``return_threshold`` asks to return to
a Warehouse node with enough CPU and memory (the controller's admission ticket serialises arrivals,
first come first served). Every powered node left without VMs is suspended.

Requirements: 10 s load averages (the Load Monitor's window), Warehouse and Server roles.

Limitations: CPU only (like the paper). A host's load is estimated as the averaged loads of the VMs
placed on it (a VM counts at its destination as soon as its move is admitted) plus the virtualisation
overhead measured on the hosts, rather than the host's own 10 s average: the latter still contains a
VM for up to 10 s after it left, which would send a second VM away for nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from consolidator.domain.actions import Action, Migrate, Plan, Suspend
from consolidator.domain.snapshot import Snapshot
from consolidator.domain.types import HostSpec, PowerState, VmSpec

ON = PowerState.ON.code
FAILED = PowerState.FAILED.code
# Which empty Server node receives an active VM first: one that is up, then one that sleeps.
_WAKE_RANK = np.full(len(PowerState), 9, dtype=np.int64)
for _rank, _state in enumerate((PowerState.ON, PowerState.RESUMING, PowerState.SUSPENDED, PowerState.SUSPENDING)):
    _WAKE_RANK[_state.code] = _rank


@dataclass(frozen=True, slots=True)
class PaperPolicy:
    overload_threshold: float = 0.9  # cores; the Warehouse is overloaded at 90 % of one core
    return_threshold: float = 0.5  # a VM under 50 % load may return to a Warehouse node
    hold_s: float = 20.0  # a VM is not moved for 20 s after its migration ended
    name: str = "paper"

    def __post_init__(self) -> None:
        if self.overload_threshold <= 0 or self.return_threshold <= 0 or self.hold_s < 0:
            raise ValueError("thresholds must be positive and hold_s >= 0")

    def initial_placement(
        self, hosts: Sequence[HostSpec], vms: Sequence[VmSpec], requested: Mapping[str, str]
    ) -> dict[str, str]:
        return dict(requested)

    def estimated_load(self, s: Snapshot) -> tuple[np.ndarray, float]:
        """Per-host load estimate (cores) and the measured overhead per running VM."""
        counts = s.host_vm_count()
        on = s.host_state == ON
        running = max(1, int(counts[on].sum()))
        per_vm = float(s.host_overhead_now[on].sum()) / running
        return s.host_vm_load_avg() + per_vm * counts, per_vm

    def plan(self, s: Snapshot) -> Plan:
        est, per_vm = self.estimated_load(s)
        counts = s.host_vm_count()
        moves = self._distribute(s, est, counts) + self._consolidate(s, est, per_vm)
        targets = {m.dst for m in moves}
        empty = np.flatnonzero((s.host_state == ON) & (counts == 0))
        actions: list[Action] = [*moves]
        actions += [Suspend(s.host_names[h], "empty") for h in empty if s.host_names[h] not in targets]
        return Plan(tuple(actions), {"overloaded_warehouses": float(self._overloaded(s, est).size)})

    def _overloaded(self, s: Snapshot, est: np.ndarray) -> np.ndarray:
        return np.flatnonzero(s.host_is_warehouse & (s.host_state == ON) & (est >= self.overload_threshold))

    def _distribute(self, s: Snapshot, est: np.ndarray, counts: np.ndarray) -> list[Migrate]:
        out: list[Migrate] = []
        overloaded = self._overloaded(s, est)
        if overloaded.size == 0:
            return out
        free = np.flatnonzero(~s.host_is_warehouse & (counts == 0) & (s.host_state != FAILED))
        free = free[np.lexsort((free, _WAKE_RANK[s.host_state[free]]))]
        taken = np.zeros(free.size, dtype=bool)
        busiest = self._busiest_vm_per_host(s, overloaded)
        for w in overloaded:
            v = int(busiest[w])
            if v < 0 or s.vm_busy[v]:
                continue  # nothing there, or its busiest VM is already on its way out (a precopy running)
            ok = np.flatnonzero(~taken & (s.host_mem_mib[free] >= s.vm_mem_mib[v]))
            if ok.size == 0:
                continue
            taken[ok[0]] = True
            target = int(free[ok[0]])
            out.append(Migrate(s.vm_names[v], s.host_names[w], s.host_names[target], s.method,
                               f"warehouse load {est[w]:.2f} >= {self.overload_threshold}"))
        return out

    @staticmethod
    def _busiest_vm_per_host(s: Snapshot, hosts: np.ndarray) -> np.ndarray:
        """For each of ``hosts``, the VM running there with the highest averaged load (-1 if none)."""
        out = np.full(len(s.host_names), -1, dtype=np.int64)
        wanted = np.zeros(len(s.host_names) + 1, dtype=bool)
        wanted[hosts] = True
        running = np.flatnonzero(wanted[s.vm_runs_on])  # runs_on == -1 indexes the trailing False
        if running.size == 0:
            return out
        order = running[np.lexsort((-s.vm_load_avg[running], s.vm_runs_on[running]))]
        hosts = s.vm_runs_on[order]
        first = np.ones(order.size, dtype=bool)
        first[1:] = hosts[1:] != hosts[:-1]
        out[hosts[first]] = order[first]
        return out

    def _consolidate(self, s: Snapshot, est: np.ndarray, per_vm: float) -> list[Migrate]:
        out: list[Migrate] = []
        on_server = (s.vm_host >= 0) & ~s.host_is_warehouse[np.maximum(s.vm_host, 0)]
        ready = on_server & ~s.vm_busy & (s.t_s - s.vm_last_move_end_s >= self.hold_s)
        idle = np.flatnonzero(ready & (s.vm_load_avg < self.return_threshold))
        if idle.size == 0:
            return out
        warehouses = np.flatnonzero(s.host_is_warehouse & (s.host_state != FAILED))
        # A Warehouse node with a VM on its way in holds its admission ticket: ask the others. Each
        # node admits one VM at a time, so one request per node per round is all that can succeed.
        arriving = s.vm_busy & (s.vm_host >= 0) & (s.vm_runs_on != s.vm_host)
        open_ = ~np.isin(warehouses, s.vm_host[arriving])
        warehouses = warehouses[open_]
        warehouses = warehouses[np.argsort(s.host_state[warehouses] != ON, kind="stable")]
        mem_free = s.host_mem_mib - s.host_mem_used()
        # First come, first served: the VM that has been eligible longest asks first.
        room = self.overload_threshold - est[warehouses] - per_vm
        mem_room = mem_free[warehouses]
        free = np.ones(warehouses.size, dtype=bool)
        best = float(room.max(initial=-np.inf))  # no VM at or above this load fits anywhere still free
        for v in idle[np.argsort(s.vm_last_move_end_s[idle], kind="stable")]:
            if s.vm_load_avg[v] >= best:
                continue
            fits = free & (room > s.vm_load_avg[v]) & (mem_room >= s.vm_mem_mib[v])
            if not fits.any():
                continue
            i = int(np.argmax(fits))
            free[i] = False
            best = float(room[free].max(initial=-np.inf))
            w = int(warehouses[i])
            out.append(Migrate(s.vm_names[v], s.host_names[s.vm_host[v]], s.host_names[w], s.method,
                               f"load {s.vm_load_avg[v]:.2f} < {self.return_threshold}"))
        return out
