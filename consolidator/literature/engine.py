"""The CloudSim-compatible run loop: initial PABFD placement, 300 s updates, migrations as events.

Timing follows CloudSim 3.0.3 (DESIGN §6): updates at ``t_k = 0.1 + 300·k`` (by repeated addition,
as its clock does), ``optimizeAllocation`` after each, each migration starting at once and ending
``RAM / rate`` seconds later, when every host is updated again (that also closes an energy interval).
"""

from __future__ import annotations

import numpy as np

from consolidator.literature.state import commit_all, update_all, update_hosts
from consolidator.policies.literature._compile import jit
from consolidator.policies.literature.arrays import (
    F8,
    I8,
    MIGRATIONS,
    N_ACC,
    TICK,
    Hosts,
    Vms,
    list_append,
    list_remove,
)
from consolidator.policies.literature.optimize import optimize as plan_moves
from consolidator.policies.literature.placement import initial_placement

START_T = 0.1


@jit
def _start(hs: Hosts, vs: Vms, v: int, dst: int, t: float, interval: float, acc: F8) -> None:
    """Host.addMigratingInVm: the VM appears at the target (10 %), both ends are updated at once."""
    vs.mig[v] = True
    list_append(hs, dst, v)
    update_hosts(hs, vs, np.array([dst, vs.host[v]]), t, 0.0, acc)
    acc[MIGRATIONS] += 1.0


@jit
def _finish(hs: Hosts, vs: Vms, v: int, dst: int) -> None:
    """Datacenter.processVmMigrate: the VM leaves its host and is created anew at the target."""
    list_remove(hs, dst, v)
    list_remove(hs, vs.host[v], v)
    list_append(hs, dst, v)
    vs.host[v] = dst
    vs.mig[v] = False


@jit
def _run_events(hs: Hosts, vs: Vms, t: float, count: int, out_vm: I8, out_dst: I8, dur: F8,
                interval: float, acc: F8) -> None:
    """Migration completions in time order (ties in start order), as CloudSim's event queue runs them."""
    ends = np.empty(count)
    for i in range(count):
        ends[i] = t + dur[i]
    order = np.argsort(ends, kind="mergesort")
    i = 0
    while i < count:
        tau = ends[order[i]]
        update_all(hs, vs, tau, interval, False, acc)
        while i < count and ends[order[i]] == tau:
            j = order[i]
            _finish(hs, vs, out_vm[j], out_dst[j])
            i += 1
        update_all(hs, vs, tau, interval, False, acc)


@jit
def simulate(hs: Hosts, vs: Vms, kind: int, param: float, selector: int, mig_rate: float,
             interval: float, n_updates: int, rand: F8, init: F8, kind_of: I8, n_kinds: int,
             consolidate: bool) -> F8:
    """Run the whole trace; returns the accumulator array (energy, SLA integrals, counts).

    A migration lasts RAM / ``mig_rate`` and always completes (CloudSim's model; migrations that cost
    time and energy and may fail are the simulator's, ``sim/``). Without ``consolidate``: first-fit
    placement and no migrations (CloudSim's DVFS baseline).
    """
    acc = np.zeros(N_ACC)
    n_hosts = hs.n.shape[0]
    initial_placement(hs, vs, kind, param, np.full(n_hosts, init[0]), np.full(n_hosts, init[1]), init[2],
                      not consolidate)
    n_vms = vs.mips.shape[0]
    out_vm = np.empty(4 * n_vms + 16, np.int64)
    out_dst = np.empty(4 * n_vms + 16, np.int64)
    blocked = np.zeros(hs.n.shape[0], np.bool_)  # CloudSim's hosts never fail
    t = START_T
    for k in range(n_updates):
        acc[TICK] = k
        t = t + interval
        update_all(hs, vs, t, interval, True, acc)
        for v in range(n_vms):
            if vs.alive[v]:
                vs.demand[v] = vs.hist[v, 0] * vs.mips[v]
        count = 0
        if consolidate:
            count = plan_moves(hs, vs, kind, param, selector, mig_rate, interval, rand, acc, out_vm, out_dst,
                               kind_of, n_kinds, blocked, -1)
        dur = np.empty(count)
        for i in range(count):
            dur[i] = vs.ram[out_vm[i]] / mig_rate
        for i in range(count):
            _start(hs, vs, out_vm[i], out_dst[i], t, interval, acc)
        _run_events(hs, vs, t, count, out_vm, out_dst, dur, interval, acc)
    commit_all(hs, acc)
    return acc

