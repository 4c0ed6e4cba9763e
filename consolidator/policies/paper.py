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
from consolidator.models.power import STATE_CODES

ON = STATE_CODES[PowerState.ON]
FAILED = STATE_CODES[PowerState.FAILED]
# Which empty Server node receives an active VM first: one that is up, then one that sleeps.
_WAKE_ORDER = {ON: 0, STATE_CODES[PowerState.RESUMING]: 1, STATE_CODES[PowerState.SUSPENDED]: 2,
               STATE_CODES[PowerState.SUSPENDING]: 3}


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
        free = [h for h in np.flatnonzero(~s.host_is_warehouse & (counts == 0) & (s.host_state != FAILED))]
        free.sort(key=lambda h: (_WAKE_ORDER.get(int(s.host_state[h]), 9), h))
        for w in overloaded:
            here = np.flatnonzero(s.vm_runs_on == w)
            if here.size == 0:
                continue
            v = int(here[np.argmax(s.vm_load_avg[here])])
            if s.vm_busy[v]:
                continue  # its most CPU-consuming VM is already on its way out (a precopy still running)
            target = next((h for h in free if s.host_mem_mib[h] >= s.vm_mem_mib[v]), None)
            if target is None:
                continue
            free.remove(target)
            out.append(Migrate(s.vm_names[v], s.host_names[w], s.host_names[target], s.method,
                               f"warehouse load {est[w]:.2f} >= {self.overload_threshold}"))
        return out

    def _consolidate(self, s: Snapshot, est: np.ndarray, per_vm: float) -> list[Migrate]:
        out: list[Migrate] = []
        on_server = (s.vm_host >= 0) & ~s.host_is_warehouse[np.maximum(s.vm_host, 0)]
        ready = on_server & ~s.vm_busy & (s.t_s - s.vm_last_move_end_s >= self.hold_s)
        idle = np.flatnonzero(ready & (s.vm_load_avg < self.return_threshold))
        if idle.size == 0:
            return out
        warehouses = np.flatnonzero(s.host_is_warehouse & (s.host_state != FAILED))
        warehouses = warehouses[np.argsort(s.host_state[warehouses] != ON, kind="stable")]
        mem_free = s.host_mem_mib - s.host_mem_used()
        # First come, first served: the VM that has been eligible longest asks first.
        for v in idle[np.argsort(s.vm_last_move_end_s[idle], kind="stable")]:
            need = s.vm_load_avg[v] + per_vm
            fits = (est[warehouses] + need < self.overload_threshold) & (mem_free[warehouses] >= s.vm_mem_mib[v])
            if not fits.any():
                continue
            w = int(warehouses[np.argmax(fits)])
            out.append(Migrate(s.vm_names[v], s.host_names[s.vm_host[v]], s.host_names[w], s.method,
                               f"load {s.vm_load_avg[v]:.2f} < {self.return_threshold}"))
        return out
