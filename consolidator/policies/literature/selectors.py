"""VM selection of CloudSim 3.0.3: which VM leaves an overloaded host (MMT, MU, RS, MC).

Each function gets the candidate VMs in the host's VM-list order (VMs in migration already left out)
and returns a position in that list, or -1 when there is none. Ties go to the earliest VM (strict
``<``/``>`` as in CloudSim). RS takes its random number from the caller (a seeded stream).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from consolidator.policies.literature._compile import jit
from consolidator.policies.literature.codes import MC, MMT, MU, RS

__all__ = ["MC", "MMT", "MU", "RS"]


_DOUBLE_MIN = 4.9e-324  # Java Double.MIN_VALUE: MC's starting maximum


@jit
def select_mmt(ram_mb: npt.NDArray[np.float64]) -> int:
    """Minimum migration time: the least RAM (migration time = RAM / bandwidth)."""
    best = -1
    lowest = np.inf
    for i in range(ram_mb.shape[0]):
        if ram_mb[i] < lowest:
            lowest = ram_mb[i]
            best = i
    return best


@jit
def select_mu(utilisation: npt.NDArray[np.float64]) -> int:
    """Minimum utilisation: the lowest requested CPU share of the VM's own MIPS."""
    best = -1
    lowest = np.inf
    for i in range(utilisation.shape[0]):
        if utilisation[i] < lowest:
            lowest = utilisation[i]
            best = i
    return best


@jit
def select_rs(count: int, uniform01: float) -> int:
    """Random selection, from one uniform number in [0, 1) drawn by the caller's seeded generator."""
    if count == 0:
        return -1
    return min(int(uniform01 * count), count - 1)


@jit
def r_squared(y: npt.NDArray[np.float64], x: npt.NDArray[np.float64]) -> float:
    """R² of the OLS fit of ``y`` on the columns of ``x`` plus an intercept (Householder QR).

    Returns -inf where Apache Commons Math's OLSMultipleLinearRegression would refuse: no more
    observations than parameters, or an exactly singular design (NaN when ``y`` is constant).
    """
    m = y.shape[0]
    p = x.shape[1] + 1
    if m <= p:
        return -np.inf
    a = np.ones((m, p))
    a[:, 1:] = x
    b = y.copy()
    for j in range(p):
        norm = np.sqrt(np.sum(a[j:, j] ** 2))
        if norm == 0.0:
            return -np.inf
        alpha = -norm if a[j, j] > 0 else norm
        v = a[j:, j].copy()
        v[0] -= alpha
        vnorm2 = np.sum(v * v)
        if vnorm2 > 0.0:
            for k in range(j, p):
                a[j:, k] -= 2.0 * v * (np.sum(v * a[j:, k]) / vnorm2)
            b[j:] -= 2.0 * v * (np.sum(v * b[j:]) / vnorm2)
    ssr = np.sum(b[p:] ** 2)
    mean = np.sum(y) / m
    sst = np.sum((y - mean) ** 2)
    if sst == 0.0:  # constant history: Java's 1 - SSR/0 is NaN or -Infinity, never the maximum
        return np.nan
    return float(1.0 - ssr / sst)


@jit
def select_mc(history: npt.NDArray[np.float64], lengths: npt.NDArray[np.int64],
              ram_mb: npt.NDArray[np.float64]) -> int:
    """Maximum correlation: the VM whose history the others' histories explain best (highest R²).

    ``history`` rows are VM utilisation histories (most recent first), ``lengths`` their lengths;
    all are cut to the shortest. Falls back to MMT where the regression is impossible (CloudSim).
    """
    n = history.shape[0]
    if n == 0:
        return -1
    m = lengths.min()
    if n < 2 or m <= n:
        return select_mmt(ram_mb)
    data = history[:, :m]
    best = 0
    best_r2 = _DOUBLE_MIN
    for i in range(n):
        others = np.empty((m, n - 1))
        k = 0
        for j in range(n):
            if j != i:
                others[:, k] = data[j]
                k += 1
        r2 = r_squared(data[i].copy(), others)
        if r2 == -np.inf:
            return select_mmt(ram_mb)
        if r2 > best_r2:
            best_r2 = r2
            best = i
    return best
