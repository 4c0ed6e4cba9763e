"""Integer codes of the literature detectors and selectors, as the compiled decision code takes them.

Plain constants in a module without numba, so the policy registry can name them without loading the
compiler (``consolidator policies`` stays fast).
"""

from __future__ import annotations

# Overload detectors (detectors.is_overloaded; MHOD: mhod.mhod_overloaded)
THR = 0
IQR = 1
MAD = 2
LR = 3
LRR = 4
MHOD = 5

# VM selectors (selectors.select_*)
MMT = 0
MU = 1
RS = 2
MC = 3
