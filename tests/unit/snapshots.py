"""Builds small Snapshots for planner tests: hosts 0..n-1, host 0 the Warehouse unless told otherwise."""

from __future__ import annotations

import numpy as np

from consolidator.domain.snapshot import Snapshot
from consolidator.domain.types import MigrationMethod, PowerState


def snap(
    vm_host: list[int],
    vm_load: list[float],
    states: list[PowerState],
    warehouses: tuple[int, ...] = (0,),
    busy: list[bool] | None = None,
    runs_on: list[int] | None = None,
    last_end: list[float] | None = None,
    t_s: float = 100.0,
    overhead: list[float] | None = None,
    vm_mem: float = 1024.0,
    host_mem: float = 16384.0,
    method: MigrationMethod = MigrationMethod.POSTCOPY,
    dirty_per_load: float = 200e6,
    nic: float = 120e6,
    cores: float = 4.0,
    vm_avg: list[float] | None = None,
    move_src: list[int] | None = None,
    vm_short: list[float] | None = None,
    host_avg: list[float] | None = None,
) -> Snapshot:
    n_h, n_v = len(states), len(vm_host)
    load = np.asarray(vm_load, dtype=float)
    host_load = np.bincount(vm_host, weights=load, minlength=n_h) if n_v else np.zeros(n_h)
    return Snapshot(
        t_s=t_s,
        method=method,
        host_names=tuple(f"PM{i}" for i in range(n_h)),
        host_is_warehouse=np.isin(np.arange(n_h), warehouses),
        host_state=np.array([s.code for s in states], dtype=np.int8),
        host_cores=np.full(n_h, cores),
        host_mem_mib=np.full(n_h, host_mem),
        host_load_avg=np.asarray(host_avg, dtype=float) if host_avg is not None else host_load,
        host_load_now=host_load,
        host_load_short=host_load,
        host_overhead_now=np.asarray(overhead if overhead is not None else [0.0] * n_h, dtype=float),
        vm_names=tuple(f"VM{i}" for i in range(n_v)),
        vm_host=np.asarray(vm_host, dtype=np.int64),
        vm_runs_on=np.asarray(runs_on if runs_on is not None else vm_host, dtype=np.int64),
        vm_mem_mib=np.full(n_v, vm_mem),
        vm_load_avg=np.asarray(vm_avg, dtype=float) if vm_avg is not None else load,
        vm_load_now=load,
        vm_load_short=np.asarray(vm_short, dtype=float) if vm_short is not None else load,
        vm_busy=np.asarray(busy if busy is not None else [False] * n_v, dtype=bool),
        vm_move_src=np.asarray(move_src if move_src is not None else [-1] * n_v, dtype=np.int64),
        vm_last_move_end_s=np.asarray(last_end if last_end is not None else [-np.inf] * n_v, dtype=float),
        vm_dirty_bytes_per_s=load * dirty_per_load,
        host_nic_bytes_per_s=np.full(n_h, nic),
    )
