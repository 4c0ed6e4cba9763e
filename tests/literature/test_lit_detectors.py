"""Table-driven tests of the CloudSim 3.0.3 overload detectors on small histories."""

from __future__ import annotations

import numpy as np
import pytest

from consolidator.policies.literature import detectors as d


@pytest.mark.parametrize(("values", "expected"), [
    ([], 0), ([0.0], 0), ([0.5, 0.0, 0.0], 1), ([0.0, 0.5], 2), ([0.1, 0.2, 0.3], 3),
])
def test_trimmed_length_drops_trailing_zeros_only(values: list[float], expected: int) -> None:
    assert d.trimmed_length(np.array(values, dtype=float)) == expected


@pytest.mark.parametrize(("values", "expected"), [
    ([3.0], 3.0), ([1.0, 2.0], 1.5), ([5.0, 1.0, 3.0], 3.0), ([4.0, 1.0, 3.0, 2.0], 2.5),
])
def test_median_is_apache_percentile_50(values: list[float], expected: float) -> None:
    assert d.median(np.array(values)) == expected


@pytest.mark.parametrize(("values", "expected"), [
    # n=12: q1 index round(3.25)-1 = 2, q3 index round(9.75)-1 = 9 of the sorted data
    (list(range(1, 13)), 10.0 - 3.0),
    # n=4: q1 index round(1.25)-1 = 0, q3 index round(3.75)-1 = 3
    ([4.0, 1.0, 3.0, 2.0], 4.0 - 1.0),
    # n=5: round(1.5) = 2 (Java rounds half up) -> index 1; round(4.5) = 5 -> index 4
    ([10.0, 20.0, 30.0, 40.0, 50.0], 50.0 - 20.0),
])
def test_iqr_uses_cloudsim_quartile_indices(values: list[float], expected: float) -> None:
    assert d.iqr(np.array(values, dtype=float)) == expected


@pytest.mark.parametrize(("values", "expected"), [
    ([1.0, 2.0, 3.0, 4.0, 100.0], 1.0),  # median 3, deviations 2,1,0,1,97 -> 1 (no 1.4826 factor)
    ([2.0, 2.0, 2.0], 0.0),
    ([], 0.0),
])
def test_mad_without_consistency_factor(values: list[float], expected: float) -> None:
    assert d.mad(np.array(values, dtype=float)) == expected


def test_lr_prediction_extrapolates_a_line_one_step_past_the_window() -> None:
    # newest first: 0.9, 0.8, ..., 0.0 -> oldest-first x=1..10 is y = 0.1 (x - 1); at x = 11: 1.0
    hist = np.array([0.9 - 0.1 * i for i in range(10)] + [0.5] * 5)
    assert d.lr_prediction(hist, 1.0) == pytest.approx(1.0)
    assert d.lr_prediction(np.full(10, 0.4), 1.0) == pytest.approx(0.4)


FLAT12 = [0.5] * 12
RISING10 = [0.9 - 0.1 * i for i in range(10)]


@pytest.mark.parametrize(("kind", "param", "req", "hist", "expected"), [
    (d.THR, 0.8, 0.8, [], False),  # strictly greater than the threshold
    (d.THR, 0.8, 0.8000001, [], True),
    (d.IQR, 1.5, 0.75, [0.5] * 11, True),  # 11 values: fallback THR 0.7
    (d.IQR, 1.5, 0.69, [0.5] * 11, False),
    (d.IQR, 1.5, 0.95, FLAT12, False),  # IQR 0 -> threshold 1.0
    (d.IQR, 1.5, 1.01, FLAT12, True),
    (d.IQR, 1.5, 0.8, list(np.linspace(0.1, 0.9, 12)), True),  # IQR ~0.51 -> threshold ~0.24
    (d.MAD, 2.5, 0.95, FLAT12, False),
    (d.MAD, 2.5, 0.75, [0.5] * 11, True),  # fallback
    (d.MAD, 2.5, 0.8, [0.1, 0.3] * 6, True),  # MAD 0.1 -> threshold 1 - 0.25 = 0.75
    (d.MAD, 2.5, 0.7, [0.1, 0.3] * 6, False),
    (d.LR, 1.2, 0.0, RISING10, True),  # predicted 1.0 * 1.2 >= 1, whatever the current load
    (d.LR, 1.2, 0.99, [0.4] * 10, False),  # 0.48 < 1
    (d.LR, 1.2, 0.71, [0.4] * 9, True),  # 9 values: fallback THR 0.7
    (d.LRR, 1.2, 0.0, RISING10, True),  # LRR = LR in CloudSim 3.0.3
])
def test_is_overloaded(kind: int, param: float, req: float, hist: list[float], expected: bool) -> None:
    assert d.is_overloaded(kind, param, req, np.array(hist, dtype=float), 1.0) is expected
