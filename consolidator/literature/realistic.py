"""The realistic profile: the same traces and policies, with sleep and migration that cost something.

Deviations from CloudSim's model (DESIGN §6 allows them only here), each from our own models:

- A migration lasts what ``consolidator.models.migration.estimate`` gives for the VM's RAM over the
  same 62.5 MB/s link CloudSim assumes, with a dirty rate proportional to the VM's CPU share
  (200 MB/s at 100 %, the paper's memory-update intensity 0.6, DESIGN §2). A precopy that does not
  converge is cancelled after the model's timeout: the VM stays where it was, the time and energy
  are spent (CloudSim's migrations always succeed in RAM / 62.5 s).
- While it runs, each endpoint draws ``migration_watts`` more and a precopy (or hybrid) source
  ``dirty_tracking_watts`` more (the paper's Fig. 2 and Sec. IV-B, PowerProfile defaults).
- An unused host is suspended to S3 (``host_watts`` of a SUSPENDED host, 7 W in the paper) instead
  of drawing 0 W; every shutdown costs a suspend and a later resume at idle power, and a migration
  to a sleeping host waits ``resume_s`` first.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field

import numpy as np

from consolidator.domain.types import MigrationMethod, PowerProfile, PowerState
from consolidator.literature import state
from consolidator.literature.cloudsim import (
    CloudSimSetup,
    MigrationCosts,
    RunResult,
    make_result,
    run_policy,
    vm_arrays,
)
from consolidator.literature.traces import Trace
from consolidator.models.migration import MigrationParams, estimate
from consolidator.models.power import host_watts
from consolidator.policies.literature.registry import LiteraturePolicy

MB = 1e6  # CloudSim's RAM and link figures are in MB; 62.5 MB/s = 1 Gbit/s / 2
DIRTY_BYTES_PER_S_AT_FULL = 200e6  # DESIGN §2: intensity 0.6 ⇒ ≈ 200 MB/s at 100 % CPU


@dataclass(frozen=True)
class RealisticProfile:
    """Costs of sleep and migration; defaults from the paper (PowerProfile) and DESIGN §2/§4."""

    method: MigrationMethod
    power: PowerProfile = field(default_factory=PowerProfile)
    link_bytes_per_s: float = 62.5 * MB  # the link CloudSim's model assumes, for a like-for-like comparison
    dirty_bytes_per_s_at_full: float = DIRTY_BYTES_PER_S_AT_FULL
    timeout_s: float = 60.0

    def params(self) -> MigrationParams:
        return MigrationParams(bandwidth_bytes_per_s=self.link_bytes_per_s, timeout_s=self.timeout_s)


@functools.lru_cache(maxsize=64)
def _costs_for_ram(profile: RealisticProfile, ram_mb: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Duration, extra watts and cancellation for one VM size at CPU 0..100 % (101 model runs)."""
    duration = np.empty(101)
    extra = np.empty(101)
    cancelled = np.zeros(101, np.bool_)
    tracking = profile.method in (MigrationMethod.PRECOPY, MigrationMethod.HYBRID)
    for pct in range(101):
        est = estimate(profile.method, ram_mb * MB, ram_mb * MB,
                       pct / 100 * profile.dirty_bytes_per_s_at_full, profile.params())
        duration[pct] = est.duration_s
        cancelled[pct] = not est.converged
        extra[pct] = 2 * profile.power.migration_watts + (profile.power.dirty_tracking_watts if tracking else 0.0)
    return duration, extra, cancelled


def migration_costs(profile: RealisticProfile, ram_mb: np.ndarray) -> MigrationCosts:
    """Per-VM tables (VM x CPU percent) for the engine."""
    rows = [_costs_for_ram(profile, float(r)) for r in ram_mb]
    return MigrationCosts(np.vstack([r[0] for r in rows]), np.vstack([r[1] for r in rows]),
                          np.vstack([r[2] for r in rows]))


def sleep_energy_ws(acc: np.ndarray, setup: CloudSimSetup, profile: RealisticProfile, first_t: float) -> float:
    """S3 power of unused hosts plus a suspend and a resume at idle power for every shutdown."""
    host_seconds = setup.hosts * (acc[state.LAST_T] - first_t)
    asleep_s = max(0.0, host_seconds - acc[state.ACTIVE_S])
    s3_watts = host_watts(profile.power, PowerState.SUSPENDED, 0.0, 1.0)
    idle_watts = float(np.mean([w[0] for w in setup.host_watts]))
    transition_s = profile.power.suspend_s + profile.power.resume_s
    return float(asleep_s * s3_watts + acc[state.SHUTDOWNS] * transition_s * idle_watts)


def run_realistic(trace: Trace, policy: LiteraturePolicy, day: str, method: MigrationMethod,
                  seed: int = 1, setup: CloudSimSetup | None = None) -> RunResult:
    """One day under ``policy`` with the realistic costs of ``method``."""
    started = time.perf_counter()
    setup = setup or CloudSimSetup()
    profile = RealisticProfile(method)
    _, ram, _ = vm_arrays(setup, trace)
    costs = migration_costs(profile, ram)
    acc = run_policy(trace, policy, setup, seed=seed, costs=costs, wake_s=profile.power.resume_s)
    sleep_ws = sleep_energy_ws(acc, setup, profile, first_t=0.1 + trace.interval_s)
    energy_ws = acc[state.ENERGY_WS] + acc[state.EXTRA_WS] + sleep_ws
    return make_result(acc, trace, policy, day, "realistic", method.value, energy_ws,
                       time.perf_counter() - started, sleep_ws)
