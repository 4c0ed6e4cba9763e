"""Arrays of the CloudSim-compatible engine, and the host/VM bookkeeping every step shares.

Hosts keep their VM lists in CloudSim's order (it decides ties and summation order). Each host
update re-derives the allocation CloudSim's ``VmSchedulerTimeSharedOverSubscription`` gives (demand
capped at one core, 10 % at a migration target, 90 % at its source, proportional scaling with
``floor`` when over-subscribed) and records a state entry; SLA integrals are accumulated on the fly
from consecutive entries instead of storing CloudSim's histories.
"""

from __future__ import annotations

import numpy as np

from consolidator.policies.literature._compile import jit, jit_inline
from consolidator.policies.literature.arrays import (
    ACTIVE_S,
    B1,
    ENERGY_WS,
    F8,
    I8,
    LAST_T,
    MIGRATIONS,
    N_ACC,
    RAND_POS,
    REMOVED,
    SHUTDOWNS,
    TICK,
    VIOL_S,
    VM_ALLOC,
    VM_REQ,
    VM_UNDER_MIG,
    Hosts,
    Vms,
    list_append,
    list_remove,
    new_hosts,
    new_vms,
)
from consolidator.policies.literature.power import clamp_utilisation, interval_energy_ws

__all__ = [
    "ACTIVE_S", "ENERGY_WS", "LAST_T", "MIGRATIONS", "N_ACC", "RAND_POS", "REMOVED",
    "SHUTDOWNS", "TICK", "VIOL_S", "VM_ALLOC", "VM_REQ", "VM_UNDER_MIG", "Hosts", "Vms", "list_append",
    "list_remove", "new_hosts", "new_vms",
]

