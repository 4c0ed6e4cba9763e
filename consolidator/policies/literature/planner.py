"""The literature policies as a planner of the control loop: overload detector + VM selector + PABFD.

Description: Beloglazov & Buyya's dynamic consolidation (as CloudSim 3.0.3 codes it, DESIGN §6), one
round per planning interval: hosts the detector (THR, IQR, MAD, LR, LRR or MHOD) finds overloaded
shed VMs chosen by the selector (MMT, MU, RS or MC) until they are not; PABFD places those VMs on
the host whose power rises least (an unused host, asleep or idle, may be chosen: the controller
wakes it); then the least-utilised hosts are emptied one by one when all their VMs fit elsewhere.
Powered hosts left without VMs are suspended. The round runs the **same compiled decision code** as
the CloudSim-compatible engine (``optimize.optimize``): this module only turns a Snapshot into its
arrays and its answer into actions.

Requirements: VM load history at the planning interval (IQR and MAD need 12 values, LR/LRR 10, else
they fall back to THR 0.7 as in CloudSim), host load history (MHOD), each host's capacity, per-core
speed and power table, each VM's size; the loop plans every ``interval_s`` (``ControlLoop``).

Limitations: VMs in flight keep their destination and are never chosen (CloudSim never sees one, its
migrations end within the interval); a VM that CloudSim would move twice in one round (an underload
move onto a host that is then emptied) gets one move to its final host; a host whose VM list is full
(more VMs than ``list_room`` over the fullest host) receives no more VMs in that round; power is the
host's table over its capacity. RS draws from a generator seeded by ``seed`` and the snapshot's
time, so the plan is a pure function of the snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from consolidator.domain.actions import Action, Migrate, Plan, Suspend
from consolidator.domain.snapshot import Snapshot
from consolidator.domain.types import HostSpec, PowerState, VmSpec
from consolidator.policies.literature.arrays import N_ACC, Hosts, Vms, host_kinds, new_hosts, new_vms
from consolidator.policies.literature.codes import MC, MHOD, THR
from consolidator.policies.literature.detectors import HISTORY_LENGTH
from consolidator.policies.literature.optimize import optimize

ON = PowerState.ON.code
FAILED = PowerState.FAILED.code
_MIB = 1024 * 1024
# The paper's host (53 W idle, 100 W at full load) where a snapshot carries no power table.
_DEFAULT_TABLE = np.linspace(53.0, 100.0, 11)


@dataclass(frozen=True, slots=True)
class LiteraturePlanner:
    """One literature policy: ``detector`` code with ``parameter``, ``selector`` code, PABFD placement."""

    name: str
    detector: int
    selector: int
    parameter: float
    seed: int = 1
    interval_s: float = 300.0  # the loop plans once per interval (CloudSim's scheduling interval)
    underload_tries: int = 0  # hosts the underload step tries per round; 0: every host (CloudSim)
    list_room: int = 64

    @property
    def history_length(self) -> int:
        """Values of load history the loop keeps for this policy: none for THR unless MC selects."""
        return 0 if self.detector == THR and self.selector != MC else HISTORY_LENGTH

    def initial_placement(
        self, hosts: Sequence[HostSpec], vms: Sequence[VmSpec], requested: Mapping[str, str]
    ) -> dict[str, str]:
        return dict(requested)

    def plan(self, s: Snapshot) -> Plan:
        hs, vs, kinds, blocked = self._arrays(s)
        n_vms = len(s.vm_names)
        out_vm = np.empty(4 * n_vms + 16, np.int64)
        out_dst = np.empty(4 * n_vms + 16, np.int64)
        rand = np.random.default_rng([self.seed, int(round(s.t_s * 1000))]).random(n_vms + 16)
        acc = np.zeros(N_ACC)
        mig_mb_s = float(np.median(s.host_nic_bytes_per_s)) / 2 / 1e6 if len(s.host_names) else 1.0  # MB/s, as RAM
        count = optimize(hs, vs, self.detector, self.parameter, self.selector, mig_mb_s, self.interval_s, rand,
                         acc, out_vm, out_dst, kinds, int(kinds.max(initial=0)) + 1, blocked,
                         self.underload_tries if self.underload_tries > 0 else -1)
        return self._actions(s, out_vm[:count], out_dst[:count])

    def _arrays(self, s: Snapshot) -> tuple[Hosts, Vms, np.ndarray, np.ndarray]:
        n_hosts, n_vms = len(s.host_names), len(s.vm_names)
        speed = s.host_core_speed if s.host_core_speed.size else np.ones(n_hosts)
        table = (s.host_power_table_watts if s.host_power_table_watts.shape[0] == n_hosts
                 else np.tile(_DEFAULT_TABLE, (n_hosts, 1)))
        placed = s.vm_host >= 0
        counts = np.bincount(s.vm_host[placed], minlength=n_hosts)
        width = min(max(n_vms, 1), int(counts.max(initial=0)) + self.list_room)
        history = max(1, s.host_history_len.max(initial=0) + 1) if self.detector == MHOD else 0
        hs = new_hosts(np.ascontiguousarray(speed, np.float64), np.ascontiguousarray(table, np.float64), width,
                       history, total=np.ascontiguousarray(s.host_cores, np.float64))
        order = np.flatnonzero(placed)
        order = order[np.argsort(s.vm_host[order], kind="stable")]  # VM lists in VM order per host
        starts = np.concatenate(([0], np.cumsum(counts)))
        slot = np.arange(order.size) - starts[s.vm_host[order]]
        hs.vms[s.vm_host[order], slot] = order
        hs.n[:] = counts
        # a host without VMs has nothing requested (CloudSim: utilisation 0, "switched off", never an
        # underload target), whatever it ran earlier in the interval whose mean host_load_now may be
        hs.util[:] = np.where((s.host_state == ON) & (counts > 0), s.host_load_now, 0.0)
        if self.detector == MHOD:
            self._host_history(s, hs)
        size = s.vm_size if s.vm_size.size else np.ones(n_vms)
        vs = new_vms(np.ascontiguousarray(size, np.float64), s.vm_mem_mib * (_MIB / 1e6), np.zeros((n_vms, 1)))
        vs.demand[:] = s.vm_load_now
        if s.vm_load_history.shape[0] == n_vms and s.vm_load_history.shape[1]:
            k = min(HISTORY_LENGTH, s.vm_load_history.shape[1])
            vs.hist[:, :k] = s.vm_load_history[:, :k] / np.where(size > 0, size, 1.0)[:, None]
            vs.hlen[:] = np.minimum(s.vm_history_len, k)
        kinds = host_kinds(hs.pe_mips, hs.table)
        return hs, vs, kinds, s.host_state == FAILED

    @staticmethod
    def _host_history(s: Snapshot, hs: Hosts) -> None:
        """MHOD's input: each host's own utilisation, oldest first, as the engine records it (round 0)."""
        if s.host_load_history.shape[0] != len(s.host_names):
            return
        k = s.host_load_history.shape[1]
        for h in np.flatnonzero(s.host_history_len > 0):
            n = min(int(s.host_history_len[h]), k, hs.uhist.shape[1])
            hs.uhist[h, :n] = np.minimum(1.0, s.host_load_history[h, :n][::-1] / s.host_cores[h])
            hs.ulen[h] = n
            hs.utick[h] = 0  # the newest value is this round's: MHOD takes it as "now", not as the past

    def _actions(self, s: Snapshot, out_vm: np.ndarray, out_dst: np.ndarray) -> Plan:
        final: dict[int, int] = {}
        for v, d in zip(out_vm.tolist(), out_dst.tolist(), strict=True):
            final[v] = d  # a VM moved twice in the round goes straight to its last host
        actions: list[Action] = []
        target = s.vm_host.copy()
        for v, d in final.items():
            if s.vm_busy[v] or d == s.vm_host[v] or s.vm_host[v] < 0:
                continue
            target[v] = d
            actions.append(Migrate(s.vm_names[v], s.host_names[s.vm_host[v]], s.host_names[d], s.method, self.name))
        placed = target >= 0
        counts = np.bincount(target[placed], minlength=len(s.host_names))
        empty = np.flatnonzero((s.host_state == ON) & (counts == 0))
        actions += [Suspend(s.host_names[h], "empty") for h in empty]
        return Plan(tuple(actions), {"migrations_planned": float(len(actions) - empty.size)})
