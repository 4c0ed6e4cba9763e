"""PABFD's host index chooses exactly as CloudSim's scan (policies/literature/index.py, pabfd.py).

Random states with three host types, hosts whose load changed since the last update (their power
"before" differs from their allocation's), unused, excluded and blocked hosts, and VM loads drawn
from a few values so that many hosts tie exactly (ties go to the lowest id). Each VM's host is asked
of both forms; then whole rounds of every detector run both ways and must give the same moves.
"""

from __future__ import annotations

import numpy as np
import pytest

from consolidator.policies.literature.arrays import N_ACC, Hosts, Vms, host_kinds, new_hosts, new_vms
from consolidator.policies.literature.codes import IQR, LR, MAD, MC, MHOD, MMT, MU, RS, THR
from consolidator.policies.literature.hostload import refresh_all
from consolidator.policies.literature.index import index_insert, index_remove, new_index, search_next, search_start
from consolidator.policies.literature.optimize import optimize
from consolidator.policies.literature.pabfd import find_host, new_scan
from consolidator.policies.literature.power import HP_ML110_G4_WATTS, HP_ML110_G5_WATTS

HIST = 20


def _state(seed: int, n_hosts: int = 120, n_vms: int = 480) -> tuple[Hosts, Vms, np.ndarray]:
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 3, n_hosts)  # G4, G5, and a G5 table on a four-core host
    pe = np.where(kind == 0, 1860.0, 2660.0)
    total = np.where(kind == 2, 4 * 2660.0, 2 * pe)
    table = np.array([HP_ML110_G4_WATTS if k == 0 else HP_ML110_G5_WATTS for k in kind])
    used = rng.random(n_hosts) < 0.7
    host = rng.choice(np.flatnonzero(used), n_vms)
    mips = rng.choice([2500.0, 2000.0, 1000.0, 500.0], n_vms)
    levels = rng.choice([0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 0.9], (n_vms, HIST))  # few values: exact ties
    hs = new_hosts(pe, table, n_vms, HIST, total=total)
    vs = new_vms(mips, rng.uniform(500.0, 2000.0, n_vms), np.zeros((n_vms, 1)))
    for v in range(n_vms):
        hs.vms[host[v], hs.n[host[v]]] = v
        hs.n[host[v]] += 1
    vs.hist[:, :HIST] = levels
    vs.hlen[:] = HIST
    vs.demand[:] = levels[:, 0] * mips
    for h in range(n_hosts):
        on_h = host == h
        served = float(np.minimum(vs.demand[on_h], pe[h]).sum())
        changed = rng.random() < 0.3  # load moved since the last update: power before != allocation's
        hs.util[h] = min(total[h], served * (rng.uniform(0.5, 1.5) if changed else 1.0))
        if on_h.any():
            series = (levels[on_h] * mips[on_h, None]).sum(axis=0)[::-1] / total[h]
            hs.uhist[h, :HIST] = np.minimum(1.0, series)
            hs.ulen[h] = HIST
            hs.utick[h] = 0
    return hs, vs, table


def _copy(t: Hosts | Vms) -> Hosts | Vms:
    return type(t)(*(a.copy() for a in t))


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("allow_off", [True, False])
def test_each_vm_gets_the_host_the_scan_gives(seed: int, allow_off: bool) -> None:
    hs, vs, table = _state(seed)
    refresh_all(hs, vs)
    rng = np.random.default_rng(100 + seed)
    n_hosts = hs.n.shape[0]
    excluded = rng.random(n_hosts) < 0.15
    blocked = excluded & (rng.random(n_hosts) < 0.5)
    kinds = host_kinds(hs.pe_mips, table)
    scan = new_scan(hs, kinds, int(kinds.max()) + 1, 0, blocked, excluded, True)
    fast = new_scan(hs, kinds, int(kinds.max()) + 1, 0, blocked, excluded, False)
    tmp = np.empty(hs.hist.shape[1])
    choices = []
    for detector, param in ((THR, 0.8), (THR, 1.0), (IQR, 1.5), (LR, 1.2), (MHOD, 0.1)):
        for v in range(vs.mips.shape[0]):
            also = excluded | (rng.random(n_hosts) < 0.5)  # more hosts out for this VM: other winners
            want = find_host(hs, vs, v, also, scan, allow_off, detector, param, 62.5, 300.0, tmp)
            got = find_host(hs, vs, v, also, fast, allow_off, detector, param, 62.5, 300.0, tmp)
            assert got == want, (detector, v)
            choices.append(want)
    assert len(set(choices)) > 10 and choices.count(-1) < len(choices) / 10  # the state offers real choices


@pytest.mark.parametrize("detector,param", [(THR, 0.8), (IQR, 1.5), (MAD, 2.5), (LR, 1.2), (MHOD, 0.2)])
@pytest.mark.parametrize("selector", [MMT, MC, MU, RS])
@pytest.mark.parametrize("seed", [1, 2])
def test_whole_rounds_move_the_same_vms_to_the_same_hosts(detector: int, param: float, selector: int,
                                                          seed: int) -> None:
    hs, vs, table = _state(seed)
    kinds = host_kinds(hs.pe_mips, table)
    n_vms = vs.mips.shape[0]
    rand = np.random.default_rng(seed).random(n_vms + 16)
    results = []
    for exhaustive in (True, False):
        h2, v2 = _copy(hs), _copy(vs)
        out_vm, out_dst = np.empty(4 * n_vms + 16, np.int64), np.empty(4 * n_vms + 16, np.int64)
        count = optimize(h2, v2, detector, param, selector, 62.5, 300.0, rand, np.zeros(N_ACC), out_vm, out_dst,
                         kinds, int(kinds.max()) + 1, np.zeros(hs.n.shape[0], np.bool_), -1, exhaustive)
        results.append((out_vm[:count].tolist(), out_dst[:count].tolist()))
    assert results[0] == results[1]
    assert len(results[0][0]) > 10  # both underload and overload moves, not an idle round


def test_the_search_meets_every_indexed_host_once_and_stops_at_the_bound() -> None:
    hs, vs, _ = _state(5)
    refresh_all(hs, vs)
    ix = new_index(hs)
    indexed = [h for h in range(hs.n.shape[0]) if hs.n[h] > 0]
    for h in indexed:
        index_insert(ix, hs, h)
    for h in indexed[::3]:  # removals keep the heaps in order
        index_remove(ix, h)
    kept = sorted(set(indexed) - set(indexed[::3]))
    n = search_start(ix, hs, 0.0)
    seen, bounds = [], []
    while True:
        bound = ix.fr_lb[0] if n else np.inf
        h, n = search_next(ix, n, np.inf)
        if h < 0:
            break
        seen.append(h)
        bounds.append(bound)
    assert sorted(seen) == kept
    assert bounds == sorted(bounds)  # best first
    n = search_start(ix, hs, 0.0)
    first, n = search_next(ix, n, np.inf)
    stop_at = ix.fr_lb[0] - 1e-6  # nothing left can reach below this: the search ends at once
    assert search_next(ix, n, stop_at)[0] == -1
    assert first == seen[0]
