"""A host's planning aggregates and its overload test, as CloudSim 3.0.3 computes them during a round.

``refresh`` recomputes a host's requested and allocated MIPS, free MIPS and history (the sum of its
VMs' histories weighted by VM MIPS / host MIPS) from its VM list; ``overloaded`` runs the detector on
it, ``overloaded_with`` as if one more VM were there (``isHostOverUtilizedAfterAllocation``).
"""

from __future__ import annotations

import numpy as np

from consolidator.policies.literature._compile import jit, jit_inline
from consolidator.policies.literature.arrays import F8, I8, Hosts, Vms
from consolidator.policies.literature.detectors import LR, LRR, MHOD, is_overloaded, trimmed_length
from consolidator.policies.literature.mhod import mhod_overloaded
from consolidator.policies.literature.power import clamp_utilisation, spec_power


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
