"""The one registration of planner policies: name -> builder with typed, validated parameters and a line.

Every policy the loop can run is here, and ``consolidator policies``, ``make_policy``, the manager's
configuration and the docs read this table:

- the paper's heuristic, ours and the baselines (``paper``, ``aware``, ``ideal``, ``none``): their
  numeric dataclass fields are their parameters, with the fields' defaults;
- the literature policies, ``<detector>-<selector>-<parameter>`` (Beloglazov & Buyya: THR, IQR, MAD,
  LR, LRR, MHOD × MMT, MU, RS, MC, PABFD placement), each detector and selector registered once in
  ``policies.literature.registry``; listed with the detector's default parameter (``thr-mmt-0.8``),
  and also accepted without it (``thr-mmt``) or with another value (``thr-mmt-0.7``).

Building a literature policy loads the compiled decision code; listing the table does not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from consolidator.domain.errors import UserError
from consolidator.domain.registry import Param, Value, check_args
from consolidator.domain.registry import describe as describe_table
from consolidator.policies.aware import AwarePolicy
from consolidator.policies.base import Policy
from consolidator.policies.baselines import IdealFirstFit, NoConsolidation
from consolidator.policies.literature import registry as lit
from consolidator.policies.paper import PaperPolicy


@dataclass(frozen=True, slots=True)
class PolicyEntry:
    name: str
    summary: str
    params: tuple[Param, ...]
    build: Callable[..., Policy]

    def make(self, args: dict[str, Any]) -> Policy:
        values = check_args(self.params, args, f"policy {self.name!r}", lambda key: f"policy.{key}",
                            defaults=False)
        try:
            return self.build(**values)
        except ValueError as exc:
            raise UserError(str(exc), field="policy") from exc


def _dataclass_entry(name: str, cls: type, summary: str) -> PolicyEntry:
    """A policy class whose numeric dataclass fields are its parameters."""
    params = tuple(
        Param(f.name, float(f.default), kind=int if f.type in ("int", int) else float)  # type: ignore[arg-type]
        for f in dataclasses.fields(cls)
        if f.type in ("float", "int", float, int) and f.name != "name"
    )
    return PolicyEntry(name, summary, params, cls)


def _literature_entry(detector: lit.Detector, selector: lit.Selector) -> PolicyEntry:
    info = lit.DETECTORS[detector]
    policy = lit.LiteraturePolicy(detector, selector, info.default)
    params = (
        info.param,
        Param("seed", 1, "seed of the random VM selection (RS)", kind=int, low=0),
        Param("interval_s", 300.0, "planning interval, s (CloudSim's scheduling interval)", low=1e-9),
        Param("underload_tries", 0, "hosts the underload step tries per round (0: all, as CloudSim)", kind=int,
              low=0),
    )

    def build(**values: float) -> Policy:
        return _literature(detector, selector, values.get(info.param.name, info.default),
                           int(values.get("seed", 1)), float(values.get("interval_s", 300.0)),
                           int(values.get("underload_tries", 0)))

    return PolicyEntry(policy.name, lit.summary(policy), params, build)


def _literature(detector: lit.Detector, selector: lit.Selector, parameter: float, seed: int,
                interval_s: float, underload_tries: int) -> Policy:
    from consolidator.policies.literature.planner import LiteraturePlanner  # loads the compiled code

    policy = lit.LiteraturePolicy(detector, selector, parameter)
    return LiteraturePlanner(policy.name, policy.detector_code, policy.selector_code, parameter, seed, interval_s,
                             underload_tries)


ENTRIES: dict[str, PolicyEntry] = {
    e.name: e for e in (
        _dataclass_entry("paper", PaperPolicy, "The paper's Warehouse/Server heuristic (Hirofuchi et al. 2011, "
                                               "III-C): distribute on overload, consolidate idle VMs back."),
        _dataclass_entry("aware", AwarePolicy, "Ours: migration-aware packing that prices each move and picks "
                                               "precopy, postcopy or hybrid per move."),
        _dataclass_entry("ideal", IdealFirstFit, "Baseline: First-Fit of every VM each period, instant "
                                                 "migrations (the paper's ideal)."),
        _dataclass_entry("none", NoConsolidation, "Baseline: one VM per Server node, never moved."),
        *(_literature_entry(d, s) for d in lit.Detector for s in lit.Selector),
    )
}


def policy_names() -> list[str]:
    """Every registered name, in the table's order."""
    return list(ENTRIES)


def describe() -> list[dict[str, object]]:
    """``consolidator policies --json``: name, parameters (default, type, range, meaning) and summary."""
    return describe_table(ENTRIES.values())


def make_policy(name: str, **args: Any) -> Policy:
    """Build a policy by name; unknown names and arguments, wrong types or ranges raise UserError.

    Besides the listed names, a literature policy may be named without its parameter (``thr-mmt``)
    or with another value (``thr-mmt-0.7``); an explicit keyword argument wins over the name's value.
    """
    entry, preset = policy_entry(name)
    return entry.make({**preset, **args})


def policy_args(name: str, args: Mapping[str, Any]) -> dict[str, Value]:
    """Every parameter of policy ``name`` with its value: ``args`` checked, the others' defaults (the
    value a parameterised name such as ``thr-mmt-0.7`` carries included); builds nothing."""
    entry, preset = policy_entry(name)
    return check_args(entry.params, {**preset, **args}, f"policy {entry.name!r}", lambda key: f"policy.{key}")


def policy_entry(name: str) -> tuple[PolicyEntry, dict[str, Any]]:
    """The table's entry for any name ``make_policy`` accepts, and the arguments the name itself sets."""
    entry = ENTRIES.get(name)
    if entry is not None:
        return entry, {}
    key = name.strip().lower()
    if key.count("-") in (1, 2) and key.split("-")[0] in {d.value for d in lit.Detector}:
        parsed = lit.parse_policy(key)
        if parsed.baseline is None:
            base = ENTRIES[lit.LiteraturePolicy(parsed.detector, parsed.selector,
                                                lit.DETECTORS[parsed.detector].default).name]
            return base, {lit.DETECTORS[parsed.detector].param.name: parsed.parameter}
    raise UserError(f"unknown policy {name!r} (known: paper, aware, ideal, none, or <detector>-<selector>"
                    f"[-<parameter>] such as thr-mmt-0.8; `consolidator policies` lists them)", field="policy")
