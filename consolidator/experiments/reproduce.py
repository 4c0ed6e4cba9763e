"""The main job: the paper's simple and complex experiments, postcopy vs precopy vs the baselines.

Writes run folders under OUT/<scenario>/<variant>/seed-<n>/ and OUT/<scenario>/table.json; the
report (consolidator.reports) is drawn from those files.
"""

from __future__ import annotations

import enum
import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from consolidator.domain.types import MigrationMethod
from consolidator.experiments.runs import simulate, timeline
from consolidator.sim.backlog import Accounting
from consolidator.sim.engine import RunResult
from consolidator.sim.scenario import Scenario, load_scenario

# Table IV of the paper (measured on its testbed), shown beside our figures.
PAPER_TABLE_IV = {
    "none": {"energy_ws": 390175, "saved_pct": 0.0},
    "ideal": {"energy_ws": 294033, "saved_pct": 24.6},
    "postcopy": {"energy_ws": 344204, "saved_pct": 11.8, "gap_removed_pct": 48.0},
    "precopy": {"energy_ws": 369877, "saved_pct": 5.2, "gap_removed_pct": 21.0},
}


class Reading(enum.Enum):
    """How a variant reads the scenario's hosts and guests (DESIGN §2)."""

    COHERENT = "coherent"  # the model: a host serves what its power curve charges, work waits
    # Sensitivity only: hosts serve 4 but their power stops rising at 1 (the simulator before
    # 2026-12-04). Packing active VMs then costs nothing, which no real host does.
    FOUR_CORE_ONE_POWER = "4-core service, 1-core power"
    LOST_CPU = "lost CPU"  # legacy accounting: CPU a VM did not get is dropped, not owed (comparison only)


@dataclass(frozen=True)
class Variant:
    """One row of the table. Rows are data: a new policy's row is one more entry in VARIANTS."""

    name: str
    policy: str
    method: MigrationMethod
    policy_args: tuple[tuple[str, float], ...] = ()
    main: bool = True  # one of Table IV's rows (else a sensitivity row)
    max_moves_per_host: int | None = None  # VM Controller limit (OpenStack Nova's default is 1)
    reading: Reading = Reading.COHERENT
    own: bool = False  # our own policy (not the paper's): the JSON names its row as "own_policy"
    note: str = ""  # why the row is there, shown under the table

    def scenario_for(self, sc: Scenario) -> Scenario:
        if self.max_moves_per_host:
            sc = replace(sc, max_moves_per_host=self.max_moves_per_host)
        if self.reading is Reading.FOUR_CORE_ONE_POWER:
            sc = replace(sc, hosts=tuple(replace(h, cores=4.0, power=replace(h.power, full_load_cores=1.0))
                                         for h in sc.hosts))
        elif self.reading is Reading.LOST_CPU:
            sc = replace(sc, guests=replace(sc.guests, accounting=Accounting.LOST_CPU))
        return sc


_FOUR_ONE = ("hosts serve 4 but draw full power at 1: packing active VMs looks free (sensitivity only, "
             "DESIGN §2)")
VARIANTS = (
    Variant("none", "none", MigrationMethod.POSTCOPY),
    Variant("ideal", "ideal", MigrationMethod.INSTANT),
    Variant("postcopy", "paper", MigrationMethod.POSTCOPY),
    Variant("precopy", "paper", MigrationMethod.PRECOPY),
    Variant("aware", "aware", MigrationMethod.POSTCOPY, own=True,
            note="ours (policies/aware.py): packs idle VMs beside active ones, prices each move, picks its method"),
    Variant("hybrid", "paper", MigrationMethod.HYBRID, main=False),
    Variant("postcopy-1/host", "paper", MigrationMethod.POSTCOPY, main=False, max_moves_per_host=1),
    Variant("precopy-1/host", "paper", MigrationMethod.PRECOPY, main=False, max_moves_per_host=1),
    Variant("ideal@1.5", "ideal", MigrationMethod.INSTANT, (("capacity", 1.5),), main=False,
            note="First-Fit packs to 1.5 (the paper does not say what its First-Fit used)"),
    Variant("ideal@2.0", "ideal", MigrationMethod.INSTANT, (("capacity", 2.0),), main=False),
    Variant("postcopy@4cores", "paper", MigrationMethod.POSTCOPY, main=False, reading=Reading.FOUR_CORE_ONE_POWER,
            note=_FOUR_ONE),
    Variant("precopy@4cores", "paper", MigrationMethod.PRECOPY, main=False, reading=Reading.FOUR_CORE_ONE_POWER,
            note=_FOUR_ONE),
    Variant("aware@instant", "aware", MigrationMethod.INSTANT, main=False,
            note="ours where moves and power transitions take no time (the ideal's world): what moves cost it"),
    Variant("paper@instant", "paper", MigrationMethod.INSTANT, main=False,
            note="the paper's heuristic where moves and power transitions take no time"),
    Variant("postcopy-lost-cpu", "paper", MigrationMethod.POSTCOPY, main=False, reading=Reading.LOST_CPU,
            note="legacy accounting: unserved CPU is dropped, so its energy is not at equal work"),
    Variant("precopy-lost-cpu", "paper", MigrationMethod.PRECOPY, main=False, reading=Reading.LOST_CPU),
)
MAIN_VARIANTS = tuple(v for v in VARIANTS if v.main)
EXTRA_VARIANTS = tuple(v for v in VARIANTS if not v.main)

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
        run_sc = v.scenario_for(sc)
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


