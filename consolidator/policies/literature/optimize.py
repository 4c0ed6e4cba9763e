"""CloudSim 3.0.3's ``optimizeAllocation`` (PowerVmAllocationPolicyMigrationAbstract), step by step.

1. Overloaded hosts: the detector on every host. 2. From each, VMs chosen by the selector until the
host is no longer overloaded. 3. PABFD places them (decreasing CPU), never on an overloaded host.
4. Underload: the least-utilised active host (by the last update) is emptied if all its VMs fit
elsewhere, repeated until every host was tried. The VM lists are restored afterwards: the returned
migrations are only started by the caller. Host aggregates and overload tests are in ``hostload``,
PABFD in ``pabfd`` (its host index in ``index``).
"""

from __future__ import annotations

import numpy as np

from consolidator.policies.literature._compile import jit
from consolidator.policies.literature.arrays import F8, I8, RAND_POS, TICK, Hosts, Vms, list_remove
from consolidator.policies.literature.hostload import overloaded, refresh, refresh_all
from consolidator.policies.literature.index import index_remove
from consolidator.policies.literature.pabfd import Scan, new_scan, place, scan_exclude
from consolidator.policies.literature.power import clamp_utilisation
from consolidator.policies.literature.selectors import MC, MMT, MU, select_mc, select_mmt, select_mu, select_rs


@jit
def select_vm(hs: Hosts, vs: Vms, h: int, selector: int, rand: F8, acc: F8) -> int:
    """The VM the selector takes off host ``h`` (a VM id), or -1."""
    n = hs.n[h]
    if n == 0:
        return -1
    ids = hs.vms[h, :n]
    if selector == MMT:
        pos = select_mmt(vs.ram[ids])
    elif selector == MU:
        pos = select_mu(vs.demand[ids] / vs.mips[ids])
    elif selector == MC:
        pos = select_mc(vs.hist[ids], vs.hlen[ids], vs.ram[ids])
    else:
        k = int(acc[RAND_POS]) % rand.shape[0]
        acc[RAND_POS] += 1.0
        pos = select_rs(n, rand[k])
    return ids[pos] if pos >= 0 else -1


@jit
def _evict_overloaded(hs: Hosts, vs: Vms, over: np.ndarray, kind: int, param: float, selector: int,
                      mig_rate: float, interval: float, rand: F8, acc: F8) -> np.ndarray:
    """getVmsToMigrateFromHosts: take VMs off each overloaded host until it is no longer overloaded."""
    picked = np.empty(vs.mips.shape[0], np.int64)
    count = 0
    for h in range(hs.n.shape[0]):
        if not over[h]:
            continue
        while True:
            v = select_vm(hs, vs, h, selector, rand, acc)
            if v < 0:
                break
            picked[count] = v
            count += 1
            list_remove(hs, h, v)
            refresh(hs, vs, h)
            if not overloaded(hs, vs, h, kind, param, mig_rate, interval, int(acc[TICK])):
                break
    return picked[:count]


@jit
def _next_underloaded(hs: Hosts, order: np.ndarray, excluded: np.ndarray, start: int) -> int:
    """getUnderUtilizedHost: least utilised (last update) non-excluded host in (0, 1) with VMs."""
    for i in range(start, order.shape[0]):
        h = order[i]
        if excluded[h]:
            continue
        u = clamp_utilisation(hs.util[h] / hs.total[h])
        if u >= 1.0:
            return -1
        if u > 0.0 and hs.n[h] > 0:
            return int(h)
    return -1


@jit
def _drain_underloaded(hs: Hosts, vs: Vms, over: np.ndarray, scan: Scan, kind: int, param: float,
                       mig_rate: float, interval: float, tmp: F8, out_vm: I8, out_dst: I8, count: int,
                       max_tries: int) -> int:
    """getMigrationMapFromUnderUtilizedHosts, with CloudSim's exclusion sets (``over`` holds the
    overloaded and the blocked hosts); at most ``max_tries`` hosts are tried (< 0: all, as CloudSim)."""
    n_hosts = hs.n.shape[0]
    off = hs.util == 0.0
    ex_under = over | off
    ex_place = over | off
    scan_exclude(scan, ex_place)
    n_ex = int(np.sum(ex_under))
    order = np.argsort(hs.util / hs.total, kind="mergesort")
    first = 0  # hosts before it in ``order`` are all excluded already
    tries = 0
    while n_ex < n_hosts and (max_tries < 0 or tries < max_tries):
        tries += 1
        while first < n_hosts and ex_under[order[first]]:
            first += 1
        u = _next_underloaded(hs, order, ex_under, first)
        if u < 0:
            break
        ex_under[u] = True
        ex_place[u] = True
        index_remove(scan.ix, u)
        n_ex += 1
        ids = hs.vms[u, :hs.n[u]].astype(np.int64)
        start = count
        count = place(hs, vs, ids, ex_place, True, scan, kind, param, mig_rate, interval, tmp,
                      out_vm, out_dst, count)
        for i in range(start, count):
            if not ex_under[out_dst[i]]:
                ex_under[out_dst[i]] = True
                n_ex += 1
    return count


@jit
def optimize(hs: Hosts, vs: Vms, kind: int, param: float, selector: int, mig_rate: float,
             interval: float, rand: F8, acc: F8, out_vm: I8, out_dst: I8, kind_of: I8, n_kinds: int,
             blocked: np.ndarray, max_underload_tries: int, exhaustive: bool = False) -> int:
    """One optimizeAllocation; fills ``out_vm``/``out_dst`` with the migrations in CloudSim's order.

    ``blocked`` hosts (failed, or otherwise not to be touched; none in CloudSim) neither send nor
    receive VMs. ``max_underload_tries`` bounds the hosts the underload step tries (< 0: every host,
    CloudSim's O(hosts²) step; a bound keeps a round of 10^4-10^5 hosts affordable). ``exhaustive``:
    PABFD scans every candidate host (CloudSim's loop, the reference) instead of using its index.
    """
    n_hosts = hs.n.shape[0]
    tmp = np.empty(hs.hist.shape[1])
    refresh_all(hs, vs)
    over = np.zeros(n_hosts, np.bool_)
    for h in range(n_hosts):
        if hs.n[h] > 0 and not blocked[h]:  # an empty host requests nothing and has no history
            over[h] = overloaded(hs, vs, h, kind, param, mig_rate, interval, int(acc[TICK]))
    saved_n = hs.n.copy()
    saved = np.empty(int(np.sum(saved_n)), np.int32)
    k = 0
    for h in range(n_hosts):
        saved[k:k + saved_n[h]] = hs.vms[h, :saved_n[h]]
        k += saved_n[h]
    scan = new_scan(hs, kind_of, n_kinds, int(acc[TICK]), blocked, over | blocked, exhaustive)
    evicted = _evict_overloaded(hs, vs, over, kind, param, selector, mig_rate, interval, rand, acc)
    count = place(hs, vs, evicted, over | blocked, False, scan, kind, param, mig_rate, interval, tmp,
                  out_vm, out_dst, 0)
    count = _drain_underloaded(hs, vs, over | blocked, scan, kind, param, mig_rate, interval, tmp, out_vm, out_dst,
                               count, max_underload_tries)
    k = 0
    for h in range(n_hosts):
        hs.n[h] = saved_n[h]
        hs.vms[h, :saved_n[h]] = saved[k:k + saved_n[h]]
        k += saved_n[h]
    return count
