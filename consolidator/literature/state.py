"""Arrays of the CloudSim-compatible engine, and the host/VM bookkeeping every step shares.

Hosts keep their VM lists in CloudSim's order (it decides ties and summation order). Each host
update re-derives the allocation CloudSim's ``VmSchedulerTimeSharedOverSubscription`` gives (demand
capped at one core, 10 % at a migration target, 90 % at its source, proportional scaling with
``floor`` when over-subscribed) and records a state entry; SLA integrals are accumulated on the fly
from consecutive entries instead of storing CloudSim's histories.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from consolidator.policies.literature._compile import jit
from consolidator.policies.literature.detectors import HISTORY_LENGTH
from consolidator.policies.literature.power import clamp_utilisation, interval_energy_ws

F8 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int64]
B1 = npt.NDArray[np.bool_]

# Slots of the accumulator array.
ENERGY_WS, VIOL_S, ACTIVE_S, VM_ALLOC, VM_REQ, VM_UNDER_MIG, SHUTDOWNS, MIGRATIONS, RAND_POS, LAST_T, \
    REMOVED, EXTRA_WS, CANCELLED, N_ACC = range(14)


class Hosts(NamedTuple):
    pe_mips: F8
    total: F8
    table: F8  # (H, 11) watts at 0..100 %
    vms: npt.NDArray[np.int32]  # (H, N) VM lists
    n: I8
    util: F8  # utilisation MIPS at the last update
    prev_frac: F8
    req_sum: F8  # planning aggregates (refreshed per host)
    alloc_sum: F8
    avail: F8
    hist: F8  # (H, 30)
    hlen: I8
    watts_before: F8
    e_time: F8  # last state entry
    e_alloc: F8
    e_req: F8
    e_active: B1
    e_prev_active: B1


class Vms(NamedTuple):
    mips: F8
    ram: F8
    data: F8  # (N, steps + 1) utilisation fractions
    host: I8  # source host while migrating; -1 once removed
    mig: B1
    alive: B1
    hist: F8  # (N, 30), most recent first
    hlen: I8
    demand: F8  # requested MIPS at the current step
    e_time: F8
    e_alloc: F8
    e_req: F8
    e_mig: B1


def new_hosts(pe_mips: F8, table: F8, n_vms: int) -> Hosts:
    h = pe_mips.shape[0]
    return Hosts(
        pe_mips, pe_mips * 2.0, table, np.full((h, max(n_vms, 1)), -1, np.int32), np.zeros(h, np.int64),
        np.zeros(h), np.zeros(h), np.zeros(h), np.zeros(h), np.zeros(h), np.zeros((h, HISTORY_LENGTH)),
        np.zeros(h, np.int64), np.zeros(h), np.full(h, -1.0), np.zeros(h), np.zeros(h),
        np.zeros(h, np.bool_), np.ones(h, np.bool_),
    )


def new_vms(mips: F8, ram: F8, data: F8) -> Vms:
    n = mips.shape[0]
    return Vms(
        mips, ram, data, np.full(n, -1, np.int64), np.zeros(n, np.bool_), np.zeros(n, np.bool_),
        np.zeros((n, HISTORY_LENGTH)), np.zeros(n, np.int64), np.zeros(n), np.full(n, -1.0), np.zeros(n),
        np.zeros(n), np.zeros(n, np.bool_),
    )


@jit
def util_at(row: F8, t: float, interval: float) -> float:
    """UtilizationModelPlanetLabInMemory.getUtilization: the trace linearly interpolated at ``t``."""
    if np.fmod(t, interval) == 0.0:
        return row[int(t) // int(interval)]
    t1 = int(np.floor(t / interval))
    t2 = int(np.ceil(t / interval))
    delta = (row[t2] - row[t1]) / ((t2 - t1) * interval)
    return row[t1] + delta * (t - t1 * interval)


@jit
def list_remove(hs: Hosts, h: int, v: int) -> None:
    n = hs.n[h]
    for i in range(n):
        if hs.vms[h, i] == v:
            for j in range(i, n - 1):
                hs.vms[h, j] = hs.vms[h, j + 1]
            hs.n[h] = n - 1
            return


@jit
def list_append(hs: Hosts, h: int, v: int) -> None:
    hs.vms[h, hs.n[h]] = v
    hs.n[h] += 1


@jit
def host_entry(hs: Hosts, h: int, t: float, alloc: float, req: float, acc: F8) -> None:
    """HostDynamicWorkload.addStateHistoryEntry; integrates SLATAH and counts shutdowns on commit."""
    if hs.e_time[h] != t:
        if hs.e_time[h] >= 0.0:
            if hs.e_active[h]:
                dt = t - hs.e_time[h]
                acc[ACTIVE_S] += dt
                if hs.e_alloc[h] < hs.e_req[h]:
                    acc[VIOL_S] += dt
            commit_shutdown(hs, h, acc)
    hs.e_time[h] = t
    hs.e_alloc[h] = alloc
    hs.e_req[h] = req
    hs.e_active[h] = alloc > 0.0


@jit
def commit_shutdown(hs: Hosts, h: int, acc: F8) -> None:
    """Helper.getTimesBeforeHostShutdown: an active entry followed by an inactive one is a shutdown."""
    if hs.e_prev_active[h] and not hs.e_active[h]:
        acc[SHUTDOWNS] += 1.0
    hs.e_prev_active[h] = hs.e_active[h]


@jit
def vm_entry(vs: Vms, v: int, t: float, alloc: float, req: float, mig: bool, acc: F8) -> None:
    """Vm.addStateHistoryEntry; integrates requested, allocated and migration-lost MIPS (PDM)."""
    if vs.e_time[v] != t and vs.e_time[v] >= 0.0:
        dt = t - vs.e_time[v]
        acc[VM_ALLOC] += vs.e_alloc[v] * dt
        acc[VM_REQ] += vs.e_req[v] * dt
        if vs.e_alloc[v] < vs.e_req[v] and vs.e_mig[v]:
            acc[VM_UNDER_MIG] += (vs.e_req[v] - vs.e_alloc[v]) * dt
    vs.e_time[v] = t
    vs.e_alloc[v] = alloc
    vs.e_req[v] = req
    vs.e_mig[v] = mig


@jit
def _oversubscribed(hs: Hosts, vs: Vms, h: int, t: float, interval: float) -> tuple[bool, float]:
    """Whether the scheduler runs out of MIPS, and the sum of effective requests (for its scaling)."""
    avail = hs.total[h]
    over = False
    total_r = 0.0
    for i in range(hs.n[h]):
        v = hs.vms[h, i]
        c = min(util_at(vs.data[v], t, interval) * vs.mips[v], hs.pe_mips[h])
        if vs.mig[v] and vs.host[v] != h:
            c *= 0.1
        total_r += c
        if not over:
            if avail >= c:
                avail -= c
            elif c > 0.0:
                over = True
    return over, total_r


@jit
def update_host(hs: Hosts, vs: Vms, h: int, t: float, interval: float, acc: F8) -> None:
    """HostDynamicWorkload.updateVmsProcessing at ``t``: allocations, utilisation, state entries."""
    over, total_r = _oversubscribed(hs, vs, h, t, interval)
    scale = hs.total[h] / total_r if over else 1.0
    util = 0.0
    req_total = 0.0
    for i in range(hs.n[h]):
        v = hs.vms[h, i]
        req = util_at(vs.data[v], t, interval) * vs.mips[v]
        c = min(req, hs.pe_mips[h])
        incoming = vs.mig[v] and vs.host[v] != h
        if over:
            if incoming:
                alloc = np.floor(c * 0.1 * scale)
            elif vs.mig[v]:
                alloc = np.floor(c * scale * 0.9)
            else:
                alloc = np.floor(c * scale)
        else:
            alloc = c * 0.1 if incoming else (c * 0.9 if vs.mig[v] else c)
        if not incoming:
            vm_entry(vs, v, t, alloc, req, vs.mig[v], acc)
            if vs.mig[v]:
                alloc /= 0.9
        util += alloc
        req_total += req
    hs.util[h] = util
    host_entry(hs, h, t, util, req_total, acc)


@jit
def update_all(hs: Hosts, vs: Vms, t: float, interval: float, tick: bool, acc: F8) -> None:
    """One datacenter update at ``t``: hosts, energy since the last update, VM history, finished VMs."""
    dt = t - acc[LAST_T]
    for h in range(hs.n.shape[0]):
        hs.prev_frac[h] = clamp_utilisation(hs.util[h] / hs.total[h])
        update_host(hs, vs, h, t, interval, acc)
    if dt > 0.0:
        for h in range(hs.n.shape[0]):
            now = clamp_utilisation(hs.util[h] / hs.total[h])
            acc[ENERGY_WS] += interval_energy_ws(hs.table[h], hs.prev_frac[h], now, dt)
    for h in range(hs.n.shape[0]):
        i = 0
        while i < hs.n[h]:
            v = hs.vms[h, i]
            u = util_at(vs.data[v], t, interval)
            if tick and vs.host[v] == h:
                push_history(vs, v, u)
            if not vs.mig[v] and u * vs.mips[v] == 0.0:
                list_remove(hs, h, v)
                vs.alive[v] = False
                vs.host[v] = -1
                acc[REMOVED] += 1.0
                continue
            i += 1
    acc[LAST_T] = t


@jit
def push_history(vs: Vms, v: int, u: float) -> None:
    """PowerVm.addUtilizationHistoryValue: newest first, at most 30 values."""
    for i in range(vs.hist.shape[1] - 1, 0, -1):
        vs.hist[v, i] = vs.hist[v, i - 1]
    vs.hist[v, 0] = u
    vs.hlen[v] = min(vs.hlen[v] + 1, vs.hist.shape[1])


@jit
def commit_all(hs: Hosts, acc: F8) -> None:
    """End of run: the last state entry of each host still counts for shutdowns."""
    for h in range(hs.n.shape[0]):
        if hs.e_time[h] >= 0.0:
            commit_shutdown(hs, h, acc)
