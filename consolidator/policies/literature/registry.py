"""Literature policy names: ``<detector>-<selector>[-<parameter>]`` such as ``thr-mmt-0.8``, ``lr-mmt-1.2``.

One registration per extension point: ``DETECTORS`` (each detector with its parameter: default and the
range it must lie in) and ``SELECTORS``; the compiled code's integer codes derive from them (``codes``).
The parameter is THR's utilisation threshold, or the safety parameter of IQR, MAD, LR and LRR.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from consolidator.domain.errors import UserError
from consolidator.domain.registry import Param


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
    """One overload detector: what it is called and its one parameter (name, default, range, meaning)."""

    title: str
    param: Param

    @property
    def default(self) -> float:
        return self.param.number


def _safety(default: float, meaning: str) -> Param:
    return Param("safety", default, meaning, low=0.0, high=10.0)


# The one table of detectors; the compiled code's integer codes are positions in it (``codes``).
DETECTORS: dict[Detector, DetectorInfo] = {
    Detector.THR: DetectorInfo("static threshold",
                               Param("threshold", 0.8, "utilisation threshold (0..1)", low=0.0, high=1.0)),
    Detector.IQR: DetectorInfo("interquartile range", _safety(1.5, "safety parameter s: 1 - s*IQR")),
    Detector.MAD: DetectorInfo("median absolute deviation", _safety(2.5, "safety parameter s: 1 - s*MAD")),
    Detector.LR: DetectorInfo("local regression", _safety(1.2, "safety parameter s: s*prediction >= 1")),
    Detector.LRR: DetectorInfo("robust local regression (= LR in CloudSim 3.0.3)",
                               _safety(1.2, "safety parameter s: s*prediction >= 1")),
    Detector.MHOD: DetectorInfo("Markov host overload detection",
                                Param("otf", 0.1, "overload time fraction target (OTF)", low=0.0, high=1.0)),
}
# The one table of VM selectors (codes: positions, as for detectors).
SELECTORS: dict[Selector, str] = {
    Selector.MMT: "minimum migration time", Selector.MU: "minimum utilisation", Selector.RS: "random selection",
    Selector.MC: "maximum correlation",
}


def detector_code(detector: Detector) -> int:
    """The integer the compiled decision code takes for ``detector``: its position in ``DETECTORS``."""
    return list(DETECTORS).index(detector)


def selector_code(selector: Selector) -> int:
    """The integer the compiled decision code takes for ``selector``: its position in ``SELECTORS``."""
    return list(SELECTORS).index(selector)


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
        return detector_code(self.detector)

    @property
    def selector_code(self) -> int:
        return selector_code(self.selector)


def summary(policy: LiteraturePolicy) -> str:
    """One line for ``consolidator policies``."""
    d = DETECTORS[policy.detector]
    return (f"Beloglazov & Buyya: overload by {d.title} ({d.param.name} {policy.parameter:g}), VM selection by "
            f"{SELECTORS[policy.selector]}, PABFD placement (as CloudSim 3.0.3)")


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
    value = float(info.param.check(f"policy {name!r} ({info.param.help})", value, "--policy"))
    return LiteraturePolicy(detector, selector, value)
