"""What a planner sees: one frozen, array-shaped view of the cluster at one instant.

Index ``i`` of every ``host_*`` array is host ``host_names[i]``; likewise for VMs. Arrays keep a
planner round at 10,000 hosts / 100,000 VMs within milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from consolidator.domain.types import MigrationMethod

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class Snapshot:
    t_s: float
    method: MigrationMethod  # the run's migration method, for the Migrate actions a policy returns
    host_names: tuple[str, ...]
    host_is_warehouse: BoolArray
    host_state: npt.NDArray[np.int8]  # PowerState.code of each host
    host_cores: FloatArray
    host_mem_mib: FloatArray
    host_load_avg: FloatArray  # measured, cores, over the averaging window
    host_load_now: FloatArray
    host_load_short: FloatArray  # measured, cores, over the last few periods (Load Monitor's short window)
    host_overhead_now: FloatArray  # measured CPU not accounted to VMs (virtualisation overhead)
    vm_names: tuple[str, ...]
    vm_host: IntArray  # where the VM will be: its destination while moving, else its host
    vm_runs_on: IntArray  # where its CPU runs now: the source during precopy, the destination in postcopy
    vm_mem_mib: FloatArray
    vm_load_avg: FloatArray
    vm_load_now: FloatArray
    vm_load_short: FloatArray
    vm_busy: BoolArray  # migrating, or waiting for its destination to wake
    vm_move_src: IntArray  # the source host of the VM's move in flight, -1 when not moving
    vm_last_move_end_s: FloatArray  # -inf if never moved
    # For migration-aware planners: the guest's memory dirty rate (measured by the hypervisor where it
    # reports one, else estimated as its served load × its spec's rate at full load) and each host's
    # migration link rate.
    vm_dirty_bytes_per_s: FloatArray
    host_nic_bytes_per_s: FloatArray
    # For the literature policies (Beloglazov & Buyya): loads at the planning interval, most recent
    # first (row i holds ``*_history_len[i]`` values, zeros after), the load one core serves (a vCPU
    # is capped at it), each VM's load at 100 % of its vCPUs, and each host's power table (W at 0, 10,
    # ..., 100 % of host_cores). Runners that do not provide them leave the defaults: no history, unit
    # cores and vCPUs, no table.
    vm_load_history: FloatArray = field(default_factory=lambda: np.zeros((0, 0)))
    vm_history_len: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    host_load_history: FloatArray = field(default_factory=lambda: np.zeros((0, 0)))
    host_history_len: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    host_core_speed: FloatArray = field(default_factory=lambda: np.zeros(0))
    vm_size: FloatArray = field(default_factory=lambda: np.zeros(0))
    host_power_table_watts: FloatArray = field(default_factory=lambda: np.zeros((0, 11)))

    def host_vm_count(self) -> IntArray:
        placed = self.vm_host >= 0
        return np.bincount(self.vm_host[placed], minlength=len(self.host_names)).astype(np.int64)

    def host_mem_used(self) -> FloatArray:
        placed = self.vm_host >= 0
        used = np.bincount(self.vm_host[placed], weights=self.vm_mem_mib[placed], minlength=len(self.host_names))
        return used.astype(np.float64)

    def host_vm_load_avg(self) -> FloatArray:
        """Sum of the averaged loads of the VMs placed (or arriving) on each host."""
        placed = self.vm_host >= 0
        load = np.bincount(self.vm_host[placed], weights=self.vm_load_avg[placed], minlength=len(self.host_names))
        return load.astype(np.float64)
