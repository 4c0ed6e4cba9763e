"""Host power: the paper's linear model, SPECpower tables, states, and the vectorised table."""

from __future__ import annotations

import numpy as np
import pytest

from consolidator.domain.types import PowerProfile, PowerState
from consolidator.models.power import PowerTable, host_watts, load_points, spec_watts, spec_watts_many

PAPER = PowerProfile()
G4 = PowerProfile(table_watts=(86, 89.4, 92.6, 96, 99.5, 102, 106, 108, 112, 114, 117), full_load_cores=None)


@pytest.mark.parametrize(
    ("profile", "state", "load", "cores", "watts"),
    [
        (PAPER, PowerState.ON, 0.0, 4, 53.0),  # Table II, idle with C-states
        (PAPER, PowerState.ON, 1.0, 4, 100.0),  # Table II, 100 %
        (PAPER, PowerState.ON, 0.5, 4, 76.5),  # footnote: 53 + 47 · L
        (PAPER, PowerState.ON, 3.0, 4, 100.0),  # L = min(1, load) (DESIGN §2)
        (PAPER, PowerState.SUSPENDED, 0.0, 4, 7.0),  # Table III
        (PAPER, PowerState.SUSPENDING, 0.0, 4, 53.0),
        (G4, PowerState.ON, 1.0, 2, 102.0),  # 50 % of 2 cores
        (G4, PowerState.ON, 0.3, 2, 91.0),  # 15 %: halfway between 89.4 and 92.6
    ],
)
def test_host_watts(profile: PowerProfile, state: PowerState, load: float, cores: float, watts: float) -> None:
    assert host_watts(profile, state, load, cores) == pytest.approx(watts)


def test_vectorised_table_matches_scalar_model() -> None:
    profiles = [PAPER, G4, PAPER, G4]
    cores = [4, 2, 4, 2]
    states = [PowerState.ON, PowerState.ON, PowerState.SUSPENDED, PowerState.RESUMING]
    loads = np.array([0.37, 1.3, 0.0, 0.0])
    table = PowerTable.build(profiles, cores)
    got = table.watts(np.array([s.code for s in states], dtype=np.int8), loads)
    want = [host_watts(p, s, float(x), c) for p, s, x, c in zip(profiles, states, loads, cores, strict=True)]
    assert list(got) == want  # one interpolator: the same bits


def test_one_specpower_interpolator_in_every_form() -> None:
    """The scalar, the vectorised and the literature's compiled form give the same bits (CloudSim's
    rounding), at random loads, on the 10 % grid and at its multiples of the double 0.1."""
    from consolidator.policies.literature.power import HP_ML110_G4_WATTS, HP_ML110_G5_WATTS, spec_power

    tables = np.array([HP_ML110_G4_WATTS, HP_ML110_G5_WATTS, load_points(PAPER)])
    u = np.concatenate([np.random.default_rng(7).random(5000), np.arange(11) / 10, np.arange(11) * 0.1,
                        np.linspace(0.0, 1.0, 1001)])
    rows = np.arange(len(u)) % 3
    many = spec_watts_many(tables[rows], u)
    one = np.array([spec_watts(tables[r], x) for r, x in zip(rows, u, strict=True)])
    compiled = np.array([spec_power(tables[r], x) for r, x in zip(rows, u, strict=True)])
    assert np.array_equal(many, one) and np.array_equal(compiled, one)
    assert spec_watts(tables[0], 0.15) == pytest.approx(91.0) and spec_watts(tables[1], 1.0) == 135.0
    assert spec_watts_many(tables[:1], np.array([1.2]), extrapolate=True)[0] == pytest.approx(117 + 3 * 2)


def test_uncapped_power_extends_the_line_for_the_ideal_estimate() -> None:
    table = PowerTable.build([PAPER], [4])
    on = np.array([PowerState.ON.code], dtype=np.int8)
    assert table.watts(on, np.array([2.0]))[0] == pytest.approx(100.0)
    assert table.watts(on, np.array([2.0]), uncapped=True)[0] == pytest.approx(53 + 47 * 2)


def test_table_needs_eleven_points() -> None:
    with pytest.raises(ValueError):
        PowerProfile(table_watts=(1.0, 2.0))
