"""Integer codes of the literature detectors and selectors, as the compiled decision code takes them.

Derived from the one registration (``registry.DETECTORS`` and ``registry.SELECTORS``: a code is the
kind's position there), never written twice. Plain constants in a module without numba, so numba
folds them into the compiled code and the policy registry does not load the compiler.
"""

from __future__ import annotations

from consolidator.policies.literature.registry import Detector, Selector, detector_code, selector_code

# Overload detectors (detectors.is_overloaded; MHOD: mhod.mhod_overloaded)
THR = detector_code(Detector.THR)
IQR = detector_code(Detector.IQR)
MAD = detector_code(Detector.MAD)
LR = detector_code(Detector.LR)
LRR = detector_code(Detector.LRR)
MHOD = detector_code(Detector.MHOD)

# VM selectors (selectors.select_*)
MMT = selector_code(Selector.MMT)
MU = selector_code(Selector.MU)
RS = selector_code(Selector.RS)
MC = selector_code(Selector.MC)
