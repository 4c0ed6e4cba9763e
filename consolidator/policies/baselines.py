"""The two baselines of Table IV: ``none`` (no consolidation) and ``ideal`` (First-Fit every period)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from consolidator.domain.actions import Action, Migrate, Plan, Suspend
from consolidator.domain.snapshot import Snapshot
from consolidator.domain.types import HostSpec, MigrationMethod, PowerState, Role, VmSpec

ON = PowerState.ON.code


@dataclass(frozen=True, slots=True)
class NoConsolidation:
    """Description: one VM per Server node, never moved; hosts without VMs sleep from the start.

    Limitations: needs at least as many Server nodes as VMs (else the rest share round-robin).
    """

    name: str = "none"

    def initial_placement(
        self, hosts: Sequence[HostSpec], vms: Sequence[VmSpec], requested: Mapping[str, str]
    ) -> dict[str, str]:
        servers = [h.name for h in hosts if h.role is Role.SERVER] or [h.name for h in hosts]
        return {vm.name: servers[i % len(servers)] for i, vm in enumerate(vms)}

    def plan(self, snapshot: Snapshot) -> Plan:
        return Plan()


@dataclass(frozen=True, slots=True)
class IdealFirstFit:
    """Description: the paper's ``ideal`` — each period, First-Fit of every VM's current load onto the
    hosts in order (CPU ``capacity`` cores and memory), moved instantly; empty hosts sleep.

    Requirements: a cluster whose migrations and power transitions are instant (the simulator's
    ``instant`` profile), else it is only a (very busy) planner.
    Limitations: the paper does not say which capacity its First-Fit used; 1.0 makes an active VM
    exclusive to a host as the paper intends (DESIGN §2); the report shows the sensitivity.
    """

    capacity: float = 1.0
    name: str = "ideal"

    def initial_placement(
        self, hosts: Sequence[HostSpec], vms: Sequence[VmSpec], requested: Mapping[str, str]
    ) -> dict[str, str]:
        return dict(requested)

    def assign(self, s: Snapshot) -> np.ndarray:
        cpu = np.zeros(len(s.host_names))
        mem = np.zeros(len(s.host_names))
        usable = s.host_state != PowerState.FAILED.code
        out = np.full(len(s.vm_names), -1, dtype=np.int64)
        for v in range(len(s.vm_names)):
            load, need = s.vm_load_now[v], s.vm_mem_mib[v]
            fits = usable & (cpu + load <= self.capacity + 1e-9) & (mem + need <= s.host_mem_mib)
            h = int(np.argmax(fits)) if fits.any() else int(np.argmin(cpu))  # overflow: least loaded
            out[v] = h
            cpu[h] += load
            mem[h] += need
        return out

    def plan(self, s: Snapshot) -> Plan:
        target = self.assign(s)
        actions: list[Action] = [
            Migrate(s.vm_names[v], s.host_names[s.vm_host[v]], s.host_names[target[v]],
                    MigrationMethod.INSTANT, "first-fit")
            for v in np.flatnonzero((target != s.vm_host) & ~s.vm_busy & (s.vm_host >= 0))
        ]
        used = np.bincount(target, minlength=len(s.host_names))
        actions += [Suspend(s.host_names[h], "empty") for h in np.flatnonzero((used == 0) & (s.host_state == ON))]
        return Plan(tuple(actions), {"hosts_needed": float(np.count_nonzero(used))})
