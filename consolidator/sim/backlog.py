"""Work-conserving guests: CPU work arrives, waits in a per-VM FIFO backlog, and is served (DESIGN §2).

Work is counted in integer units of ``1 / UNITS_PER_CORE_S`` core·s, so that served + backlog = arrived
holds exactly, tick after tick, whatever the floating-point rates were.

Extra delay of work (docs/models.md): a unit of work that arrives during tick k and is served during
tick j waited ``(j − k) · tick_s``; work served in the tick it arrived in waited 0. Within a VM work is
served first come, first served. The mean and the 95th percentile are weighted by work (core·s), and
the mean equals Little's law: (Σ over tick ends of the backlog) · tick_s / work served.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

UNITS_PER_CORE_S = 1_000_000  # 1 µcore·s: exact integers up to 9·10^12 core·s


class Accounting(enum.Enum):
    """What happens to CPU a VM wanted and did not get."""

    WORK_CONSERVING = "work-conserving"  # it waits in the VM's backlog (DESIGN §2, the default)
    LOST_CPU = "lost-cpu"  # it is dropped and counted as unserved (legacy; for comparison only)


def to_units(core_s: FloatArray) -> IntArray:
    return np.rint(np.asarray(core_s, dtype=np.float64) * UNITS_PER_CORE_S).astype(np.int64)


def to_core_s(units: int | np.integer | IntArray) -> float:
    return float(np.sum(units)) / UNITS_PER_CORE_S


@dataclass(frozen=True)
class GuestModel:
    """How guests treat CPU work (the scenario's ``[guests]`` section)."""

    accounting: Accounting = Accounting.WORK_CONSERVING
    task_mean_s: float = 0.02  # Poisson tasks of exponential size (sim.workload.PoissonTasks); 0: fluid
    drain_limit_s: float = 3600.0  # after the duration, run at most this long for the backlogs to drain


@dataclass(frozen=True, slots=True)
class DelayStats:
    mean_s: float
    p95_s: float
    max_s: float


class Backlog:
    """Per-VM work accounting for one run: arrivals, demand bounded by vCPUs, service, FIFO delays.

    Call ``demand(arrived)`` then ``serve(served)`` once per tick.
    """

    def __init__(self, vcpus: FloatArray, tick_s: float, accounting: Accounting) -> None:
        self.accounting = accounting
        self.tick_s = tick_s
        self.cap_units = to_units(np.asarray(vcpus, dtype=np.float64) * tick_s)  # most a VM can run per tick
        n = len(self.cap_units)
        self.arrived = np.zeros(n, dtype=np.int64)  # cumulative, units
        self.served = np.zeros(n, dtype=np.int64)
        self.dropped = np.zeros(n, dtype=np.int64)  # LOST_CPU only
        self._backlog = np.zeros(n, dtype=np.int64)  # kept by itself: served + backlog = arrived is a check
        self.backlog_tick_ends = 0  # Σ over tick ends of the total backlog, units (Little's law)
        self.ticks = 0
        self._demand = np.zeros(n, dtype=np.int64)
        self._fifo = _FifoDelays(n)

    @property
    def backlog(self) -> IntArray:
        """Units waiting at each VM (a read-only view)."""
        view = self._backlog.view()
        view.flags.writeable = False
        return view

    def demand(self, arrived_units: IntArray) -> FloatArray:
        """Record this tick's arrivals; return each VM's demand (cores) = new work + backlog, ≤ its vCPUs."""
        if self.accounting is Accounting.LOST_CPU:
            self.dropped += self._backlog  # what was not served last tick is gone
            self._backlog[:] = 0
        self.arrived += arrived_units
        self._backlog += arrived_units
        if self.accounting is Accounting.WORK_CONSERVING:
            self._fifo.arrive(arrived_units)
        self._demand = np.minimum(self._backlog, self.cap_units)
        return self._demand / (UNITS_PER_CORE_S * self.tick_s)

    def serve(self, served_cores: FloatArray) -> IntArray:
        """Account the CPU each VM was served this tick (cores); return the units served."""
        units = np.minimum(self._demand, to_units(np.asarray(served_cores) * self.tick_s))
        units = np.maximum(units, 0)
        self.served += units
        self._backlog -= units
        self.ticks += 1
        if self.accounting is Accounting.WORK_CONSERVING:
            self._fifo.serve(units, self._backlog)
            self.backlog_tick_ends += int(self._backlog.sum())
        return units

    def drained(self) -> bool:
        return not bool(self._backlog.any())

    def delays(self) -> DelayStats:
        return self._fifo.stats(self.tick_s)

    def delay_histogram(self) -> IntArray:
        """Units of work served by extra delay in ticks (index = ticks waited)."""
        return np.trim_zeros(self._fifo.hist, "b")


class _FifoDelays:
    """Histogram of work by extra delay (ticks): each VM's backlog as a FIFO of per-tick arrivals.

    Serving consumes each VM's oldest arrivals first; every (VM, arrival tick) pair is consumed once, so
    the cost is amortised O(VMs) per tick, however old a backlog grows.
    """

    def __init__(self, n: int) -> None:
        self.ring = np.zeros((8, n), dtype=np.int64)  # units still waiting, by arrival tick (mod size)
        self.head = np.zeros(n, dtype=np.int64)  # each VM's oldest tick with work still waiting
        self.now = -1
        self.hist = np.zeros(16, dtype=np.int64)  # units of work by delay in ticks

    def arrive(self, units: IntArray) -> None:
        self.now += 1
        if self.now - int(self.head.min()) >= len(self.ring):
            self._grow()
        self.ring[self.now % len(self.ring)] = units

    def _grow(self) -> None:
        old, size = self.ring, len(self.ring)
        self.ring = np.zeros((2 * size, old.shape[1]), dtype=np.int64)
        for k in range(int(self.head.min()), self.now):
            self.ring[k % (2 * size)] = old[k % size]

    def serve(self, units: IntArray, backlog: IntArray) -> None:
        size = len(self.ring)
        # A VM that began the tick with nothing waiting is served from this tick's arrivals: no delay.
        fresh = self.head == self.now
        current = self.ring[self.now % size]  # a view: updated in place
        if fresh.all():  # nothing was waiting anywhere: every unit served now arrived now
            current -= units
            self.hist[0] += int(units.sum())
            self.head[backlog == 0] = self.now + 1
            return
        current -= np.where(fresh, units, 0)
        need = np.where(fresh, 0, units)
        active = np.flatnonzero(need)
        delays: list[IntArray] = [np.zeros(1, dtype=np.int64)]
        amounts: list[IntArray] = [np.array([int(units.sum()) - int(need.sum())])]
        wanted = need[active]
        while active.size:
            oldest = self.head[active]
            rows = oldest % size
            avail = self.ring[rows, active]
            take = np.minimum(avail, wanted)
            self.ring[rows, active] = avail - take
            delays.append(self.now - oldest)
            amounts.append(take)
            self.head[active[avail == take]] += 1  # that tick's arrivals are all served
            wanted = wanted - take
            more = wanted > 0
            active, wanted = active[more], wanted[more]
        self._add(np.concatenate(delays), np.concatenate(amounts))
        self.head[backlog == 0] = self.now + 1

    def _add(self, delay_ticks: IntArray, units: IntArray) -> None:
        top = int(delay_ticks.max()) + 1
        if top > len(self.hist):
            grown = np.zeros(max(top, 2 * len(self.hist)), dtype=np.int64)
            grown[:len(self.hist)] = self.hist
            self.hist = grown
        np.add.at(self.hist, delay_ticks, units)

    def stats(self, tick_s: float) -> DelayStats:
        total = int(self.hist.sum())
        if total == 0:
            return DelayStats(0.0, 0.0, 0.0)
        ticks = np.arange(len(self.hist))
        cum = np.cumsum(self.hist)
        p95 = int(np.searchsorted(cum, 0.95 * total))
        mean = float((ticks * self.hist).sum()) / total
        return DelayStats(mean * tick_s, p95 * tick_s, float(np.flatnonzero(self.hist)[-1]) * tick_s)
