"""VM CPU load over time (explicit step schedules, the paper's random active/idle generator) and the work
that load brings (Poisson tasks).

A VM's load is the rate at which CPU work arrives, in cores; ``PoissonTasks`` turns it into work per
tick the way the paper's guest generator (and ours, agent/guest/workload.c) does. The load tables are
held as one sorted table of (time, vm, load) changes, applied tick by tick with ``searchsorted``;
thousands of VMs cost one vectorised assignment per tick.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RandomModes:
    """The complex scenario (paper IV-C): each VM switches mode after U(switch_s) seconds, to active
    with ``p_active`` (load U(active)) or idle (load U(idle))."""

    p_active: float = 0.75
    switch_s: tuple[float, float] = (30.0, 60.0)
    active: tuple[float, float] = (0.7, 1.0)
    idle: tuple[float, float] = (0.0, 0.3)

    def generate(self, n_vms: int, duration_s: float, rng: np.random.Generator) -> StepLoads:
        times: list[np.ndarray] = []
        vms: list[np.ndarray] = []
        loads: list[np.ndarray] = []
        t = np.zeros(n_vms)
        alive = np.arange(n_vms)
        while alive.size:
            active = rng.random(alive.size) < self.p_active
            lo = np.where(active, self.active[0], self.idle[0])
            hi = np.where(active, self.active[1], self.idle[1])
            times.append(t[alive].copy())
            vms.append(alive.copy())
            loads.append(rng.uniform(lo, hi))
            t[alive] += rng.uniform(self.switch_s[0], self.switch_s[1], alive.size)
            alive = alive[t[alive] < duration_s]
        return StepLoads.from_arrays(n_vms, np.concatenate(times), np.concatenate(vms), np.concatenate(loads))


@dataclass(frozen=True)
class PoissonTasks:
    """Tasks arrive as a Poisson process at rate load / ``task_mean_s``, each needing an exponential amount
    of CPU (mean ``task_mean_s`` core·s): the paper's generator (IV-A) and agent/guest/workload.c
    (wl.task_ms, 20 ms). ``task_mean_s = 0`` gives fluid work: exactly load × tick per tick."""

    task_mean_s: float = 0.02

    def work_core_s(self, load: np.ndarray, dt: float, rng: np.random.Generator) -> np.ndarray:
        """Work (core·s) arriving at each VM during one tick of ``dt`` seconds at ``load`` cores."""
        if self.task_mean_s <= 0:
            return load * dt
        tasks = rng.poisson(load * (dt / self.task_mean_s))
        work = np.zeros(load.shape)
        some = np.flatnonzero(tasks)
        work[some] = rng.standard_gamma(tasks[some]) * self.task_mean_s  # the sum of n exponentials
        return work


class StepLoads:
    """Piecewise-constant loads: VM ``vm[i]`` takes ``load[i]`` from ``t[i]`` on."""

    def __init__(self, n_vms: int, t: np.ndarray, vm: np.ndarray, load: np.ndarray) -> None:
        order = np.lexsort((vm, t))
        self.t = t[order]
        self.vm = vm[order].astype(np.int64)
        self.load = load[order]
        self.current = np.zeros(n_vms)
        self._next = 0

    @classmethod
    def from_arrays(cls, n_vms: int, t: np.ndarray, vm: np.ndarray, load: np.ndarray) -> StepLoads:
        return cls(n_vms, np.asarray(t, float), np.asarray(vm), np.asarray(load, float))

    @classmethod
    def from_schedules(cls, schedules: Sequence[Sequence[tuple[float, float]]]) -> StepLoads:
        rows = [(t, i, load) for i, steps in enumerate(schedules) for t, load in steps]
        if not rows:
            return cls(len(schedules), np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0))
        t, vm, load = (np.asarray(col) for col in zip(*rows, strict=True))
        return cls(len(schedules), t.astype(float), vm, load.astype(float))

    def at(self, t_s: float) -> np.ndarray:
        """Loads in force at ``t_s`` (call with non-decreasing times)."""
        end = int(np.searchsorted(self.t, t_s, side="right"))
        if end > self._next:
            sl = slice(self._next, end)
            self.current[self.vm[sl]] = self.load[sl]  # later rows win: lexsort keeps time order
            self._next = end
        return self.current

    def schedule_of(self, vm: int) -> list[tuple[float, float]]:
        mask = self.vm == vm
        return list(zip(self.t[mask].tolist(), self.load[mask].tolist(), strict=True))


class TraceLoads:
    """Loads from a trace: VM ``v`` follows row ``row[v]`` of ``fraction`` (steps of ``interval_s``; the
    share of the VM's full load) scaled by ``size[v]``. One row may serve many VMs (a fleet larger than
    the trace), so a million VMs cost a million-entry index, not a million rows of schedule."""

    def __init__(self, fraction: np.ndarray, interval_s: float, row: np.ndarray, size: np.ndarray) -> None:
        self.fraction = np.asarray(fraction, dtype=np.float64)
        self.interval_s = float(interval_s)
        self.row = np.asarray(row, dtype=np.int64)
        self.size = np.asarray(size, dtype=np.float64)
        self.current = np.zeros(self.row.size)
        self._step = -1

    def fresh(self) -> TraceLoads:
        """The same table, rewound (one per run)."""
        return TraceLoads(self.fraction, self.interval_s, self.row, self.size)

    def at(self, t_s: float) -> np.ndarray:
        """Loads in force at ``t_s``: the trace's step ``floor(t / interval)`` (the last one after its end)."""
        step = min(int(t_s // self.interval_s + 1e-9), self.fraction.shape[1] - 1)
        if step != self._step:
            np.multiply(self.fraction[self.row, step], self.size, out=self.current)
            self._step = step
        return self.current