def _per_seed(runs: dict[str, list[dict[str, Any]]], name: str, key: str) -> list[float]:
    return [float(r[key]) for r in runs[name]]


def _saved_and_gap(runs: dict[str, list[dict[str, Any]]], name: str, key: str) -> tuple[list[float], list[float]]:
    """Per seed: % saved against that seed's ``none`` and % of its none→ideal gap removed, on ``key``."""
    none, ideal, energy = (_per_seed(runs, n, key) for n in ("none", "ideal", name))
    saved = [100 * (n - e) / n for n, e in zip(none, energy, strict=True)]
    gap = [100 * (n - e) / (n - i) if n != i else 0.0 for n, e, i in zip(none, energy, ideal, strict=True)]
    return saved, gap


def _row(runs: dict[str, list[dict[str, Any]]], v: Variant) -> dict[str, Any]:
    rs = runs[v.name]
    row: dict[str, Any] = {}
    for key, label in (("energy_ws", ""), ("energy_to_complete_ws", "_complete")):
        saved, gap = _saved_and_gap(runs, v.name, key)
        row[key], row[f"{key}_sd"] = _mean_sd(_per_seed(runs, v.name, key))
        row[f"saved{label}_pct"], row[f"saved{label}_pct_sd"] = _mean_sd(saved)
        row[f"gap_removed{label}_pct"], row[f"gap_removed{label}_pct_sd"] = _mean_sd(gap)
    for key in ("delay_mean_s", "delay_p95_s", "complete_s", "unserved_cpu_pct"):
        row[key], row[f"{key}_sd"] = _mean_sd(_per_seed(runs, v.name, key))
    for key in ("work_arrived_core_s", "work_served_core_s", "backlog_end_core_s", "delay_max_s",
                "unserved_core_s", "overload_s", "migrations", "migrations_cancelled", "active_host_s",
                "active_on_warehouse_vm_s"):
        row[key] = statistics.fmean(_per_seed(runs, v.name, key))
    row["completed"] = all(r["completed"] for r in rs)  # every seed's backlog drained within the bound
    row["main"] = v.main
    row["reading"] = v.reading.value
    if v.note:
        row["note"] = v.note
    return row


NOTES = (
    "energy: mean ± sd over seeds; saved % and gap removed: per seed vs. that seed's none/ideal",
    "gap removed = (E_none − E_x) / (E_none − E_ideal)",
    "read 'energy to complete' (equal work: every row serves the same work, arrivals stop at the scenario's "
    "duration and the run goes on until every backlog is served); 'energy' is the paper's fixed window, "
    "which rewards leaving work undone",
    "delay: extra delay of work, FIFO per VM, weighted by work (docs/models.md); mean and 95th percentile",
)


def build_table(name: str, seeds: list[int], runs: dict[str, list[dict[str, Any]]],
                variants: tuple[Variant, ...]) -> dict[str, Any]:
    """Mean ± sd over seeds; saved % and gap removed are computed per seed, then averaged."""
    rows = {v.name: _row(runs, v) for v in variants}
    rows["none"]["saved_pct"] = rows["none"]["saved_complete_pct"] = 0.0
    own = next((v.name for v in variants if v.own), None)
    return {"scenario": name, "seeds": seeds, "rows": rows, "paper": PAPER_TABLE_IV, "own_policy": own,
            "notes": list(NOTES)}


INTERFACE_KEYS = ("energy_ws", "saved_pct", "gap_removed_pct", "unserved_cpu_pct", "energy_to_complete_ws",
                  "saved_complete_pct", "gap_removed_complete_pct", "work_arrived_core_s", "work_served_core_s",
                  "backlog_end_core_s", "complete_s", "delay_mean_s", "delay_p95_s")


def interface_table(table: dict[str, Any]) -> dict[str, Any]:
    """The stable JSON shape of `reproduce complex --json` (issue 8 adds the equal-work keys)."""
    def pick(row: dict[str, Any]) -> dict[str, Any]:
        return {**{k: round(row[k], 3) for k in INTERFACE_KEYS}, "completed": row["completed"]}

    return {
        "scenario": table["scenario"],
        "seeds": len(table["seeds"]),
        "own_policy": table.get("own_policy"),
        "table": {name: pick(row) for name, row in table["rows"].items() if row.get("main", True)},
        "extra": {name: pick(row) for name, row in table["rows"].items() if not row.get("main", True)},
    }