@jit_inline
def util_at(row: F8, t: float, interval: float) -> float:
    """UtilizationModelPlanetLabInMemory.getUtilization: the trace linearly interpolated at ``t``."""
    if np.fmod(t, interval) == 0.0:
        return float(row[int(t) // int(interval)])
    t1 = int(np.floor(t / interval))
    t2 = int(np.ceil(t / interval))
    delta = (row[t2] - row[t1]) / ((t2 - t1) * interval)
    return float(row[t1] + delta * (t - t1 * interval))


@jit_inline
def _host_entry(e_time: F8, e_alloc: F8, e_req: F8, e_active: B1, e_prev_active: B1, h: int, t: float,
                alloc: float, req: float, acc: F8) -> None:
    """HostDynamicWorkload.addStateHistoryEntry; integrates SLATAH and counts shutdowns on commit."""
    if e_time[h] != t and e_time[h] >= 0.0:
        if e_active[h]:
            dt = t - e_time[h]
            acc[ACTIVE_S] += dt
            if e_alloc[h] < e_req[h]:
                acc[VIOL_S] += dt
        if e_prev_active[h] and not e_active[h]:
            acc[SHUTDOWNS] += 1.0
        e_prev_active[h] = e_active[h]
    e_time[h] = t
    e_alloc[h] = alloc
    e_req[h] = req
    e_active[h] = alloc > 0.0


@jit_inline
def vm_entry(e_time: F8, e_alloc: F8, e_req: F8, e_mig: B1, v: int, t: float, alloc: float, req: float,
             mig: bool, acc: F8) -> None:
    """Vm.addStateHistoryEntry; integrates requested, allocated and migration-lost MIPS (PDM)."""
    if e_time[v] != t and e_time[v] >= 0.0:
        dt = t - e_time[v]
        acc[VM_ALLOC] += e_alloc[v] * dt
        acc[VM_REQ] += e_req[v] * dt
        if e_alloc[v] < e_req[v] and e_mig[v]:
            acc[VM_UNDER_MIG] += (e_req[v] - e_alloc[v]) * dt
    e_time[v] = t
    e_alloc[v] = alloc
    e_req[v] = req
    e_mig[v] = mig


@jit_inline
def _oversubscribed(n: I8, vms: np.ndarray, pe_mips: F8, total: F8, unow: F8, mips: F8, mig: B1, host: I8,
                    h: int) -> tuple[bool, float]:
    """Whether the scheduler runs out of MIPS, and the sum of effective requests (for its scaling)."""
    avail = total[h]
    over = False
    total_r = 0.0
    for i in range(n[h]):
        v = vms[h, i]
        c = min(unow[v] * mips[v], pe_mips[h])
        if mig[v] and host[v] != h:
            c *= 0.1
        total_r += c
        if not over:
            if avail >= c:
                avail -= c
            elif c > 0.0:
                over = True
    return over, total_r


@jit
def update_hosts(hs: Hosts, vs: Vms, ids: I8, t: float, dt: float, acc: F8) -> None:
    """HostDynamicWorkload.updateVmsProcessing at ``t`` for hosts ``ids`` (``vs.unow`` already at ``t``):
    allocations, utilisation, state entries, and the energy of the last ``dt`` seconds if ``dt > 0``.

    One call handles many hosts: a call that passes the state arrays costs more than a host's work.
    """
    n, vms, pe_mips, total, util = hs.n, hs.vms, hs.pe_mips, hs.total, hs.util
    unow, mips, mig, host = vs.unow, vs.mips, vs.mig, vs.host
    for h in ids:
        prev = clamp_utilisation(util[h] / total[h])
        over, total_r = _oversubscribed(n, vms, pe_mips, total, unow, mips, mig, host, h)
        scale = total[h] / total_r if over else 1.0
        used = 0.0
        req_total = 0.0
        for i in range(n[h]):
            v = vms[h, i]
            req = unow[v] * mips[v]
            c = min(req, pe_mips[h])
            incoming = mig[v] and host[v] != h
            if over:
                if incoming:
                    alloc = np.floor(c * 0.1 * scale)
                elif mig[v]:
                    alloc = np.floor(c * scale * 0.9)
                else:
                    alloc = np.floor(c * scale)
            else:
                alloc = c * 0.1 if incoming else (c * 0.9 if mig[v] else c)
            if not incoming:
                vm_entry(vs.e_time, vs.e_alloc, vs.e_req, vs.e_mig, v, t, alloc, req, mig[v], acc)
                if mig[v]:
                    alloc /= 0.9
            used += alloc
            req_total += req
        util[h] = used
        _host_entry(hs.e_time, hs.e_alloc, hs.e_req, hs.e_active, hs.e_prev_active, h, t, used, req_total, acc)
        if dt > 0.0:
            acc[ENERGY_WS] += interval_energy_ws(hs.table[h], prev, clamp_utilisation(used / total[h]), dt)


@jit
def update_all(hs: Hosts, vs: Vms, t: float, interval: float, tick: bool, acc: F8) -> None:
    """One datacenter update at ``t``: hosts, energy since the last update, VM history, finished VMs.

    A host that is empty and whose last entry is already inactive is skipped: its entry would
    change nothing (no SLA time, no shutdown, no energy from a 0 start).
    """
    dt = t - acc[LAST_T]
    for v in range(vs.mips.shape[0]):
        if vs.alive[v]:
            vs.unow[v] = util_at(vs.data[v], t, interval)
    n = hs.n
    ids = np.empty(n.shape[0], np.int64)
    k = 0
    for h in range(n.shape[0]):
        if n[h] == 0 and hs.util[h] == 0.0 and hs.e_time[h] >= 0.0 and not hs.e_active[h]:
            continue
        ids[k] = h
        k += 1
    update_hosts(hs, vs, ids[:k], t, dt, acc)
    if tick:
        _record_host_history(hs, ids[:k], int(acc[TICK]))
    _finish_vms(hs, vs, tick, acc)
    acc[LAST_T] = t


@jit
def _record_host_history(hs: Hosts, ids: I8, tick: int) -> None:
    """The utilisation of each host in use at a scheduled update (MHOD's input)."""
    if hs.uhist.shape[1] == 0:
        return
    for h in ids:
        if hs.util[h] > 0.0 and hs.ulen[h] < hs.uhist.shape[1]:
            hs.uhist[h, hs.ulen[h]] = min(1.0, hs.util[h] / hs.total[h])
            hs.ulen[h] += 1
            hs.utick[h] = tick


@jit
def _finish_vms(hs: Hosts, vs: Vms, tick: bool, acc: F8) -> None:
    """Record VM history at a scheduled update and remove VMs whose demand is exactly zero."""
    for h in range(hs.n.shape[0]):
        i = 0
        while i < hs.n[h]:
            v = hs.vms[h, i]
            u = vs.unow[v]
            if tick and vs.host[v] == h:
                push_history(vs.hist, vs.hlen, v, u)
            if not vs.mig[v] and u * vs.mips[v] == 0.0:
                list_remove(hs, h, v)
                vs.alive[v] = False
                vs.host[v] = -1
                acc[REMOVED] += 1.0
                continue
            i += 1


@jit_inline
def push_history(hist: F8, hlen: I8, v: int, u: float) -> None:
    """PowerVm.addUtilizationHistoryValue: newest first, at most 30 values."""
    for i in range(hist.shape[1] - 1, 0, -1):
        hist[v, i] = hist[v, i - 1]
    hist[v, 0] = u
    hlen[v] = min(hlen[v] + 1, hist.shape[1])


@jit
def commit_all(hs: Hosts, acc: F8) -> None:
    """End of run: the last state entry of each host still counts for shutdowns."""
    for h in range(hs.n.shape[0]):
        if hs.e_time[h] >= 0.0 and hs.e_prev_active[h] and not hs.e_active[h]:
            acc[SHUTDOWNS] += 1.0
