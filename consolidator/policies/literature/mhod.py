"""MHOD: Markov host overload detection (Beloglazov & Buyya, IEEE TPDS 2013; OpenStack Neat's defaults).

Not part of CloudSim 3.0.3 (no reference figures to match): our port of the published algorithm.
The host's utilisation history (oldest first, its own measured values, one per interval) is mapped
to two states, below or at/above ``STATE_THRESHOLD``. Transition probabilities are estimated with
the Multisize Sliding Window method (Luiz et al.): for each state, the states that followed it form
a request window; for every window size the estimate is the share of one next state in the last
``w`` requests, and the largest window whose estimates vary no more than ``p(1-p)/w`` is kept.
The host is overloaded when no migration policy ``m`` (probability of migrating in each state, on a
grid of ``BRUTEFORCE_STEP``) keeps the expected overload time fraction (OTF) within the target:
``(T_mig + time in state 2 so far + L2(m)) / (T_mig + time so far + L1(m) + L2(m)) <= otf``, where
``L(m) = p0ᵀ (I − diag(1 − m) P)⁻¹`` are the expected times in each state before a migration.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from consolidator.policies.literature._compile import jit

STATE_THRESHOLD = 0.8  # Neat's state_config [0.8]: two states
WINDOW_SIZES = (30, 40, 50, 60, 70, 80, 90, 100)
BRUTEFORCE_STEP = 0.5
LEARNING_STEPS = 10


@jit
def _estimate(requests: npt.NDArray[np.int64], target: int, window_sizes: npt.NDArray[np.int64]) -> float:
    """MSW estimate of P(next = target) from one state's request window (chronological)."""
    n = requests.shape[0]
    if n == 0:
        return 0.0
    chosen = 0.0
    for k in range(window_sizes.shape[0]):
        w = window_sizes[k]
        # estimate after each request: share of ``target`` among the last w requests, over w
        est = np.empty(n)
        count = 0
        for i in range(n):
            count += 1 if requests[i] == target else 0
            if i >= w and requests[i - w] == target:
                count -= 1
            est[i] = count / w
        last = est[n - 1]
        if k == 0:
            chosen = last
        if n < w:
            break  # too few estimates: variance counts as 1, larger than acceptable
        tail = est[n - w:]
        mean = np.sum(tail) / w
        var = np.sum((tail - mean) ** 2) / (w - 1)
        if var > last * (1.0 - last) / w:
            break
        chosen = last
    return float(chosen)


@jit
def transition_matrix(states: npt.NDArray[np.int64], window_sizes: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """2 x 2 transition probabilities by MSW; the sequence starts from state 0 as in Neat."""
    n = states.shape[0]
    requests = np.empty((2, n), np.int64)
    counts = np.zeros(2, np.int64)
    prev = 0
    for s in states:
        requests[prev, counts[prev]] = s
        counts[prev] += 1
        prev = s
    p = np.zeros((2, 2))
    for i in range(2):
        for j in range(2):
            p[i, j] = _estimate(requests[i, :counts[i]], j, window_sizes)
    return p


@jit
def expected_times(p: npt.NDArray[np.float64], current: int, m0: float, m1: float) -> tuple[float, float]:
    """L(m): expected steps in states 0 and 1 before migrating; NaN when (I − Q) is singular."""
    a = 1.0 - (1.0 - m0) * p[0, 0]
    b = -(1.0 - m0) * p[0, 1]
    c = -(1.0 - m1) * p[1, 0]
    d = 1.0 - (1.0 - m1) * p[1, 1]
    det = a * d - b * c
    if det == 0.0:
        return np.nan, np.nan
    # row vector e_current times the inverse of [[a, b], [c, d]]
    if current == 0:
        return d / det, -b / det
    return -c / det, a / det


@jit
def mhod_overloaded(past: npt.NDArray[np.float64], current: float, otf: float, migration_steps: float) -> bool:
    """MHOD's decision for a host whose earlier utilisation is ``past`` and current is ``current``."""
    n = past.shape[0] + 1
    if n < LEARNING_STEPS:
        return False
    states = np.empty(n, np.int64)
    for i in range(n - 1):
        states[i] = 1 if past[i] >= STATE_THRESHOLD else 0
    now = 1 if current >= STATE_THRESHOLD else 0
    states[n - 1] = now
    p = transition_matrix(states, np.array(WINDOW_SIZES, np.int64))
    if p[now, 1] <= 0.0:
        return False
    in_state_1 = float(np.sum(states))
    best = 0.0
    found = False
    grid = np.arange(0.0, 1.0 + 1e-9, BRUTEFORCE_STEP)
    for m0 in grid:
        for m1 in grid:
            l0, l1 = expected_times(p, now, m0, m1)
            if np.isnan(l0):
                continue
            total = l0 + l1
            if total > best and (migration_steps + in_state_1 + l1) / (migration_steps + n + total) <= otf:
                best = total
                found = True
    return not found
