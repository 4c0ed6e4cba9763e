"""CloudSim 3.0.3's ``optimizeAllocation`` (PowerVmAllocationPolicyMigrationAbstract), step by step.

1. Overloaded hosts: the detector on every host. 2. From each, VMs chosen by the selector until the
host is no longer overloaded. 3. PABFD places them (decreasing CPU), never on an overloaded host.
4. Underload: the least-utilised active host (by the last update) is emptied if all its VMs fit
elsewhere, repeated until every host was tried. The VM lists are restored afterwards: the returned
migrations are only started by the caller.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from consolidator.policies.literature._compile import jit, jit_inline
from consolidator.policies.literature.arrays import F8, I8, RAND_POS, TICK, Hosts, Vms, list_append, list_remove
from consolidator.policies.literature.detectors import LR, LRR, MHOD, is_overloaded, trimmed_length
from consolidator.policies.literature.mhod import mhod_overloaded
from consolidator.policies.literature.power import clamp_utilisation, power_increase, spec_power
from consolidator.policies.literature.selectors import MC, MMT, MU, select_mc, select_mmt, select_mu, select_rs


@jit_inline
def _refresh(n: I8, vms: np.ndarray, pe_mips: F8, total: F8, demand: F8, mips: F8, vhist: F8, vhlen: I8,
             req_sum: F8, alloc_sum: F8, avail_out: F8, hist: F8, hlen: I8, h: int) -> None:
    req = 0.0
    capped = 0.0
    avail = total[h]
    over = False
    hist[h, :] = 0.0
    for i in range(n[h]):
        v = vms[h, i]
        d = demand[v]
        c = min(d, pe_mips[h])
        req += d
        capped += c
        if not over:
            if avail >= c:
                avail -= c
            elif c > 0.0:
                over = True
        for j in range(vhlen[v]):
            hist[h, j] += vhist[v, j] * mips[v] / total[h]
    alloc = capped
    if over:
        scale = total[h] / capped
        alloc = 0.0
        for i in range(n[h]):
            alloc += np.floor(min(demand[vms[h, i]], pe_mips[h]) * scale)
        avail = 0.0
    req_sum[h] = req
    alloc_sum[h] = alloc
    avail_out[h] = avail
    k = hist.shape[1]
    while k > 0 and hist[h, k - 1] == 0.0:
        k -= 1
    hlen[h] = k


@jit
def refresh(hs: Hosts, vs: Vms, h: int) -> None:
    """Planning aggregates of one host from its current VM list (no migration is in flight here)."""
    _refresh(hs.n, hs.vms, hs.pe_mips, hs.total, vs.demand, vs.mips, vs.hist, vs.hlen, hs.req_sum,
             hs.alloc_sum, hs.avail, hs.hist, hs.hlen, h)


@jit
def refresh_all(hs: Hosts, vs: Vms) -> None:
    """``refresh`` for every host, and the last update's power of each (PABFD's "before")."""
    n, vms, pe_mips, total = hs.n, hs.vms, hs.pe_mips, hs.total
    demand, mips, vhist, vhlen = vs.demand, vs.mips, vs.hist, vs.hlen
    req_sum, alloc_sum, avail, hist, hlen = hs.req_sum, hs.alloc_sum, hs.avail, hs.hist, hs.hlen
    for h in range(n.shape[0]):
        hs.watts_before[h] = spec_power(hs.table[h], clamp_utilisation(hs.util[h] / total[h]))
        if n[h] == 0:  # an empty host: nothing requested, no history
            req_sum[h] = 0.0
            alloc_sum[h] = 0.0
            avail[h] = total[h]
            hist[h, :] = 0.0
            hlen[h] = 0
        else:
            _refresh(n, vms, pe_mips, total, demand, mips, vhist, vhlen, req_sum, alloc_sum, avail, hist, hlen, h)


@jit
def steps_ahead(hs: Hosts, vs: Vms, h: int, extra_ram: float, mig_rate: float, interval: float) -> float:
    """LR's look-ahead: scheduling intervals the migration of the host's largest VM takes."""
    ram = extra_ram
    for i in range(hs.n[h]):
        ram = max(ram, vs.ram[hs.vms[h, i]])
    return float(np.ceil(ram / mig_rate / interval))


@jit
def _mhod(hs: Hosts, vs: Vms, h: int, extra_ram: float, req: float, otf: float, mig_rate: float,
          interval: float, tick: int) -> bool:
    """MHOD on the host's own history, with ``req`` (requested MIPS now) as its current value."""
    n = hs.ulen[h] - 1 if hs.utick[h] == tick else hs.ulen[h]
    ram = extra_ram
    for i in range(hs.n[h]):
        ram = max(ram, vs.ram[hs.vms[h, i]])
    return mhod_overloaded(hs.uhist[h, :max(n, 0)], min(1.0, req / hs.total[h]), otf, ram / mig_rate / interval)


@jit
def overloaded(hs: Hosts, vs: Vms, h: int, kind: int, param: float, mig_rate: float, interval: float,
               tick: int) -> bool:
    if kind == MHOD:
        return _mhod(hs, vs, h, 0.0, hs.req_sum[h], param, mig_rate, interval, tick)
    ahead = steps_ahead(hs, vs, h, 0.0, mig_rate, interval) if kind == LR or kind == LRR else 1.0
    return is_overloaded(kind, param, hs.req_sum[h] / hs.total[h], hs.hist[h, :hs.hlen[h]], ahead)


