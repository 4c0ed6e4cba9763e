"""The CloudSim 3.0.3 PlanetLab setup (examples/power, DESIGN §6) and its run: hosts, VM types, results.

800 hosts alternating HP ProLiant ML110 G4 (2 x 1860 MIPS) and G5 (2 x 2660 MIPS), 4 GB RAM,
1 Gbit/s; VM i of n gets type ``i // ceil(n/4)``: 2500/2000/1000/500 MIPS with 870/1740/1740/613 MB,
1 PE, 100 Mbit/s. Migration takes RAM / (BW/2) with BW in Mbit/8 (62.5 MB/s).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from consolidator.domain.errors import UserError
from consolidator.literature import state
from consolidator.literature.engine import simulate
from consolidator.policies.literature.arrays import host_kinds
from consolidator.policies.literature.power import HP_ML110_G4_WATTS, HP_ML110_G5_WATTS
from consolidator.policies.literature.registry import Baseline, LiteraturePolicy
from consolidator.traces.load import Trace


@dataclass(frozen=True, slots=True)
class CloudSimSetup:
    """Cluster and VM types of CloudSim's PlanetLab examples (Constants / PlanetLabConstants)."""

    hosts: int = 800
    host_pe_mips: tuple[float, float] = (1860.0, 2660.0)
    host_watts: tuple[tuple[float, ...], tuple[float, ...]] = (HP_ML110_G4_WATTS, HP_ML110_G5_WATTS)
    host_ram_mb: float = 4096.0
    host_bw_kbit_s: float = 1_000_000.0
    vm_mips: tuple[float, ...] = (2500.0, 2000.0, 1000.0, 500.0)
    vm_ram_mb: tuple[float, ...] = (870.0, 1740.0, 1740.0, 613.0)
    vm_bw_kbit_s: float = 100_000.0

    @property
    def migration_mb_per_s(self) -> float:
        """Half the host link for migration, in MB/s: BW / (2 · 8000) as CloudSim computes it."""
        return self.host_bw_kbit_s / (2 * 8000)


@dataclass(frozen=True, slots=True)
class RunResult:
    """Outcome of one day under one policy (keys of the stable ``--json`` output)."""

    policy: str
    day: str
    profile: str
    migration: str
    energy_kwh: float
    migrations: int
    slatah_pct: float
    pdm_pct: float
    slav: float
    esv: float
    host_shutdowns: int
    vms: int
    vms_finished: int
    cancelled_migrations: int  # always 0 (CloudSim's migrations complete); kept in the --json keys
    extra_energy_kwh: float  # always 0 (no migration power in CloudSim); kept in the --json keys
    wall_s: float
    sleep_energy_kwh: float = 0.0  # always 0 (CloudSim's idle hosts draw nothing); kept in the --json keys


def vm_arrays(setup: CloudSimSetup, trace: Trace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MIPS, RAM and utilisation (fractions, last value repeated once as CloudSim pads) per VM."""
    n = len(trace.vm_names)
    types = np.arange(n) // math.ceil(n / len(setup.vm_mips))
    mips = np.asarray(setup.vm_mips)[types]
    ram = np.asarray(setup.vm_ram_mb)[types]
    data = np.empty((n, trace.steps + 1))
    data[:, :-1] = trace.cpu_pct / 100.0
    data[:, -1] = data[:, -2]
    return mips, ram, data


def host_arrays(setup: CloudSimSetup) -> tuple[np.ndarray, np.ndarray]:
    kinds = np.arange(setup.hosts) % 2
    pe = np.asarray(setup.host_pe_mips)[kinds]
    table = np.asarray(setup.host_watts)[kinds]
    return pe, table


def run_policy(trace: Trace, policy: LiteraturePolicy, setup: CloudSimSetup | None = None, seed: int = 1) -> np.ndarray:
    """Simulate ``trace`` under ``policy``; returns the engine's accumulators (see ``state``)."""
    setup = setup or CloudSimSetup()
    mips, ram, data = vm_arrays(setup, trace)
    pe, table = host_arrays(setup)
    hosts = state.new_hosts(pe, table, len(mips), trace.steps)
    vms = state.new_vms(mips, ram, data)
    rand = np.random.default_rng(seed).random(1 << 18)  # RS draws, used in turn (cycles after 262,144)
    longest = float(ram.max()) / setup.migration_mb_per_s
    if longest >= trace.interval_s:
        raise UserError(f"a migration can take {longest:.1f} s, not shorter than the trace's {trace.interval_s:g} s "
                        "interval: the model needs migrations to end before the next update", source=trace.source)
    init = np.array([setup.host_ram_mb, setup.host_bw_kbit_s, setup.vm_bw_kbit_s])
    kinds = host_kinds(pe, table)
    acc = simulate(hosts, vms, policy.detector_code, policy.parameter, policy.selector_code,
                   setup.migration_mb_per_s, trace.interval_s, trace.steps - 1, rand, init, kinds,
                   int(kinds.max()) + 1, policy.baseline is None)
    return np.asarray(acc)


def run_cloudsim(trace: Trace, policy: LiteraturePolicy, day: str, seed: int = 1,
                 setup: CloudSimSetup | None = None) -> RunResult:
    """One day under CloudSim 3.0.3's model: the figures its PlanetLab examples print."""
    started = time.perf_counter()
    setup = setup or CloudSimSetup()
    acc = run_policy(trace, policy, setup, seed=seed)
    energy_ws = acc[state.ENERGY_WS]
    if policy.baseline is Baseline.NPA:
        # PowerDatacenterNonPowerAware: every host at its full power from 0 s to the last update
        _, table = host_arrays(setup)
        energy_ws = float(table[:, -1].sum()) * acc[state.LAST_T]
    return make_result(acc, trace, policy, day, "cloudsim", "cloudsim", energy_ws, time.perf_counter() - started)


def make_result(acc: np.ndarray, trace: Trace, policy: LiteraturePolicy, day: str, profile: str,
                migration: str, energy_ws: float, wall_s: float) -> RunResult:
    """Metrics as CloudSim's Helper computes them; ``energy_ws`` is the profile's total energy."""
    energy_kwh = energy_ws / 3.6e6
    slatah = acc[state.VIOL_S] / acc[state.ACTIVE_S] if acc[state.ACTIVE_S] > 0 else 0.0
    pdm = acc[state.VM_UNDER_MIG] / acc[state.VM_REQ] if acc[state.VM_REQ] > 0 else 0.0
    slav = slatah * pdm
    return RunResult(
        policy=policy.name, day=day, profile=profile,
        migration=migration, energy_kwh=energy_kwh, migrations=int(acc[state.MIGRATIONS]),
        slatah_pct=100 * slatah, pdm_pct=100 * pdm, slav=slav, esv=energy_kwh * slav,
        host_shutdowns=int(acc[state.SHUTDOWNS]), vms=len(trace.vm_names),
        # CloudSim's migrations always complete and draw no extra power: these keys stay 0 in --json
        vms_finished=int(acc[state.REMOVED]), cancelled_migrations=0, extra_energy_kwh=0.0, wall_s=wall_s,
    )
