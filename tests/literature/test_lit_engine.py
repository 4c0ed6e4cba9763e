"""The CloudSim-compatible engine on small hand-checkable clusters."""

from __future__ import annotations

import numpy as np
import pytest

from consolidator.literature.cloudsim import CloudSimSetup, run_cloudsim
from consolidator.policies.literature.power import HP_ML110_G5_WATTS, spec_power
from consolidator.policies.literature.registry import parse_policy
from consolidator.traces.load import Trace


def _trace(*rows: list[float]) -> Trace:
    return Trace(tuple(f"vm{i}" for i in range(len(rows))), np.array(rows, dtype=float), 300.0, "synthetic")


def test_one_constant_vm_energy_is_its_host_power_over_the_counted_intervals() -> None:
    # One VM is type 0 (2500 MIPS): too big for a G4 core, so it lands on host 1 (G5, 5320 MIPS).
    result = run_cloudsim(_trace([50.0] * 6), parse_policy("thr-mmt-0.8"), "synthetic",
                          setup=CloudSimSetup(hosts=2))
    watts = spec_power(np.array(HP_ML110_G5_WATTS), 1250.0 / 5320.0)
    # Updates at 300.1 ... 1500.1; the first interval starts idle and counts nothing: 4 intervals.
    assert result.energy_kwh * 3.6e6 == pytest.approx(4 * 300 * watts)
    assert result.migrations == 0 and result.slatah_pct == 0.0 and result.pdm_pct == 0.0
    assert result.host_shutdowns == 1  # host 0 never used: its first entry is inactive


def test_a_vm_whose_demand_reaches_zero_is_removed_for_good() -> None:
    result = run_cloudsim(_trace([50.0, 0.0, 0.0, 0.0, 50.0, 50.0]), parse_policy("thr-mmt-0.8"), "s",
                          setup=CloudSimSetup(hosts=2))
    assert result.vms_finished == 1
    assert result.energy_kwh == 0.0  # removed at 300.1, before any interval could count


def test_underload_consolidates_two_light_vms() -> None:
    # VM0 (2500 MIPS) on host 1, VM1 (2000 MIPS) on host 3; at 10 % host 3 is the least used and
    # its VM fits on host 1: one migration of 1740 MB lasting 27.84 s, target at 10 % meanwhile.
    result = run_cloudsim(_trace([10.0] * 6, [10.0] * 6), parse_policy("thr-mmt-0.8"), "s",
                          setup=CloudSimSetup(hosts=4))
    assert result.migrations == 1
    assert result.host_shutdowns == 3  # hosts 0 and 2 never used, host 3 emptied
    assert result.slatah_pct > 0.0 and result.pdm_pct > 0.0


def test_overload_evicts_the_vm_with_least_ram_and_places_it_by_pabfd() -> None:
    """Hand-derived: host 0 (G4) holds VM2 and VM3 at 10 %, host 1 (G5, 5320 MIPS) VM0 (2500 MIPS,
    870 MB) and VM1 (2000 MIPS, 1740 MB) at 70 %: 3150 MIPS, 59 % < 60 %, and neither host can be
    drained into the other. At 600.1 s VM1 reaches 100 %: host 1 needs 3750 MIPS (70 % > 60 %), MMT
    takes VM0 (least RAM), which fits on host 0 (1750 <= 1860 MIPS per core, 51 % after): one
    migration, and none later (VM1 needs 2000 MIPS, more than a G4 core; host 0's VMs would
    overload host 1)."""
    rows = [[70.0] * 6, [70.0, 70.0, 100.0, 100.0, 100.0, 100.0], [10.0] * 6, [10.0] * 6]
    result = run_cloudsim(_trace(*rows), parse_policy("thr-mmt-0.6"), "s", setup=CloudSimSetup(hosts=2))
    assert result.migrations == 1
    assert result.pdm_pct > 0.0


@pytest.mark.parametrize("policy", ["iqr-mmt-1.5", "mad-mu-2.5", "lr-mc-1.2", "lrr-rs-1.2", "thr-rs-0.8",
                                    "mhod-mmt-0.2"])
def test_every_detector_and_selector_runs(policy: str) -> None:
    rng = np.random.default_rng(5)
    rows = rng.integers(0, 100, size=(12, 40)).astype(float)
    result = run_cloudsim(_trace(*rows), parse_policy(policy), "s", setup=CloudSimSetup(hosts=10))
    assert result.energy_kwh > 0.0 and result.migrations >= 0


def test_rs_is_seeded() -> None:
    rows = np.random.default_rng(9).integers(0, 100, size=(12, 40)).astype(float)
    runs = [run_cloudsim(_trace(*rows), parse_policy("thr-rs-0.5"), "s", seed=s, setup=CloudSimSetup(hosts=10))
            for s in (1, 1)]
    assert runs[0].energy_kwh == runs[1].energy_kwh and runs[0].migrations == runs[1].migrations


def test_an_interval_shorter_than_a_migration_is_refused() -> None:
    from consolidator.domain.errors import UserError

    trace = Trace(("a",), np.full((1, 5), 50.0), 10.0, "fast.csv")  # 870 MB take 13.9 s at 62.5 MB/s
    with pytest.raises(UserError, match="not shorter than the trace's 10 s interval"):
        run_cloudsim(trace, parse_policy("thr-mmt-0.8"), "s", setup=CloudSimSetup(hosts=2))