@jit
def overloaded_with(hs: Hosts, vs: Vms, h: int, v: int, kind: int, param: float, mig_rate: float,
                    interval: float, tmp: F8, tick: int) -> bool:
    """isHostOverUtilizedAfterAllocation: the detector on the host with ``v`` added last."""
    if kind == MHOD:
        return _mhod(hs, vs, h, vs.ram[v], hs.req_sum[h] + vs.demand[v], param, mig_rate, interval, tick)
    tmp[:] = hs.hist[h]
    for j in range(vs.hlen[v]):
        tmp[j] += vs.hist[v, j] * vs.mips[v] / hs.total[h]
    n = trimmed_length(tmp)
    ahead = steps_ahead(hs, vs, h, vs.ram[v], mig_rate, interval) if kind == LR or kind == LRR else 1.0
    return is_overloaded(kind, param, (hs.req_sum[h] + vs.demand[v]) / hs.total[h], tmp[:n], ahead)


class Scan(NamedTuple):
    """Hosts PABFD must look at: those in use (sorted ids) and, per host kind, the unused ones.

    Unused hosts of one kind all score the same, so only the lowest-id one can win; scanning the
    used hosts plus one unused host per kind gives CloudSim's choice over all 800 hosts.
    """

    cand: I8  # sorted ids of hosts in use or touched this round; count in ``sizes[0]``, update index in [1]
    in_cand: np.ndarray
    off: I8  # (kinds, hosts) sorted ids of unused hosts per kind
    off_count: I8
    off_ptr: I8
    sizes: I8


@jit
def new_scan(hs: Hosts, kind_of: I8, n_kinds: int, tick: int, blocked: np.ndarray) -> Scan:
    """``blocked`` hosts are never offered as the unused host of their kind."""
    n_hosts = hs.n.shape[0]
    cand = np.empty(n_hosts, np.int64)
    in_cand = np.zeros(n_hosts, np.bool_)
    off = np.empty((n_kinds, n_hosts), np.int64)
    off_count = np.zeros(n_kinds, np.int64)
    c = 0
    for h in range(n_hosts):
        if hs.util[h] > 0.0 or hs.n[h] > 0:
            cand[c] = h
            in_cand[h] = True
            c += 1
        elif not blocked[h]:
            k = kind_of[h]
            off[k, off_count[k]] = h
            off_count[k] += 1
    sizes = np.array([c, tick], np.int64)
    return Scan(cand, in_cand, off, off_count, np.zeros(n_kinds, np.int64), sizes)


@jit
def scan_add(scan: Scan, h: int) -> None:
    """A host just got a VM: scan it from now on."""
    if scan.in_cand[h]:
        return
    c = scan.sizes[0]
    pos = np.searchsorted(scan.cand[:c], h)
    scan.cand[pos + 1:c + 1] = scan.cand[pos:c].copy()
    scan.cand[pos] = h
    scan.sizes[0] = c + 1
    scan.in_cand[h] = True


@jit
def _order_to_scan(scan: Scan, allow_off: bool) -> I8:
    """Used hosts plus the first unused host of each kind, in id order."""
    c = scan.sizes[0]
    n_kinds = scan.off_count.shape[0]
    ids = np.empty(c + n_kinds, np.int64)
    ids[:c] = scan.cand[:c]
    m = c
    if allow_off:
        for k in range(n_kinds):
            while scan.off_ptr[k] < scan.off_count[k] and scan.in_cand[scan.off[k, scan.off_ptr[k]]]:
                scan.off_ptr[k] += 1
            if scan.off_ptr[k] < scan.off_count[k]:
                ids[m] = scan.off[k, scan.off_ptr[k]]
                m += 1
    if m > c:
        return np.sort(ids[:m])
    return ids[:m]


@jit
def find_host(hs: Hosts, vs: Vms, v: int, excluded: np.ndarray, scan: Scan, allow_off: bool,
              kind: int, param: float, mig_rate: float, interval: float, tmp: F8) -> int:
    """PABFD: the allowed, suitable host whose power rises least; ties to the lowest id.

    The overload check is made only for a host that would beat the best so far, which gives the
    same choice as CloudSim's check-then-compare loop with far fewer detector calls.
    ``allow_off`` is False where every unused host is excluded anyway (underload placement).
    """
    d = vs.demand[v]
    best = -1
    lowest = np.inf
    for h in _order_to_scan(scan, allow_off):
        if excluded[h] or hs.pe_mips[h] < d or hs.avail[h] < d or hs.n[h] >= hs.vms.shape[1]:
            continue  # (a full VM list happens only in a planner round given short lists, never in the engine)
        diff = power_increase(hs.table[h], hs.watts_before[h], hs.alloc_sum[h], d, hs.total[h])
        if diff < lowest:
            if hs.alloc_sum[h] != 0.0 and overloaded_with(hs, vs, h, v, kind, param, mig_rate, interval, tmp,
                                                          scan.sizes[1]):
                continue
            lowest = diff
            best = h
    return best


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
                return start
            continue
        list_append(hs, dst, v)
        refresh(hs, vs, dst)
        scan_add(scan, dst)
        out_vm[count] = v
        out_dst[count] = dst
        count += 1
    return count


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
             blocked: np.ndarray, max_underload_tries: int) -> int:
    """One optimizeAllocation; fills ``out_vm``/``out_dst`` with the migrations in CloudSim's order.

    ``blocked`` hosts (failed, or otherwise not to be touched; none in CloudSim) neither send nor
    receive VMs. ``max_underload_tries`` bounds the hosts the underload step tries (< 0: every host,
    CloudSim's O(hosts²) step; a bound keeps a round of 10^4-10^5 hosts affordable).
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
    scan = new_scan(hs, kind_of, n_kinds, int(acc[TICK]), blocked)
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
