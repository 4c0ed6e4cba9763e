"""The control loop: Load Monitor -> Relocation Planner -> VM Controller, driven by a runner.

A runner (the simulator in virtual time, or an asyncio runner on the wall clock) records each
period's samples in ``loop.monitor``, then calls ``loop.tick(now)`` (or ``loop.propose(now)``, to pass
the plan through its own gate before ``controller.apply``); side effects come back through
``loop.on_event``. The loop never sleeps and never reads a clock.

A policy that plans at an interval (``interval_s``, CloudSim's scheduling interval) is asked on the
grid of its multiples (at the first period on or after each; a late period does not shift later
rounds; the first round comes after one whole interval, as CloudSim's first optimisation does), and
sees the loads of its interval: the snapshot's latest loads are their means over the interval's
periods (the newest value of the load history), as CloudSim's utilisation at a scheduling interval is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from consolidator.control.controller import VMController
from consolidator.control.monitor import LoadMonitor
from consolidator.control.ports import ClusterPort, SampleSink
from consolidator.domain.actions import Plan
from consolidator.domain.events import Event
from consolidator.domain.snapshot import Snapshot
from consolidator.domain.types import HostSpec, MigrationMethod, PowerState, Role, VmSpec
from consolidator.models.power import load_points
from consolidator.policies.base import Policy, history_length, plan_interval_s


class ControlLoop:
    def __init__(
        self,
        monitor: LoadMonitor,
        controller: VMController,
        policy: Policy,
        method: MigrationMethod,
    ) -> None:
        self.monitor = monitor
        self.controller = controller
        self.policy = policy
        self.method = method
        hosts = controller.hosts
        self._is_warehouse = np.array([h.role is Role.WAREHOUSE for h in hosts], dtype=bool)
        self._cores = np.array([h.cores for h in hosts], dtype=np.float64)
        self._mem = np.array([h.mem_mib for h in hosts], dtype=np.float64)
        self._vm_mem = np.array([v.mem_mib for v in controller.vms], dtype=np.float64)
        self._nic = np.array([h.nic_bytes_per_s for h in hosts], dtype=np.float64)
        self._dirty_full = np.array([v.dirty_bytes_per_s_at_full / v.vcpu_speed for v in controller.vms],
                                    dtype=np.float64)
        self.plans = 0
        self.actions_taken = 0
        self._interval_s = plan_interval_s(policy)
        self.next_plan_s: float | None = None  # the grid's next round (interval planners); None: not yet set
        self._core_speed = np.array([h.core_speed for h in hosts], dtype=np.float64)
        self._vm_size = np.array([v.vcpus * v.vcpu_speed for v in controller.vms], dtype=np.float64)
        self._tables = np.array([load_points(h.power) for h in hosts], dtype=np.float64).reshape(len(hosts), 11)

    def snapshot(self, now: float) -> Snapshot:
        m, c = self.monitor, self.controller
        host_hist, host_len, vm_hist, vm_len = m.history()
        host_now, vm_now = m.host_now.copy(), m.vm_now.copy()
        if self._interval_s is not None and m.history_length and vm_len.size and vm_len[0] > 0:
            host_now, vm_now = host_hist[:, 0].copy(), vm_hist[:, 0].copy()  # the interval's means
        return Snapshot(
            t_s=now,
            method=self.method,
            host_names=m.host_names,
            host_is_warehouse=self._is_warehouse,
            host_state=c.host_state.copy(),
            host_cores=self._cores,
            host_mem_mib=self._mem,
            host_load_avg=m.host_avg(),
            host_load_now=host_now,
            host_load_short=m.host_short(),
            host_overhead_now=m.host_overhead_now(),
            vm_names=m.vm_names,
            vm_host=c.planned_host(),
            vm_runs_on=c.runs_on(),
            vm_mem_mib=self._vm_mem,
            vm_load_avg=m.vm_avg(),
            vm_load_now=vm_now,
            vm_load_short=m.vm_short(),
            vm_busy=c.busy(),
            vm_move_src=c.move_sources(),
            vm_last_move_end_s=c.last_end.copy(),
            vm_dirty_bytes_per_s=self._dirty_rates(),
            host_nic_bytes_per_s=self._nic,
            vm_load_history=vm_hist,
            vm_history_len=vm_len,
            host_load_history=host_hist,
            host_history_len=host_len,
            host_core_speed=self._core_speed,
            vm_size=self._vm_size,
            host_power_table_watts=self._tables,
        )

    def _dirty_rates(self) -> np.ndarray:
        """Measured dirty rates where the hypervisor reported one, else served load × the spec's rate."""
        m = self.monitor
        return np.where(np.isnan(m.vm_dirty_now), m.vm_now * self._dirty_full, m.vm_dirty_now)

    def tick(self, now: float) -> Plan:
        """Close the sampling period, plan on the new snapshot (at the policy's interval, if it has one),
        and act on the plan."""
        proposed = self.propose(now)
        if proposed is None:
            return Plan()
        plan = proposed[1]
        self.actions_taken += len(self.controller.apply(plan, now))
        return plan

    def propose(self, now: float) -> tuple[Snapshot, Plan] | None:
        """Close the sampling period; when a round is due (every period, or on the policy's interval
        grid), end the interval's load history and return the snapshot and the policy's plan, not
        applied. None: no round this period."""
        self.monitor.close_period(now)
        if self._interval_s is not None:
            step = self._interval_s
            if self.next_plan_s is None:  # the first round ends the first whole interval (CloudSim's first)
                self.next_plan_s = max(step, math.ceil(now / step - 1e-9) * step)
            if now < self.next_plan_s - 1e-9:
                return None
            while self.next_plan_s <= now + 1e-9:  # periods that came late do not move the grid
                self.next_plan_s += step
        self.monitor.push_history()
        snap = self.snapshot(now)
        plan = self.policy.plan(snap)
        self.plans += 1
        return snap, plan

    def on_event(self, event: Event) -> None:
        self.controller.on_event(event)
        self.monitor.sink.write_event(event)


def build_loop(
    hosts: Sequence[HostSpec],
    vms: Sequence[VmSpec],
    placement: Mapping[str, str],
    policy: Policy,
    cluster: ClusterPort,
    sink: SampleSink,
    method: MigrationMethod,
    power_states: Mapping[str, PowerState],
    window_periods: int = 10,
    max_moves_per_host: int | None = None,
) -> ControlLoop:
    # an interval planner keeps at least its interval's mean (its snapshot's latest loads)
    keep = max(history_length(policy), 1 if plan_interval_s(policy) is not None else 0)
    monitor = LoadMonitor([h.name for h in hosts], [v.name for v in vms], sink, window_periods,
                          history_length=keep)
    controller = VMController(hosts, vms, placement, cluster, power_states, max_moves_per_host)
    return ControlLoop(monitor, controller, policy, method)
