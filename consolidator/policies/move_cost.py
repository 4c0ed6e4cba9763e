"""What one live migration would cost, per method, from the migration model (a pure predictor).

A planner asks for the cheapest of precopy, postcopy and hybrid for one move, given the guest's
measured dirty rate, its load, the link, and how overloaded its source is. The figure compared is
energy plus delayed work priced in watt-seconds:

- energy: the move's duration × (what keeps burning because of it: a source that could sleep once
  empty, plus ``migration_watts`` at both ends) + dirty-page tracking while the guest is still at the
  source (precopy phase);
- delayed work (core·s): the source's excess load × the time the guest still runs there (an overloaded
  source stays overloaded until a precopy ends; a postcopy relieves it at once) + the guest's load ×
  its stall on remote page faults (postcopy phase), priced at ``delay_weight_ws`` per core·s.

A precopy the model does not see converging within ``max_precopy_s`` is never chosen.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace

from consolidator.domain.types import MigrationMethod, PowerProfile
from consolidator.models.migration import MigrationEstimate, MigrationParams, OnTimeoutPolicy, estimate

LIVE_METHODS = (MigrationMethod.POSTCOPY, MigrationMethod.PRECOPY, MigrationMethod.HYBRID)
_RATE_STEP = 1e6  # bytes/s: dirty and link rates are rounded to this before asking the model (cache)


@dataclass(frozen=True, slots=True)
class MoveCost:
    method: MigrationMethod
    duration_s: float
    at_source_s: float  # how long the guest keeps running at the source
    delayed_core_s: float
    energy_ws: float
    cost_ws: float  # energy_ws + delay_weight_ws × delayed_core_s


@dataclass(frozen=True, slots=True)
class MoveCoster:
    params: MigrationParams = field(default_factory=MigrationParams)
    power: PowerProfile = field(default_factory=PowerProfile)
    delay_weight_ws: float = 100.0  # Ws per core·s of work delayed
    max_precopy_s: float = 60.0
    methods: tuple[MigrationMethod, ...] = LIVE_METHODS

    def cost(self, method: MigrationMethod, mem_bytes: float, load: float, dirty_bytes_per_s: float,
             link_bytes_per_s: float, source_excess_cores: float, source_sleeps: bool,
             dirty_at_destination: float | None = None) -> MoveCost:
        """``load``: what the guest wants (cores); ``dirty_at_destination``: its dirty rate once it gets that
        (default: as at the source). Precopy and hybrid are predicted at the source's rate, postcopy at the
        destination's."""
        dirty = dirty_bytes_per_s
        if method is MigrationMethod.POSTCOPY and dirty_at_destination is not None:
            dirty = dirty_at_destination
        est = _estimate(method, mem_bytes, _rounded(dirty), _rounded(link_bytes_per_s), self._prediction_params())
        if not est.converged:
            return MoveCost(method, est.duration_s, est.duration_s, math.inf, math.inf, math.inf)
        at_source = self._time_at_source(method, est, mem_bytes, link_bytes_per_s)
        delayed = max(0.0, source_excess_cores) * at_source + load * est.guest_stall_s
        held = (self.power.idle_watts - self.power.suspended_watts) if source_sleeps else 0.0
        energy = est.duration_s * (held + 2 * self.power.migration_watts)
        if method is not MigrationMethod.POSTCOPY:
            energy += self.power.dirty_tracking_watts * at_source
        return MoveCost(method, est.duration_s, at_source, delayed, energy, energy + self.delay_weight_ws * delayed)

    def cheapest(self, mem_bytes: float, load: float, dirty_bytes_per_s: float, link_bytes_per_s: float,
                 source_excess_cores: float, source_sleeps: bool, dirty_at_destination: float | None = None
                 ) -> MoveCost:
        costs = [self.cost(m, mem_bytes, load, dirty_bytes_per_s, link_bytes_per_s, source_excess_cores,
                           source_sleeps, dirty_at_destination) for m in self.methods]
        return min(costs, key=lambda c: (c.cost_ws, c.duration_s))

    def _prediction_params(self) -> MigrationParams:
        return replace(self.params, timeout_s=min(self.params.timeout_s, self.max_precopy_s),
                       on_timeout=OnTimeoutPolicy.CANCEL)

    def _time_at_source(self, method: MigrationMethod, est: MigrationEstimate, mem_bytes: float,
                        link_bytes_per_s: float) -> float:
        p = self.params
        if method is MigrationMethod.POSTCOPY:
            return p.setup_s
        if method is MigrationMethod.PRECOPY or not est.switched_to_postcopy:
            return est.duration_s
        # hybrid: its precopy passes; the first carries all of RAM, later ones at most that again
        one_pass = mem_bytes / (link_bytes_per_s * p.link_efficiency)
        return min(est.duration_s, p.setup_s + p.hybrid_rounds * one_pass)


def _rounded(rate: float) -> float:
    return max(0.0, round(rate / _RATE_STEP) * _RATE_STEP)


@functools.lru_cache(maxsize=4096)
def _estimate(method: MigrationMethod, mem_bytes: float, dirty_bytes_per_s: float, link_bytes_per_s: float,
              params: MigrationParams) -> MigrationEstimate:
    return estimate(method, mem_bytes, mem_bytes, dirty_bytes_per_s,
                    replace(params, bandwidth_bytes_per_s=max(link_bytes_per_s, 1.0)))
