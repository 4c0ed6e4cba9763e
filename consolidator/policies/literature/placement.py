"""Placement at VM creation (CloudSim 3.0.3's ``PowerVmAllocationPolicyMigrationAbstract`` as VMs are
created): PABFD with each VM's full MIPS, RAM and bandwidth, or first fit. The CloudSim-compatible engine
starts every run with it; the simulator's PlanetLab scenarios place their VMs with it.
"""

from __future__ import annotations

import numpy as np

from consolidator.policies.literature._compile import jit
from consolidator.policies.literature.arrays import F8, Hosts, Vms, list_append
from consolidator.policies.literature.detectors import is_overloaded
from consolidator.policies.literature.power import spec_power


@jit
def initial_placement(hs: Hosts, vs: Vms, kind: int, param: float, ram_mb: F8, bw_kbit: F8,
                      vm_bw_kbit: float, first_fit: bool) -> None:
    """PABFD at VM creation: full MIPS/RAM/BW requested; already created VMs request nothing yet.

    ``first_fit``: PowerVmAllocationPolicySimple instead (the first suitable host), as in the DVFS
    and no-power-management runs.
    """
    n_hosts = hs.n.shape[0]
    avail = hs.total.copy()
    alloc = np.zeros(n_hosts)
    ram_free = ram_mb.copy()
    bw_free = bw_kbit.copy()
    empty = np.empty(0)
    for v in range(vs.mips.shape[0]):
        m = vs.mips[v]
        best = -1
        lowest = np.inf
        for h in range(n_hosts):
            if hs.pe_mips[h] < m or avail[h] < m or ram_free[h] < vs.ram[v] or bw_free[h] < vm_bw_kbit:
                continue
            if first_fit:
                best = h
                break
            diff = spec_power(hs.table[h], (alloc[h] + m) / hs.total[h]) - hs.table[h, 0]
            if diff < lowest:
                if alloc[h] != 0.0 and is_overloaded(kind, param, m / hs.total[h], empty, 1.0):
                    continue
                lowest = diff
                best = h
        if best < 0:
            continue
        avail[best] -= m
        alloc[best] += m
        ram_free[best] -= vs.ram[v]
        bw_free[best] -= vm_bw_kbit
        list_append(hs, best, v)
        vs.host[v] = best
        vs.alive[v] = True
