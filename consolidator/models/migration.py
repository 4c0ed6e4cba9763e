"""Live-migration models: precopy rounds, postcopy, and hybrid, stepped by the simulator.

Precopy (Clark et al. 2005; DESIGN §4): a first pass sends every touched page; each later round
resends what the guest dirtied during the previous one (bounded by its writable working set); when
the remaining dirty set fits in ``bandwidth × downtime_limit`` the guest stops and the rest is copied.
A guest that dirties as fast as the link never converges: after ``timeout_s`` the migration is
cancelled (the guest stays at the source) or switched to postcopy.

Postcopy (Hirofuchi et al. 2010; QEMU postcopy-ram): the device state moves first (a short pause),
the guest resumes at the destination, and every not-yet-sent page crosses the link exactly once at
the link rate, so the time is ≈ touched RAM / bandwidth whatever the guest does. Meanwhile the guest
stalls on remote faults: touching a missing page of its working set costs ``postcopy_fault_s``; with
``p`` the share of time the guest runs, faults/s = p · pages_written/s · missing share of the working
set and stall = faults/s · fault_s = 1 − p, hence p = 1 / (1 + pages/s · missing · fault_s).

Hybrid: ``hybrid_rounds`` precopy passes, then postcopy for what is still dirty.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from consolidator.domain.types import MigrationMethod, MigrationOutcome


class OnTimeoutPolicy(enum.Enum):
    CANCEL = "cancel"
    POSTCOPY = "postcopy"


class DirtyModel(enum.Enum):
    """How writes become a dirty set during a round of duration t at write rate r over working set w."""

    UNIFORM = "uniform"  # writes land on random pages: w·(1 − e^(−r·t/w)) (calibrated default)
    LINEAR = "linear"  # every write dirties a new page until the set is full: min(w, r·t) (textbook)


class Phase(enum.Enum):
    SETUP = "setup"
    PRECOPY = "precopy"
    POSTCOPY = "postcopy"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class MigrationParams:
    """Model parameters. The link rate is the paper's; the rest were fitted to real QEMU 10 migrations
    over a 120 MB/s shaped link (docs/calibration.md, `consolidator calibrate`)."""

    bandwidth_bytes_per_s: float = 120e6  # link rate; paper IV-B: ≈ 120 MB/s migration network
    link_efficiency: float = 0.945  # payload share of the link rate: fit 113.4 MB/s on 120 (TCP framing 4.4 %)
    downtime_limit_s: float = 0.3  # QEMU's default downtime-limit (qemu-kvm of 2011: 0.03)
    setup_s: float = 0.05  # connection and capability set-up before pages move (fit: 0.040-0.085 s)
    switch_downtime_s: float = 0.01  # postcopy's pause while device state moves (measured median 9 ms)
    timeout_s: float = 60.0  # a precopy still running after this has not converged
    on_timeout: OnTimeoutPolicy = OnTimeoutPolicy.CANCEL
    hybrid_rounds: int = 1  # hybrid: precopy passes before postcopy takes over
    # vCPU stall per remote fault: QEMU 10 with postcopy-preempt, as the agent runs it (calibration grid
    # of 2026-12-04, docs/calibration.md: median 2.25 ms per page request; vanilla postcopy 27.2 ms)
    postcopy_fault_s: float = 0.00225
    page_bytes: int = 4096
    dirty_model: DirtyModel = DirtyModel.UNIFORM  # calibration: max error 15 % (uniform) vs 59 % (linear)

    def __post_init__(self) -> None:
        if self.bandwidth_bytes_per_s <= 0 or not 0 < self.link_efficiency <= 1:
            raise ValueError("bandwidth_bytes_per_s must be positive and link_efficiency in (0, 1]")
        if self.downtime_limit_s < 0 or self.timeout_s <= 0 or self.hybrid_rounds < 1:
            raise ValueError("downtime_limit_s >= 0, timeout_s > 0 and hybrid_rounds >= 1 are required")


@dataclass(frozen=True, slots=True)
class MigrationEstimate:
    duration_s: float
    bytes_sent: float
    downtime_s: float
    rounds: int
    converged: bool
    switched_to_postcopy: bool
    guest_stall_s: float  # guest time lost to remote faults (postcopy)


class MigrationProcess:
    """One migration in flight. ``advance`` moves it by ``dt`` at the given link rate and dirty rate."""

    __slots__ = (
        "method", "params", "mem_bytes", "wws_bytes", "phase", "elapsed_s", "bytes_sent",
        "downtime_s", "rounds", "round_left", "dirty", "postcopy_left", "missing_share",
        "switched", "outcome", "stall_s", "end_offset_s", "_setup_left", "touched_bytes",
    )

    def __init__(
        self,
        method: MigrationMethod,
        mem_bytes: float,
        wws_bytes: float,
        params: MigrationParams,
        touched_bytes: float | None = None,
    ) -> None:
        if method is MigrationMethod.INSTANT:
            raise ValueError("INSTANT moves are not modelled as a process")
        self.method = method
        self.params = params
        self.mem_bytes = float(mem_bytes)
        self.wws_bytes = float(min(wws_bytes, mem_bytes))
        touched = self.mem_bytes if touched_bytes is None else float(min(touched_bytes, mem_bytes))
        self.touched_bytes = touched
        self.phase = Phase.SETUP
        self.elapsed_s = 0.0
        self.bytes_sent = 0.0
        self.downtime_s = 0.0
        self.rounds = 0
        self.round_left = touched  # precopy: bytes left in the current pass
        self.dirty = 0.0  # precopy: bytes dirtied since the current pass began
        self.postcopy_left = touched  # postcopy: bytes not yet at the destination
        self.missing_share = 1.0  # postcopy: share of the working set not yet at the destination
        self.switched = False
        self.outcome: MigrationOutcome | None = None
        self.stall_s = 0.0
        self.end_offset_s = 0.0  # when done: how far into the last advance() it ended
        self._setup_left = params.setup_s

    @property
    def done(self) -> bool:
        return self.phase is Phase.DONE

    @property
    def runs_at_destination(self) -> bool:
        """Where the guest executes: the destination once postcopy took over or the move completed."""
        if self.phase is Phase.POSTCOPY:
            return True
        return self.phase is Phase.DONE and self.outcome is MigrationOutcome.COMPLETED

    def advance(self, dt: float, bandwidth_bytes_per_s: float, dirty_bytes_per_s: float) -> float:
        """Run for ``dt`` seconds on a link of ``bandwidth_bytes_per_s``; return the share of that time
        the guest could run (0..1)."""
        bandwidth_bytes_per_s *= self.params.link_efficiency
        t = 0.0
        stall = 0.0
        while t < dt and self.phase is not Phase.DONE:
            step = dt - t
            if self.phase is Phase.SETUP:
                used = min(step, self._setup_left)
                self._setup_left -= used
                if self._setup_left <= 1e-12:
                    self._start_transfer()
            elif self.phase is Phase.PRECOPY:
                used = self._precopy(step, bandwidth_bytes_per_s, dirty_bytes_per_s)
            else:
                used, lost = self._postcopy(step, bandwidth_bytes_per_s, dirty_bytes_per_s)
                stall += lost
            t += used
            self.elapsed_s += used
            if self.done:
                self.end_offset_s = t
        self.stall_s += stall
        return 1.0 - stall / dt if dt > 0 else 1.0

    def _start_transfer(self) -> None:
        if self.method is MigrationMethod.POSTCOPY:
            self._switch_to_postcopy(dirty_left=None)
        else:
            self.phase = Phase.PRECOPY
            self.rounds = 1

    def _switch_to_postcopy(self, dirty_left: float | None) -> None:
        self.phase = Phase.POSTCOPY
        self.switched = self.method is not MigrationMethod.POSTCOPY
        self.downtime_s += self.params.switch_downtime_s
        if dirty_left is not None:  # after precopy: only pages dirtied since their last copy remain
            self.postcopy_left = dirty_left
            self.missing_share = dirty_left / self.wws_bytes if self.wws_bytes > 0 else 0.0
            self.missing_share = min(1.0, self.missing_share)

    def _precopy(self, step: float, bw: float, dirty_rate: float) -> float:
        p = self.params
        time_left = max(0.0, p.timeout_s - self.elapsed_s)
        if time_left <= 0.0:
            self._on_timeout()
            return 0.0
        to_round_end = self.round_left / bw
        used = min(step, to_round_end, time_left)
        self.bytes_sent += bw * used
        self.round_left -= bw * used
        self.dirty = self._dirtied(self.dirty, dirty_rate * used)
        if self.round_left <= 1e-6:
            self._end_of_round(bw)
        return used

    def _dirtied(self, dirty: float, written: float) -> float:
        w = self.wws_bytes
        if w <= 0:
            return 0.0
        if self.params.dirty_model is DirtyModel.LINEAR:
            return min(w, dirty + written)
        return w - (w - dirty) * math.exp(-written / w)

    def _end_of_round(self, bw: float) -> None:
        p = self.params
        if self.dirty <= bw * p.downtime_limit_s:  # converged: stop and copy
            self.downtime_s += self.dirty / bw
            self.bytes_sent += self.dirty
            self.elapsed_s += self.dirty / bw
            self._finish(MigrationOutcome.COMPLETED)
        elif self.method is MigrationMethod.HYBRID and self.rounds >= p.hybrid_rounds:
            self._switch_to_postcopy(dirty_left=self.dirty)
        else:
            self.rounds += 1
            self.round_left, self.dirty = self.dirty, 0.0

    def _on_timeout(self) -> None:
        if self.params.on_timeout is OnTimeoutPolicy.POSTCOPY:
            # pages not yet sent in this pass plus those dirtied since: they overlap, so at most all of RAM
            self._switch_to_postcopy(dirty_left=min(self.touched_bytes, self.round_left + self.dirty))
        else:
            self._finish(MigrationOutcome.CANCELLED)

    def _postcopy(self, step: float, bw: float, dirty_rate: float) -> tuple[float, float]:
        used = min(step, self.postcopy_left / bw)
        pages_per_s = dirty_rate / self.params.page_bytes
        run_share = 1.0 / (1.0 + pages_per_s * self.missing_share * self.params.postcopy_fault_s)
        lost = (1.0 - run_share) * used
        before = self.postcopy_left
        self.postcopy_left -= bw * used
        self.bytes_sent += bw * used
        if before > 0:
            self.missing_share *= max(0.0, self.postcopy_left) / before
        if self.postcopy_left <= 1e-6:
            self._finish(MigrationOutcome.COMPLETED)
        return used, lost

    def _finish(self, outcome: MigrationOutcome) -> None:
        self.phase = Phase.DONE
        self.outcome = outcome


def estimate(
    method: MigrationMethod,
    mem_bytes: float,
    wws_bytes: float,
    dirty_bytes_per_s: float,
    params: MigrationParams,
    touched_bytes: float | None = None,
) -> MigrationEstimate:
    """The model in closed form for a constant dirty rate and bandwidth (calibration, literature mode)."""
    if method is MigrationMethod.INSTANT:
        return MigrationEstimate(0.0, 0.0, 0.0, 0, True, False, 0.0)
    proc = MigrationProcess(method, mem_bytes, wws_bytes, params, touched_bytes)
    bw = params.bandwidth_bytes_per_s
    horizon = params.setup_s + params.timeout_s + 2 * mem_bytes / bw + 1.0
    step = max(0.01, min(1.0, mem_bytes / bw / 200))
    for _ in range(math.ceil(horizon / step) + 1):
        proc.advance(step, bw, dirty_bytes_per_s)
        if proc.done:
            break
    converged = proc.outcome is MigrationOutcome.COMPLETED
    return MigrationEstimate(
        duration_s=proc.elapsed_s,
        bytes_sent=proc.bytes_sent,
        downtime_s=proc.downtime_s,
        rounds=proc.rounds,
        converged=converged,
        switched_to_postcopy=proc.switched,
        guest_stall_s=proc.stall_s,
    )

