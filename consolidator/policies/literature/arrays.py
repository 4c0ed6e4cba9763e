"""The arrays the literature decision code works on (hosts, VMs, one accumulator), shared by the
planner (``planner.LiteraturePlanner``, one Snapshot at a time) and the CloudSim-compatible engine
(``consolidator.literature``, a whole trace): one layout, one decision code.

Hosts keep their VM lists in CloudSim's order (it decides ties and summation order). The fields after
``planning aggregates`` are the engine's own bookkeeping (state entries for SLA and energy); a planner
round allocates them but never reads them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from consolidator.policies.literature._compile import jit_inline
from consolidator.policies.literature.detectors import HISTORY_LENGTH

F8 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int64]
B1 = npt.NDArray[np.bool_]

# Slots of the accumulator array.
ENERGY_WS, VIOL_S, ACTIVE_S, VM_ALLOC, VM_REQ, VM_UNDER_MIG, SHUTDOWNS, MIGRATIONS, RAND_POS, LAST_T, \
    REMOVED, EXTRA_WS, CANCELLED, TICK, N_ACC = range(15)


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
    uhist: F8  # (H, steps + 1) the host's own utilisation at each update while in use (MHOD)
    ulen: I8
    utick: I8  # update index of the latest value in ``uhist``


class Vms(NamedTuple):
    mips: F8
    ram: F8
    data: F8  # (N, steps + 1) utilisation fractions
    host: I8  # source host while migrating; -1 once removed
    mig: B1
    alive: B1
    hist: F8  # (N, 30), most recent first
    hlen: I8
    demand: F8  # requested MIPS at the current step (planning)
    unow: F8  # utilisation at the time of the latest update
    e_time: F8
    e_alloc: F8
    e_req: F8
    e_mig: B1


def new_hosts(pe_mips: F8, table: F8, n_vms: int, n_steps: int = 0, total: F8 | None = None) -> Hosts:
    """Hosts with ``pe_mips`` per core (two cores each unless ``total`` is given) and room in each VM
    list for ``n_vms`` VMs."""
    h = pe_mips.shape[0]
    return Hosts(
        pe_mips, pe_mips * 2.0 if total is None else total, table, np.full((h, max(n_vms, 1)), -1, np.int32),
        np.zeros(h, np.int64),
        np.zeros(h), np.zeros(h), np.zeros(h), np.zeros(h), np.zeros(h), np.zeros((h, HISTORY_LENGTH)),
        np.zeros(h, np.int64), np.zeros(h), np.full(h, -1.0), np.zeros(h), np.zeros(h),
        np.zeros(h, np.bool_), np.ones(h, np.bool_), np.zeros((h, n_steps + 1)), np.zeros(h, np.int64),
        np.full(h, -1, np.int64),
    )


def new_vms(mips: F8, ram: F8, data: F8) -> Vms:
    n = mips.shape[0]
    return Vms(
        mips, ram, data, np.full(n, -1, np.int64), np.zeros(n, np.bool_), np.zeros(n, np.bool_),
        np.zeros((n, HISTORY_LENGTH)), np.zeros(n, np.int64), np.zeros(n), np.zeros(n), np.full(n, -1.0),
        np.zeros(n),
        np.zeros(n), np.zeros(n, np.bool_),
    )


@jit_inline
def list_remove(hs: Hosts, h: int, v: int) -> None:
    n = hs.n[h]
    for i in range(n):
        if hs.vms[h, i] == v:
            for j in range(i, n - 1):
                hs.vms[h, j] = hs.vms[h, j + 1]
            hs.n[h] = n - 1
            return


@jit_inline
def list_append(hs: Hosts, h: int, v: int) -> None:
    hs.vms[h, hs.n[h]] = v
    hs.n[h] += 1


def host_kinds(pe_mips: F8, table: F8) -> I8:
    """Hosts with the same core speed and power table are interchangeable while unused (PABFD scans
    one unused host per kind)."""
    _, kinds = np.unique(np.column_stack([pe_mips, table]), axis=0, return_inverse=True)
    return kinds.astype(np.int64).ravel()
