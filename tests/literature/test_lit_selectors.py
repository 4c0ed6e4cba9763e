"""Table-driven tests of the VM selectors and the SPECpower model."""

from __future__ import annotations

import numpy as np
import pytest

from consolidator.policies.literature import power as pw
from consolidator.policies.literature import selectors as s


@pytest.mark.parametrize(("ram", "expected"), [
    ([], -1), ([1740.0], 0), ([1740.0, 613.0, 870.0], 1), ([870.0, 613.0, 613.0], 1),  # tie: first in list
])
def test_mmt_picks_least_ram_first_on_ties(ram: list[float], expected: int) -> None:
    assert s.select_mmt(np.array(ram, dtype=float)) == expected


@pytest.mark.parametrize(("util", "expected"), [
    ([0.5, 0.2, 0.9], 1), ([0.3, 0.3], 0), ([], -1),
])
def test_mu_picks_least_utilised(util: list[float], expected: int) -> None:
    assert s.select_mu(np.array(util, dtype=float)) == expected


@pytest.mark.parametrize(("count", "u", "expected"), [(0, 0.5, -1), (4, 0.0, 0), (4, 0.5, 2), (4, 0.999, 3)])
def test_rs_maps_the_injected_number(count: int, u: float, expected: int) -> None:
    assert s.select_rs(count, u) == expected


def _r2_reference(y: np.ndarray, x: np.ndarray) -> float:
    design = np.column_stack([np.ones(len(y)), x])
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ beta
    return float(1 - resid @ resid / ((y - y.mean()) @ (y - y.mean())))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mc_matches_a_least_squares_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    hist = rng.random((4, 25))
    hist[1] = 0.7 * hist[0] + 0.1 * rng.random(25)  # VMs 0 and 1 move together
    r2 = [_r2_reference(hist[i], np.delete(hist, i, axis=0).T) for i in range(4)]
    assert s.select_mc(hist, np.full(4, 25), np.full(4, 870.0)) == int(np.argmax(r2))
    assert int(np.argmax(r2)) in (0, 1)


def test_mc_falls_back_to_mmt_without_enough_history() -> None:
    hist = np.random.default_rng(0).random((3, 30))
    assert s.select_mc(hist, np.array([30, 3, 30]), np.array([1740.0, 613.0, 870.0])) == 1


def test_r_squared_of_an_exact_fit_is_one() -> None:
    x = np.arange(10.0).reshape(-1, 1)
    assert s.r_squared(3.0 * x[:, 0] + 2.0, x) == pytest.approx(1.0)


G4 = np.array(pw.HP_ML110_G4_WATTS)
G5 = np.array(pw.HP_ML110_G5_WATTS)


@pytest.mark.parametrize(("table", "u", "watts"), [
    (G4, 0.0, 86.0), (G4, 1.0, 117.0), (G4, 0.45, 100.75), (G5, 0.5, 116.0), (G5, 0.05, 95.35),
    (G5, 0.95, 134.0),
])
def test_spec_power_is_linear_between_points(table: np.ndarray, u: float, watts: float) -> None:
    assert pw.spec_power(table, u) == pytest.approx(watts)


def test_energy_of_an_interval_starting_idle_is_zero() -> None:
    assert pw.interval_energy_ws(G4, 0.0, 0.5, 300.0) == 0.0
    # trapezoid of 102 W and 86 W (a host that emptied still ends at idle power) over 300 s
    assert pw.interval_energy_ws(G4, 0.5, 0.0, 300.0) == pytest.approx((102.0 + 86.0) / 2 * 300)


def test_power_increase_uses_the_last_power_as_before() -> None:
    # allocated 1860 of 3720 MIPS, adding 372 -> 60 %; before: the last update's 86 W (idle)
    assert pw.power_increase(G4, 86.0, 1860.0, 372.0, 3720.0) == pytest.approx(106.0 - 86.0)
