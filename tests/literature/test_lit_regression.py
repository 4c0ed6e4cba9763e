"""Day 20110303 against CloudSim 3.0.3's own figures (DESIGN §6: run with its PlanetLab examples)."""

from __future__ import annotations

from pathlib import Path

import pytest

from consolidator.literature.cloudsim import RunResult, run_cloudsim
from consolidator.policies.literature.registry import parse_policy
from consolidator.traces.load import Trace, load_planetlab_day

# CloudSim 3.0.3, day 20110303, 1052 VMs, files sorted by name (DESIGN §6).
REFERENCE_KWH = {"thr-mmt-0.8": 192.62, "iqr-mmt-1.5": 189.98, "mad-mmt-2.5": 185.79, "lr-mmt-1.2": 163.48,
                 "dvfs": 802.75, "npa": 2410.80}
REFERENCE_MIGRATIONS = {"thr-mmt-0.8": 26_711}


@pytest.fixture(scope="module")
def day(planetlab_root: Path) -> Trace:
    return load_planetlab_day(planetlab_root / "20110303")


def _run(day: Trace, name: str) -> RunResult:
    return run_cloudsim(day, parse_policy(name), "20110303")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REFERENCE_KWH))
def test_energy_within_3_percent_of_cloudsim(day: Trace, name: str) -> None:
    result = _run(day, name)
    assert result.energy_kwh == pytest.approx(REFERENCE_KWH[name], rel=0.03)
    if name in REFERENCE_MIGRATIONS:
        assert result.migrations == pytest.approx(REFERENCE_MIGRATIONS[name], rel=0.10)


@pytest.mark.slow
def test_thr_mmt_matches_cloudsim_in_detail(day: Trace) -> None:
    """THR-MMT-0.8 reproduces every figure CloudSim printed, to its printed precision."""
    result = _run(day, "thr-mmt-0.8")
    assert round(result.energy_kwh, 2) == 192.62
    assert result.migrations == 26_711
    assert round(result.slatah_pct, 2) == 4.91
    assert round(result.pdm_pct, 2) == 0.06
    assert result.vms_finished == 532  # VMs whose demand reached exactly 0 (DESIGN §6, item 6)


@pytest.mark.slow
def test_lrr_equals_lr_as_in_cloudsim_3_0_3(day: Trace) -> None:
    lr, lrr = _run(day, "lr-mmt-1.2"), _run(day, "lrr-mmt-1.2")
    assert (lr.energy_kwh, lr.migrations) == (lrr.energy_kwh, lrr.migrations)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "kwh"), [("dvfs", 802.75), ("npa", 2410.80)])
def test_baselines_match_cloudsim_to_the_digit(day: Trace, name: str, kwh: float) -> None:
    """First-fit placement, no migrations: checks energy accounting and VM removal on their own."""
    result = _run(day, name)
    assert round(result.energy_kwh, 2) == kwh and result.migrations == 0
