"""Host power: the paper's linear model (P = idle + (max − idle)·L), SPECpower tables, S3 and transitions.

One SPECpower interpolator, in two forms: ``spec_watts`` (one host; the literature's compiled
decision code compiles this very function) and ``spec_watts_many`` (many hosts at once, the same
arithmetic element by element, so both give the same bits). ``PowerTable`` is the vectorised form the
simulator evaluates for thousands of hosts per tick. A linear profile is an 11-point table too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from consolidator.domain.types import PowerProfile, PowerState

FloatArray = npt.NDArray[np.float64]


def load_points(profile: PowerProfile) -> tuple[float, ...]:
    """Watts at 0, 10, ..., 100 % utilisation."""
    if profile.table_watts is not None:
        return profile.table_watts
    return tuple(profile.idle_watts + (profile.max_watts - profile.idle_watts) * i / 10 for i in range(11))


def spec_watts(points: FloatArray, utilisation: float) -> float:
    """Watts at ``utilisation`` (0..1), linear between the 11 points (W at 0, 10, ..., 100 %), computed as
    CloudSim 3.0.3's ``PowerModelSpecPower.getPower`` does (its golden figures depend on the rounding).

    Plain Python over NumPy: ``policies.literature.power.spec_power`` is this function compiled by numba.
    """
    x = utilisation * 10
    # Java's ``utilization % 0.1 == 0`` (exact multiples of the double 0.1); fmod only near the grid.
    if abs(x - np.floor(x + 0.5)) < 1e-9 and np.fmod(utilisation, 0.1) == 0.0:
        return float(points[int(x)])
    u1 = int(math.floor(utilisation * 10))
    u2 = int(math.ceil(utilisation * 10))
    p1 = points[u1]
    delta = (points[u2] - p1) / 10
    return float(p1 + delta * (utilisation - u1 / 10.0) * 100)


def spec_watts_many(points: FloatArray, utilisation: FloatArray, extrapolate: bool = False) -> FloatArray:
    """``spec_watts`` of many hosts: row ``i`` of ``points`` (hosts, 11) at ``utilisation[i]``, bit for bit.

    ``extrapolate`` continues the last segment beyond 100 % (else utilisation must be within 0..1).
    """
    u = np.asarray(utilisation, dtype=np.float64)
    x = u * 10
    rows = np.arange(len(u))
    on_grid = (np.abs(x - np.floor(x + 0.5)) < 1e-9) & (np.fmod(u, 0.1) == 0.0) & (x <= 10)
    u1 = np.floor(x).astype(np.int64)
    u2 = np.ceil(x).astype(np.int64)
    if extrapolate:
        beyond = x > 10
        u1 = np.where(beyond, 9, u1)
        u2 = np.where(beyond, 10, u2)
    p1 = points[rows, u1]
    delta = (points[rows, u2] - p1) / 10
    between = p1 + delta * (u - u1 / 10.0) * 100
    return np.where(on_grid, points[rows, np.minimum(x.astype(np.int64), 10)], between)


def utilisation(profile: PowerProfile, cpu_load_cores: float, cores: float) -> float:
    full = profile.full_load_cores if profile.full_load_cores is not None else cores
    return min(1.0, max(0.0, cpu_load_cores / full))


def host_watts(profile: PowerProfile, state: PowerState, cpu_load_cores: float, cores: float) -> float:
    """Power of one host in ``state`` serving ``cpu_load_cores`` of CPU."""
    if state is PowerState.SUSPENDED:
        return profile.suspended_watts
    if state is PowerState.FAILED:
        return profile.off_watts
    if state in (PowerState.SUSPENDING, PowerState.RESUMING):
        return profile.transition_watts if profile.transition_watts is not None else profile.idle_watts
    return spec_watts(np.asarray(load_points(profile)), utilisation(profile, cpu_load_cores, cores))


@dataclass(frozen=True)
class PowerTable:
    """Per-host power parameters as arrays, for evaluating many hosts at once."""

    points: FloatArray  # (hosts, 11) watts at 0..100 %
    full_load: FloatArray  # (hosts,) cores at 100 %
    suspended: FloatArray
    off: FloatArray
    transition: FloatArray
    migration: FloatArray
    dirty_tracking: FloatArray

    @classmethod
    def build(cls, profiles: Sequence[PowerProfile], cores: Sequence[float]) -> PowerTable:
        def col(values: Sequence[float]) -> FloatArray:
            return np.asarray(values, dtype=np.float64)

        return cls(
            points=np.asarray([load_points(p) for p in profiles], dtype=np.float64).reshape(-1, 11),
            full_load=col([p.full_load_cores if p.full_load_cores is not None else c
                           for p, c in zip(profiles, cores, strict=True)]),
            suspended=col([p.suspended_watts for p in profiles]),
            off=col([p.off_watts for p in profiles]),
            transition=col([p.transition_watts if p.transition_watts is not None else p.idle_watts
                            for p in profiles]),
            migration=col([p.migration_watts for p in profiles]),
            dirty_tracking=col([p.dirty_tracking_watts for p in profiles]),
        )

    def watts(self, state_codes: npt.NDArray[np.int8], cpu_load_cores: FloatArray,
              uncapped: bool = False) -> FloatArray:
        """Watts of every host from its state code (``PowerState.code``) and served CPU load.

        ``uncapped`` extends the last segment beyond full load: the paper's estimate for its ideal
        ("power proportional to the total CPU load", footnote 1) has no cap.
        """
        u = np.clip(cpu_load_cores / self.full_load, 0.0, None if uncapped else 1.0)
        on = spec_watts_many(self.points, u, extrapolate=uncapped)
        out = np.where(state_codes == PowerState.ON.code, on, self.transition)
        out = np.where(state_codes == PowerState.SUSPENDED.code, self.suspended, out)
        out = np.where(state_codes == PowerState.FAILED.code, self.off, out)
        return out
