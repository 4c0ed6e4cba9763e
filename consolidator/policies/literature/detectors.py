"""Host overload detectors of CloudSim 3.0.3 (THR, IQR, MAD, LR, LRR) on a host's utilisation history.

A host's history is CloudSim's: the sum over the VMs now on it of each VM's recent utilisation
(fraction of its MIPS, most recent first, at most 30 values) weighted by VM MIPS / host MIPS, with
trailing zeros trimmed. ``req_frac`` is the host's current requested MIPS / its total MIPS.
Behaviours copied on purpose (DESIGN §6): IQR and MAD fall back to THR 0.7 below 12 history values,
LR and LRR below 10; MAD has no 1.4826 factor; LR = LRR = ordinary least squares on the last 10 values
predicting one migration interval ahead; comparisons are exact (``>`` for thresholds, ``>=`` for LR).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from consolidator.policies.literature._compile import jit
from consolidator.policies.literature.codes import IQR, LR, LRR, MAD, MHOD, THR

__all__ = ["IQR", "LR", "LRR", "MAD", "MHOD", "THR"]


FALLBACK_THRESHOLD = 0.7
MIN_HISTORY_IQR_MAD = 12
MIN_HISTORY_LR = 10
HISTORY_LENGTH = 30


@jit
def trimmed_length(hist: npt.NDArray[np.float64]) -> int:
    """Length of ``hist`` without its trailing exact zeros (CloudSim MathUtil.trimZeroTail)."""
    n = hist.shape[0]
    while n > 0 and hist[n - 1] == 0.0:
        n -= 1
    return int(n)


@jit
def median(data: npt.NDArray[np.float64]) -> float:
    """Apache Commons Math ``Percentile(50)`` (the legacy estimator CloudSim uses)."""
    n = data.shape[0]
    s = np.sort(data)
    pos = 0.5 * (n + 1)
    if pos < 1.0:
        return float(s[0])
    if pos >= n:
        return float(s[n - 1])
    fpos = math.floor(pos)
    lower = s[int(fpos) - 1]
    upper = s[int(fpos)]
    return float(lower + (pos - fpos) * (upper - lower))


@jit
def iqr(data: npt.NDArray[np.float64]) -> float:
    """CloudSim MathUtil.iqr: quartiles at ``round(p·(n+1)) − 1`` of the sorted data (Java rounding)."""
    s = np.sort(data)
    n = s.shape[0]
    q1 = int(math.floor(0.25 * (n + 1) + 0.5)) - 1
    q3 = int(math.floor(0.75 * (n + 1) + 0.5)) - 1
    return float(s[q3] - s[q1])


@jit
def mad(data: npt.NDArray[np.float64]) -> float:
    """Median absolute deviation without the normal-consistency factor (CloudSim MathUtil.mad)."""
    if data.shape[0] == 0:
        return 0.0
    med = median(data)
    return median(np.abs(med - data))


@jit
def lr_prediction(hist: npt.NDArray[np.float64], steps_ahead: float) -> float:
    """OLS line through the 10 most recent values (x = 1..10, oldest first), evaluated at 10 + steps."""
    length = MIN_HISTORY_LR
    sx = 0.0
    sy = 0.0
    for i in range(length):
        sx += i + 1.0
        sy += hist[length - i - 1]
    mx = sx / length
    my = sy / length
    sxx = 0.0
    sxy = 0.0
    for i in range(length):
        dx = i + 1.0 - mx
        sxx += dx * dx
        sxy += dx * (hist[length - i - 1] - my)
    slope = sxy / sxx
    intercept = my - slope * mx
    return intercept + slope * (length + steps_ahead)


@jit
def is_overloaded(kind: int, param: float, req_frac: float, hist: npt.NDArray[np.float64],
                  steps_ahead: float) -> bool:
    """CloudSim's ``isHostOverUtilized`` for detector ``kind`` with safety parameter or threshold ``param``.

    ``hist`` is the trimmed host history (most recent first); ``steps_ahead`` is LR's number of
    scheduling intervals a migration of the host's largest VM takes (1 in the PlanetLab setup).
    """
    n = hist.shape[0]
    if kind == THR:
        return req_frac > param
    if kind == IQR or kind == MAD:
        if n < MIN_HISTORY_IQR_MAD:
            return req_frac > FALLBACK_THRESHOLD
        spread = iqr(hist) if kind == IQR else mad(hist)
        return req_frac > 1.0 - param * spread
    if n < MIN_HISTORY_LR:
        return req_frac > FALLBACK_THRESHOLD
    return lr_prediction(hist, steps_ahead) * param >= 1.0
