"""The main job: the paper's simple and complex experiments, postcopy vs precopy vs the baselines.

Writes run folders under OUT/<scenario>/<variant>/seed-<n>/ and OUT/<scenario>/table.json; the
report (consolidator.reports) is drawn from those files.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from consolidator.domain.types import MigrationMethod
from consolidator.experiments.runs import simulate, timeline
from consolidator.sim.engine import RunResult
from consolidator.sim.scenario import Scenario, load_scenario

# Table IV of the paper (measured on its testbed), shown beside our figures.
PAPER_TABLE_IV = {
    "none": {"energy_ws": 390175, "saved_pct": 0.0},
    "ideal": {"energy_ws": 294033, "saved_pct": 24.6},
    "postcopy": {"energy_ws": 344204, "saved_pct": 11.8, "gap_removed_pct": 48.0},
    "precopy": {"energy_ws": 369877, "saved_pct": 5.2, "gap_removed_pct": 21.0},
}


@dataclass(frozen=True)
class Variant:
    name: str
    policy: str
    method: MigrationMethod
    policy_args: tuple[tuple[str, float], ...] = ()
    main: bool = True  # one of Table IV's rows (else a sensitivity row)
    max_moves_per_host: int | None = None  # VM Controller limit (OpenStack Nova's default is 1)


MAIN_VARIANTS = (
    Variant("none", "none", MigrationMethod.POSTCOPY),
    Variant("ideal", "ideal", MigrationMethod.INSTANT),
    Variant("postcopy", "paper", MigrationMethod.POSTCOPY),
    Variant("precopy", "paper", MigrationMethod.PRECOPY),
)
EXTRA_VARIANTS = (
    Variant("hybrid", "paper", MigrationMethod.HYBRID, main=False),
    Variant("postcopy-1/host", "paper", MigrationMethod.POSTCOPY, main=False, max_moves_per_host=1),
    Variant("precopy-1/host", "paper", MigrationMethod.PRECOPY, main=False, max_moves_per_host=1),
    Variant("ideal@1.5", "ideal", MigrationMethod.INSTANT, (("capacity", 1.5),), main=False),
    Variant("ideal@2.0", "ideal", MigrationMethod.INSTANT, (("capacity", 2.0),), main=False),
)

Progress = Callable[[str], None]


def run_simple(out: Path | None, methods: tuple[MigrationMethod, ...], scenario: Scenario | None = None,
               baselines: bool = True) -> dict[str, dict[str, Any]]:
    """The simple scenario's timelines per method; with ``baselines``, also ``none`` and ``ideal`` and,
    with ``out``, a one-seed table.json beside the runs."""
    sc = scenario or load_scenario("simple")
    results: dict[str, dict[str, Any]] = {}
    summaries: dict[str, list[dict[str, Any]]] = {}
    variants = [v for v in MAIN_VARIANTS if baselines or v.policy == "paper"]
    for v in variants:
        if v.policy == "paper" and v.method not in methods:
            continue
        folder = out / sc.name / _folder(v.name) / "seed-0" if out else None
        result = simulate(sc, v.policy, v.method, out_dir=folder)
        summaries[v.name] = [result.summary]
        if v.policy == "paper":
            results[v.method.value] = timeline(result)
    if out and baselines:
        table = build_table(sc.name, [sc.seed], summaries, tuple(v for v in variants if v.name in summaries))
        table["paper"] = {}
        (out / sc.name / "table.json").write_text(json.dumps(table, indent=2) + "\n")
    return results


def run_complex(out: Path | None, seeds: int, progress: Progress | None = None, extras: bool = True,
                scenario: Scenario | None = None) -> dict[str, Any]:
    """Every variant over seeds 0..seeds-1; seed 0 keeps its full run folder, the others a summary."""
    sc = scenario or load_scenario("complex")
    variants = MAIN_VARIANTS + (EXTRA_VARIANTS if extras else ())
    per_variant: dict[str, list[dict[str, Any]]] = {}
    for v in variants:
        run_sc = replace(sc, max_moves_per_host=v.max_moves_per_host) if v.max_moves_per_host else sc
        for seed in range(seeds):
            folder = out / sc.name / _folder(v.name) / f"seed-{seed}" if out else None
            result = simulate(run_sc, v.policy, v.method, seed=seed, policy_args=dict(v.policy_args),
                              out_dir=folder if seed == 0 else None, record_vms=seed == 0)
            if folder is not None and seed > 0:
                _write_summary(folder, result)
            per_variant.setdefault(v.name, []).append(result.summary)
            if progress:
                progress(f"{v.name} seed {seed}")
    table = build_table(sc.name, list(range(seeds)), per_variant, variants)
    if out:
        (out / sc.name).mkdir(parents=True, exist_ok=True)
        (out / sc.name / "table.json").write_text(json.dumps(table, indent=2) + "\n")
    return table


def _folder(variant: str) -> str:
    return variant.replace("/", "-per-")


def _write_summary(folder: Path, result: RunResult) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps(result.summary, indent=2, default=str) + "\n")


def _mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def build_table(name: str, seeds: list[int], runs: dict[str, list[dict[str, Any]]],
                variants: tuple[Variant, ...]) -> dict[str, Any]:
    """Mean ± sd over seeds; saved % and gap removed are computed per seed, then averaged."""
    none = [r["energy_ws"] for r in runs["none"]]
    ideal = [r["energy_ws"] for r in runs["ideal"]]
    rows: dict[str, dict[str, float]] = {}
    for v in variants:
        energy = [r["energy_ws"] for r in runs[v.name]]
        saved = [100 * (n - e) / n for n, e in zip(none, energy, strict=True)]
        gap = [100 * (n - e) / (n - i) if n != i else 0.0 for n, e, i in zip(none, energy, ideal, strict=True)]
        mean, sd = _mean_sd(energy)
        row = {
            "energy_ws": mean, "energy_ws_sd": sd,
            "saved_pct": statistics.fmean(saved), "saved_pct_sd": _mean_sd(saved)[1],
            "gap_removed_pct": statistics.fmean(gap), "gap_removed_pct_sd": _mean_sd(gap)[1],
            "unserved_cpu_pct": statistics.fmean(r["unserved_cpu_pct"] for r in runs[v.name]),
            "unserved_core_s": statistics.fmean(r["unserved_core_s"] for r in runs[v.name]),
            "overload_s": statistics.fmean(r["overload_s"] for r in runs[v.name]),
            "migrations": statistics.fmean(r["migrations"] for r in runs[v.name]),
            "migrations_cancelled": statistics.fmean(r["migrations_cancelled"] for r in runs[v.name]),
            "active_host_s": statistics.fmean(r["active_host_s"] for r in runs[v.name]),
            "active_on_warehouse_vm_s": statistics.fmean(r["active_on_warehouse_vm_s"] for r in runs[v.name]),
            "main": v.main,
        }
        rows[v.name] = row
    rows["none"]["saved_pct"] = 0.0
    return {"scenario": name, "seeds": seeds, "rows": rows, "paper": PAPER_TABLE_IV,
            "notes": ["energy: mean ± sd over seeds; saved % and gap removed: per seed vs. that seed's none/ideal",
                      "gap removed = (E_none − E_x) / (E_none − E_ideal)"]}


def interface_table(table: dict[str, Any]) -> dict[str, Any]:
    """The stable JSON shape of `reproduce complex --json`."""
    keys = ("energy_ws", "saved_pct", "gap_removed_pct", "unserved_cpu_pct")
    return {
        "scenario": table["scenario"],
        "seeds": len(table["seeds"]),
        "table": {name: {k: round(row[k], 3) for k in keys} for name, row in table["rows"].items()
                  if row.get("main", True)},
        "extra": {name: {k: round(row[k], 3) for k in keys} for name, row in table["rows"].items()
                  if not row.get("main", True)},
    }
