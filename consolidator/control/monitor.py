"""Load Monitor: every host and VM sample, moving averages over a window, latest values in memory.

Samples are written through to a ``SampleSink`` (the run database). Averages live in ring buffers of
one row per period, so the planner reads them in O(hosts + VMs) without touching the database.
A VM or host that sent nothing in a period keeps its previous value (and ``stale_periods`` grows).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from consolidator.control.ports import SampleSink
from consolidator.domain.samples import HostSample, VmSample

FloatArray = npt.NDArray[np.float64]


class RingAverage:
    """Mean of the last ``window`` rows of a vector signal."""

    def __init__(self, width: int, window: int) -> None:
        self._rows = np.zeros((window, width), dtype=np.float64)
        self._window = window
        self._count = 0
        self._next = 0
        self._sum = np.zeros(width, dtype=np.float64)

    def push(self, row: FloatArray) -> None:
        old = self._rows[self._next]
        if self._count == self._window:
            self._sum -= old
        else:
            self._count += 1
        self._rows[self._next] = row
        self._sum += row
        self._next = (self._next + 1) % self._window

    def mean(self) -> FloatArray:
        if self._count == 0:
            return np.zeros_like(self._sum)
        return self._sum / self._count


class LoadMonitor:
    """Collects samples; ``close_period(t)`` folds the latest values into the window averages."""

    def __init__(
        self,
        host_names: Sequence[str],
        vm_names: Sequence[str],
        sink: SampleSink,
        window_periods: int = 10,
        short_periods: int = 3,
        history_length: int = 0,
    ) -> None:
        if window_periods < 1 or short_periods < 1:
            raise ValueError("window_periods and short_periods must be >= 1")
        if history_length < 0:
            raise ValueError("history_length must be >= 0")
        self.host_names = tuple(host_names)
        self.vm_names = tuple(vm_names)
        self.host_index = {name: i for i, name in enumerate(self.host_names)}
        self.vm_index = {name: i for i, name in enumerate(self.vm_names)}
        self.sink = sink
        self.host_now = np.zeros(len(self.host_names))
        self.vm_now = np.zeros(len(self.vm_names))
        self.vm_host_now = np.full(len(self.vm_names), -1, dtype=np.int64)  # host of the last sample
        self.vm_dirty_now = np.full(len(self.vm_names), np.nan)
        self.host_watts_now = np.full(len(self.host_names), np.nan)
        self.stale_periods = np.zeros(len(self.host_names) + len(self.vm_names), dtype=np.int64)
        self._fresh = np.zeros(len(self.host_names) + len(self.vm_names), dtype=bool)
        self._host_avg = RingAverage(len(self.host_names), window_periods)
        self._vm_avg = RingAverage(len(self.vm_names), window_periods)
        # a short window beside it: a step in load shows within a few periods, one noisy sample does not
        self._host_short = RingAverage(len(self.host_names), short_periods)
        self._vm_short = RingAverage(len(self.vm_names), short_periods)
        self.last_period_s: float | None = None
        # Load history at the planning interval (policies that ask for it): newest first, each value the
        # mean of the periods since the previous planning round.
        self.history_length = history_length
        self._hist_host = np.zeros((len(self.host_names), history_length))
        self._hist_vm = np.zeros((len(self.vm_names), history_length))
        self._hist_count = 0
        self._since_host = np.zeros(len(self.host_names))
        self._since_vm = np.zeros(len(self.vm_names))
        self._since_periods = 0

    # -- ingestion -------------------------------------------------------------------------------
    def record_host(self, sample: HostSample) -> None:
        i = self.host_index[sample.host]
        self.host_now[i] = sample.cpu_load
        if sample.watts is not None:
            self.host_watts_now[i] = sample.watts
        self._fresh[i] = True
        self.sink.write_host_samples((sample,))

    def record_vm(self, sample: VmSample) -> None:
        i = self.vm_index[sample.vm]
        self.vm_now[i] = sample.cpu_load
        self.vm_host_now[i] = self.host_index[sample.host]
        if sample.dirty_bytes_per_s is not None:
            self.vm_dirty_now[i] = sample.dirty_bytes_per_s
        self._fresh[len(self.host_names) + i] = True
        self.sink.write_vm_samples((sample,))

    def record_arrays(
        self,
        t_s: float,
        host_loads: FloatArray,
        vm_loads: FloatArray,
        vm_hosts: npt.NDArray[np.int64],
        store: bool = True,
    ) -> None:
        """Bulk ingestion of one period for every host and VM (the simulator's path)."""
        self.host_now[:] = host_loads
        self.vm_now[:] = vm_loads
        self.vm_host_now[:] = vm_hosts
        self._fresh[:] = True
        if store:
            hosts = self.host_names
            self.sink.write_host_samples(
                [HostSample(t_s, hosts[i], float(host_loads[i])) for i in range(len(hosts))]
            )
            self.sink.write_vm_samples(
                [
                    VmSample(t_s, name, hosts[vm_hosts[i]] if vm_hosts[i] >= 0 else "", float(vm_loads[i]))
                    for i, name in enumerate(self.vm_names)
                ]
            )

    def close_period(self, t_s: float) -> None:
        """End the current sampling period: push the latest values into the averaging windows."""
        self.stale_periods = np.where(self._fresh, 0, self.stale_periods + 1)
        self._fresh[:] = False
        self._host_avg.push(self.host_now)
        self._vm_avg.push(self.vm_now)
        self._host_short.push(self.host_now)
        self._vm_short.push(self.vm_now)
        self.last_period_s = t_s
        if self.history_length:
            self._since_host += self.host_now
            self._since_vm += self.vm_now
            self._since_periods += 1

    def push_history(self) -> None:
        """End a planning interval: the mean load of its periods becomes the newest history value."""
        if not self.history_length or self._since_periods == 0:
            return
        for hist, since in ((self._hist_host, self._since_host), (self._hist_vm, self._since_vm)):
            hist[:, 1:] = hist[:, :-1]  # NumPy buffers overlapping slices
            hist[:, 0] = since / self._since_periods
            since[:] = 0.0
        self._since_periods = 0
        self._hist_count = min(self._hist_count + 1, self.history_length)

    def history(self) -> tuple[FloatArray, npt.NDArray[np.int64], FloatArray, npt.NDArray[np.int64]]:
        """Host loads, their lengths, VM loads, their lengths: newest first (copies)."""
        host_len = np.full(len(self.host_names), self._hist_count, dtype=np.int64)
        vm_len = np.full(len(self.vm_names), self._hist_count, dtype=np.int64)
        return self._hist_host.copy(), host_len, self._hist_vm.copy(), vm_len

    def carry_over(self, old: LoadMonitor) -> None:
        """Take the averaging windows and latest values of the hosts and VMs ``old`` also knows (a
        cluster whose VM set changed keeps its history; new VMs start empty)."""
        for mine, theirs, names, old_names in (
            (self._host_avg, old._host_avg, self.host_names, old.host_index),
            (self._vm_avg, old._vm_avg, self.vm_names, old.vm_index),
            (self._host_short, old._host_short, self.host_names, old.host_index),
            (self._vm_short, old._vm_short, self.vm_names, old.vm_index),
        ):
            pairs = [(i, old_names[n]) for i, n in enumerate(names) if n in old_names]
            if not pairs or mine._rows.shape[0] != theirs._rows.shape[0]:
                continue
            new_i, old_i = (list(x) for x in zip(*pairs, strict=True))
            mine._rows[:, new_i] = theirs._rows[:, old_i]
            mine._sum[new_i] = theirs._sum[old_i]
            mine._count, mine._next = theirs._count, theirs._next
        for i, name in enumerate(self.vm_names):
            j = old.vm_index.get(name)
            if j is not None:
                self.vm_now[i], self.vm_host_now[i] = old.vm_now[j], old.vm_host_now[j]
        for i, name in enumerate(self.host_names):
            j = old.host_index.get(name)
            if j is not None:
                self.host_now[i] = old.host_now[j]
        if self.history_length == old.history_length and self.history_length:
            tables = ((self._hist_host, old._hist_host, self.host_names, old.host_index),
                      (self._hist_vm, old._hist_vm, self.vm_names, old.vm_index))
            for mine_h, theirs_h, own_names, known in tables:
                for i, name in enumerate(own_names):
                    if name in known:
                        mine_h[i] = theirs_h[known[name]]
            self._hist_count = old._hist_count

    # -- queries ----------------------------------------------------------------------------------
    def host_avg(self) -> FloatArray:
        return self._host_avg.mean()

    def vm_avg(self) -> FloatArray:
        return self._vm_avg.mean()

    def host_short(self) -> FloatArray:
        return self._host_short.mean()

    def vm_short(self) -> FloatArray:
        return self._vm_short.mean()

    def host_overhead_now(self) -> FloatArray:
        """Host CPU not accounted to any VM in the latest period (virtualisation overhead), ≥ 0."""
        placed = self.vm_host_now >= 0
        vm_sum = np.bincount(self.vm_host_now[placed], weights=self.vm_now[placed],
                             minlength=len(self.host_names))
        return np.maximum(0.0, self.host_now - vm_sum)

    def latest_host(self, name: str) -> float:
        return float(self.host_now[self.host_index[name]])

    def average_host(self, name: str) -> float:
        return float(self.host_avg()[self.host_index[name]])

    def latest_vm(self, name: str) -> float:
        return float(self.vm_now[self.vm_index[name]])

    def average_vm(self, name: str) -> float:
        return float(self.vm_avg()[self.vm_index[name]])
