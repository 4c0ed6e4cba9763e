"""PABFD (power-aware best-fit decreasing) during a round: place VMs where power rises least.

The candidate hosts are those in use or touched this round, plus, where unused hosts may be chosen,
the lowest-id unused host of each kind (unused hosts of one kind all score the same). Among the
suitable ones (not excluded, core fast enough, room, not overloaded with the VM) the host whose power
rises least wins, ties to the lowest id. Two forms give that same choice: ``index`` (the candidates in
a ``HostIndex``, a few looked at per VM) and the exhaustive scan in id order, CloudSim's loop, kept
as the reference the index is checked against (``Scan.sizes[EXHAUSTIVE]``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from consolidator.policies.literature._compile import jit, jit_inline
from consolidator.policies.literature.arrays import F8, I8, Hosts, Vms, list_append, list_remove
from consolidator.policies.literature.hostload import overloaded_with, refresh
from consolidator.policies.literature.index import (
    HostIndex,
    index_insert,
    index_remove,
    index_update,
    new_index,
    search_next,
    search_start,
)
from consolidator.policies.literature.power import power_increase

TICK_SLOT, EXHAUSTIVE = range(2)  # slots of ``Scan.sizes``


class Scan(NamedTuple):
    """The round's candidate hosts: in use (``in_cand``, indexed when not excluded) and, per host
    kind, the unused ones in id order (``off``; the first not yet in use stands for its kind)."""

    in_cand: np.ndarray
    off: I8  # (kinds, hosts)
    off_count: I8
    off_ptr: I8
    sizes: I8  # [update index (MHOD's "now"), 1 = exhaustive scan instead of the index]
    ix: HostIndex


@jit
def new_scan(hs: Hosts, kind_of: I8, n_kinds: int, tick: int, blocked: np.ndarray, excluded: np.ndarray,
             exhaustive: bool) -> Scan:
    """``blocked`` hosts are never offered as the unused host of their kind; ``excluded`` ones are
    candidates the index leaves out (they cannot be chosen)."""
    n_hosts = hs.n.shape[0]
    in_cand = np.zeros(n_hosts, np.bool_)
    off = np.empty((n_kinds, n_hosts), np.int64)
    off_count = np.zeros(n_kinds, np.int64)
    ix = new_index(hs)
    for h in range(n_hosts):
        if hs.util[h] > 0.0 or hs.n[h] > 0:
            in_cand[h] = True
            if not excluded[h]:
                index_insert(ix, hs, h)
        elif not blocked[h]:
            k = kind_of[h]
            off[k, off_count[k]] = h
            off_count[k] += 1
    sizes = np.array([tick, 1 if exhaustive else 0], np.int64)
    return Scan(in_cand, off, off_count, np.zeros(n_kinds, np.int64), sizes, ix)


@jit
def scan_exclude(scan: Scan, excluded: np.ndarray) -> None:
    """From now on the index leaves out the hosts in ``excluded`` (the underload step's exclusions)."""
    for h in range(excluded.shape[0]):
        if excluded[h]:
            index_remove(scan.ix, h)


@jit
def _scan_add(scan: Scan, hs: Hosts, h: int) -> None:
    """A host just got a VM: a candidate from now on (an unused host joins the index)."""
    if not scan.in_cand[h]:
        scan.in_cand[h] = True
        index_insert(scan.ix, hs, h)
    else:
        index_update(scan.ix, hs, h)


@jit
def _unused(scan: Scan) -> I8:
    """The first unused host of each kind (ids in kind order; fewer when a kind is used up)."""
    n_kinds = scan.off_count.shape[0]
    ids = np.empty(n_kinds, np.int64)
    m = 0
    for k in range(n_kinds):
        while scan.off_ptr[k] < scan.off_count[k] and scan.in_cand[scan.off[k, scan.off_ptr[k]]]:
            scan.off_ptr[k] += 1
        if scan.off_ptr[k] < scan.off_count[k]:
            ids[m] = scan.off[k, scan.off_ptr[k]]
            m += 1
    return ids[:m]


@jit_inline
def _better(hs: Hosts, vs: Vms, v: int, h: int, excluded: np.ndarray, best: int, lowest: float, kind: int,
            param: float, mig_rate: float, interval: float, tmp: F8, tick: int) -> float:
    """Host ``h``'s power increase if it is suitable and beats (lowest, best) by (increase, id), else nan.

    The overload check runs only for a host that would win, as in CloudSim's loop."""
    d = vs.demand[v]
    if excluded[h] or hs.pe_mips[h] < d or hs.avail[h] < d or hs.n[h] >= hs.vms.shape[1]:
        return np.nan  # (a full VM list happens only in a planner round given short lists, never in the engine)
    diff = power_increase(hs.table[h], hs.watts_before[h], hs.alloc_sum[h], d, hs.total[h])
    if not (diff < lowest or (diff == lowest and h < best)):
        return np.nan
    if hs.alloc_sum[h] != 0.0 and overloaded_with(hs, vs, h, v, kind, param, mig_rate, interval, tmp, tick):
        return np.nan
    return diff


@jit
def find_host(hs: Hosts, vs: Vms, v: int, excluded: np.ndarray, scan: Scan, allow_off: bool,
              kind: int, param: float, mig_rate: float, interval: float, tmp: F8) -> int:
    """PABFD: the allowed, suitable host whose power rises least; ties to the lowest id; -1 if none.

    ``allow_off`` is False where every unused host is excluded anyway (underload placement).
    """
    tick = int(scan.sizes[TICK_SLOT])
    best = -1
    lowest = np.inf
    if scan.sizes[EXHAUSTIVE]:
        ids = np.flatnonzero(scan.in_cand)
        if allow_off:
            ids = np.sort(np.concatenate((ids, _unused(scan))))
        for i in range(ids.shape[0]):
            diff = _better(hs, vs, v, int(ids[i]), excluded, best, lowest, kind, param, mig_rate, interval, tmp,
                           tick)
            if diff == diff:
                best, lowest = int(ids[i]), diff
        return best
    if allow_off:
        unused = _unused(scan)
        for i in range(unused.shape[0]):
            diff = _better(hs, vs, v, int(unused[i]), excluded, best, lowest, kind, param, mig_rate, interval, tmp,
                           tick)
            if diff == diff:
                best, lowest = int(unused[i]), diff
    n = search_start(scan.ix, hs, vs.demand[v])
    while True:
        h, n = search_next(scan.ix, n, lowest)
        if h < 0:
            return best
        diff = _better(hs, vs, v, h, excluded, best, lowest, kind, param, mig_rate, interval, tmp, tick)
        if diff == diff:
            best, lowest = h, diff


@jit
def by_demand(vs: Vms, ids: np.ndarray) -> np.ndarray:
    """PowerVmList.sortByCpuUtilization: decreasing requested MIPS, stable."""
    order = np.argsort(-vs.demand[ids], kind="mergesort")
    return ids[order]


@jit
def place(hs: Hosts, vs: Vms, ids: np.ndarray, excluded: np.ndarray, all_or_nothing: bool, scan: Scan,
          kind: int, param: float, mig_rate: float, interval: float, tmp: F8,
          out_vm: I8, out_dst: I8, count: int) -> int:
    """Place VMs (sorted by demand) with PABFD, appending moves to ``out_*``; returns the new count.

    With ``all_or_nothing`` (underload) one VM without a host undoes the VMs placed by this call.
    """
    start = count
    for v in by_demand(vs, ids):
        dst = find_host(hs, vs, v, excluded, scan, not all_or_nothing, kind, param, mig_rate, interval, tmp)
        if dst < 0:
            if all_or_nothing:
                for i in range(start, count):
                    list_remove(hs, out_dst[i], out_vm[i])
                    refresh(hs, vs, out_dst[i])
                    index_update(scan.ix, hs, out_dst[i])
                return start
            continue
        list_append(hs, dst, v)
        refresh(hs, vs, dst)
        _scan_add(scan, hs, dst)
        out_vm[count] = v
        out_dst[count] = dst
        count += 1
    return count
