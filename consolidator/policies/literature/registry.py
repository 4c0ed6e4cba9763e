"""Literature policy names: ``<detector>-<selector>[-<parameter>]`` such as ``thr-mmt-0.8``, ``lr-mmt-1.2``.

One registration: each detector with its default parameter and the range a parameter must lie in.
The parameter is THR's utilisation threshold, or the safety parameter of IQR, MAD, LR and LRR.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from consolidator.domain.errors import UserError
from consolidator.policies.literature import codes


class Detector(enum.Enum):
    THR = "thr"
    IQR = "iqr"
    MAD = "mad"
    LR = "lr"
    LRR = "lrr"
    MHOD = "mhod"  # not in CloudSim 3.0.3: Beloglazov & Buyya 2013, OpenStack Neat's defaults


class Baseline(enum.Enum):
    """CloudSim's reference runs without dynamic consolidation."""

    DVFS = "dvfs"  # PowerVmAllocationPolicySimple: first fit, no migrations, power follows the load
    NPA = "npa"  # no power management: every host draws its full power all the time


class Selector(enum.Enum):
    MMT = "mmt"
    MU = "mu"
    RS = "rs"
    MC = "mc"


@dataclass(frozen=True, slots=True)
class DetectorInfo:
    code: int
    default: float
    low: float  # inclusive
    high: float  # inclusive
    meaning: str
    param_name: str  # the parameter's name as a keyword of make_policy
    title: str


DETECTORS: dict[Detector, DetectorInfo] = {
    Detector.THR: DetectorInfo(codes.THR, 0.8, 0.0, 1.0, "utilisation threshold (0..1)", "threshold",
                               "static threshold"),
    Detector.IQR: DetectorInfo(codes.IQR, 1.5, 0.0, 10.0, "safety parameter s: 1 - s*IQR", "safety",
                               "interquartile range"),
    Detector.MAD: DetectorInfo(codes.MAD, 2.5, 0.0, 10.0, "safety parameter s: 1 - s*MAD", "safety",
                               "median absolute deviation"),
    Detector.LR: DetectorInfo(codes.LR, 1.2, 0.0, 10.0, "safety parameter s: s*prediction >= 1", "safety",
                              "local regression"),
    Detector.LRR: DetectorInfo(codes.LRR, 1.2, 0.0, 10.0, "safety parameter s: s*prediction >= 1", "safety",
                               "robust local regression (= LR in CloudSim 3.0.3)"),
    Detector.MHOD: DetectorInfo(codes.MHOD, 0.1, 0.0, 1.0, "overload time fraction target (OTF)", "otf",
                                "Markov host overload detection"),
}
SELECTOR_CODES: dict[Selector, int] = {
    Selector.MMT: codes.MMT, Selector.MU: codes.MU, Selector.RS: codes.RS, Selector.MC: codes.MC,
}
SELECTOR_TITLES: dict[Selector, str] = {
    Selector.MMT: "minimum migration time", Selector.MU: "minimum utilisation", Selector.RS: "random selection",
    Selector.MC: "maximum correlation",
}


@dataclass(frozen=True, slots=True)
class LiteraturePolicy:
    """A validated policy: overload detector with its parameter, VM selector; PABFD placement.

    With ``baseline`` set the run has no migrations (and detector/selector are not used).
    """

    detector: Detector
    selector: Selector
    parameter: float
    baseline: Baseline | None = None

    @property
    def name(self) -> str:
        if self.baseline is not None:
            return self.baseline.value
        return f"{self.detector.value}-{self.selector.value}-{self.parameter:g}"

    @property
    def detector_code(self) -> int:
        return DETECTORS[self.detector].code

    @property
    def selector_code(self) -> int:
        return SELECTOR_CODES[self.selector]


def summary(policy: LiteraturePolicy) -> str:
    """One line for ``consolidator policies``."""
    d = DETECTORS[policy.detector]
    return (f"Beloglazov & Buyya: overload by {d.title} ({d.param_name} {policy.parameter:g}), VM selection by "
            f"{SELECTOR_TITLES[policy.selector]}, PABFD placement (as CloudSim 3.0.3)")


def policy_names() -> list[str]:
    """Every detector-selector pair with its default parameter (the CloudSim examples' values)."""
    return [f"{d.value}-{s.value}-{DETECTORS[d].default:g}" for d in Detector for s in Selector]


def baseline_names() -> list[str]:
    return [b.value for b in Baseline]


def parse_policy(name: str) -> LiteraturePolicy:
    """``thr-mmt-0.8`` -> LiteraturePolicy; a missing parameter takes the detector's default.

    ``dvfs`` and ``npa`` are CloudSim's baselines without migrations.
    """
    key = name.strip().lower()
    if key in baseline_names():
        return LiteraturePolicy(Detector.THR, Selector.MMT, 1.0, Baseline(key))
    parts = key.split("-")
    if len(parts) not in (2, 3):
        raise UserError(f"malformed policy {name!r}: expected <detector>-<selector>[-<parameter>], "
                        f"e.g. thr-mmt-0.8", field="--policy")
    try:
        detector = Detector(parts[0])
    except ValueError:
        raise UserError(f"unknown overload detector {parts[0]!r} in {name!r} (known: "
                        f"{', '.join(d.value for d in Detector)})", field="--policy") from None
    try:
        selector = Selector(parts[1])
    except ValueError:
        raise UserError(f"unknown VM selector {parts[1]!r} in {name!r} (known: "
                        f"{', '.join(s.value for s in Selector)})", field="--policy") from None
    info = DETECTORS[detector]
    if len(parts) == 2:
        return LiteraturePolicy(detector, selector, info.default)
    try:
        value = float(parts[2])
    except ValueError:
        raise UserError(f"parameter {parts[2]!r} of {name!r} is not a number", field="--policy") from None
    if not math.isfinite(value) or not info.low <= value <= info.high:
        raise UserError(f"parameter {value:g} of {name!r} out of range [{info.low:g}, {info.high:g}] "
                        f"({info.meaning})", field="--policy")
    return LiteraturePolicy(detector, selector, value)
