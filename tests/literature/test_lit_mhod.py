"""MHOD (our port of Beloglazov & Buyya 2013): estimation, expected times and decisions on small cases."""

from __future__ import annotations

import numpy as np
import pytest

from consolidator.policies.literature import mhod

WINDOWS = np.array(mhod.WINDOW_SIZES, np.int64)


def test_a_state_never_left_has_no_transition_out() -> None:
    p = mhod.transition_matrix(np.zeros(40, np.int64), WINDOWS)
    assert p[0, 1] == 0.0 and p[0, 0] == 1.0 and p[1].sum() == 0.0


def test_regular_alternation_is_estimated_from_the_requests() -> None:
    # 0,1,0,1,...: after a 0 always a 1, after a 1 always a 0 (60 requests each)
    p = mhod.transition_matrix(np.tile([0, 1], 60).astype(np.int64), WINDOWS)
    assert p[0, 1] == pytest.approx(1.0) and p[1, 0] == pytest.approx(1.0)
    assert p[0, 0] == 0.0 and p[1, 1] == 0.0


@pytest.mark.parametrize(("current", "m", "expected"), [
    (0, (1.0, 1.0), (1.0, 0.0)),  # migrate at once: one step in the current state
    (1, (1.0, 1.0), (0.0, 1.0)),
    (0, (1.0, 0.0), (1.0, 0.0)),
])
def test_expected_times(current: int, m: tuple[float, float], expected: tuple[float, float]) -> None:
    p = np.array([[0.5, 0.5], [0.5, 0.5]])
    assert mhod.expected_times(p, current, *m) == pytest.approx(expected)


def test_expected_times_of_a_closed_chain_are_undefined() -> None:
    p = np.array([[0.5, 0.5], [0.5, 0.5]])
    assert np.isnan(mhod.expected_times(p, 0, 0.0, 0.0)[0])


@pytest.mark.parametrize(("past", "current", "otf", "expected"), [
    (np.full(40, 0.5), 0.5, 0.1, False),  # never above 0.8
    (np.full(40, 0.95), 0.95, 0.1, True),  # always above: the OTF cannot be kept
    (np.tile([0.5, 0.9], 20), 0.9, 0.1, True),  # half the time above, target 10 %
    (np.tile([0.5, 0.9], 20), 0.9, 0.6, False),  # target 60 %: fine
    (np.full(5, 0.95), 0.95, 0.1, False),  # fewer than 10 values: still learning
])
def test_decisions(past: np.ndarray, current: float, otf: float, expected: bool) -> None:
    assert mhod.mhod_overloaded(past, current, otf, 0.1) is expected
