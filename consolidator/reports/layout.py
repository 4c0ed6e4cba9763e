"""Finds the experiments in an output folder: ``OUT/<scenario>/<variant>/seed-<n>/`` plus table.json."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from consolidator.domain.errors import UserError
from consolidator.reports.runs import read_json

log = logging.getLogger(__name__)

SEED_DIR = re.compile(r"^seed-(\d+)$")
# The paper's variants first, in the order of its Table IV; other variants follow alphabetically.
VARIANT_ORDER = ("none", "ideal", "postcopy", "precopy", "hybrid")
SCENARIO_ORDER = ("simple", "complex")


@dataclass(frozen=True)
class Experiment:
    """One scenario's runs: variant -> seed -> run folder, and its table.json if written."""

    scenario: str
    path: Path
    runs: dict[str, dict[int, Path]]
    table_path: Path | None

    @property
    def variants(self) -> list[str]:
        return sorted(self.runs, key=_variant_key)

    def seeds(self, variant: str) -> list[int]:
        return sorted(self.runs.get(variant, {}))

    def figure_seed(self) -> int | None:
        """The seed whose time series are drawn: the lowest one with full run folders (hosts.csv, ...)
        for the most variants; None if every run kept only its summary.json."""
        counts: dict[int, int] = {}
        for seeds in self.runs.values():
            for seed, folder in seeds.items():
                if (folder / "hosts.csv").exists():
                    counts[seed] = counts.get(seed, 0) + 1
        return min(counts, key=lambda seed: (-counts[seed], seed)) if counts else None

    def run_folder(self, variant: str, seed: int) -> Path | None:
        return self.runs.get(variant, {}).get(seed)


def _variant_key(name: str) -> tuple[int, str]:
    return (VARIANT_ORDER.index(name) if name in VARIANT_ORDER else len(VARIANT_ORDER), name)


def _scenario_key(name: str) -> tuple[int, str]:
    return (SCENARIO_ORDER.index(name) if name in SCENARIO_ORDER else len(SCENARIO_ORDER), name)


def _variant_runs(variant_dir: Path) -> dict[int, Path]:
    runs = {}
    for child in variant_dir.iterdir():
        match = SEED_DIR.match(child.name)
        if match and child.is_dir():
            runs[int(match.group(1))] = child
    return runs


def find_experiment(scenario_dir: Path) -> Experiment | None:
    """The experiment stored in one scenario folder, or None if it holds no run folders."""
    runs = {}
    for child in sorted(scenario_dir.iterdir()):
        if child.is_dir():
            seeds = _variant_runs(child)
            if seeds:
                runs[child.name] = seeds
    table = scenario_dir / "table.json"
    if not runs and not table.exists():
        return None
    return Experiment(
        scenario=scenario_dir.name,
        path=scenario_dir,
        runs=runs,
        table_path=table if table.exists() else None,
    )


def single_run(run_dir: Path) -> Experiment:
    """A lone run folder (``consolidator simulate --out DIR``) as a one-variant, one-seed experiment."""
    summary = read_json(run_dir / "summary.json")
    if not isinstance(summary, dict):
        raise UserError("expected a JSON object", source=str(run_dir / "summary.json"))
    policy, migration = str(summary.get("policy", "run")), str(summary.get("migration", ""))
    variant = migration if policy == "paper" and migration else policy
    seed = summary.get("seed")
    return Experiment(
        scenario=str(summary.get("scenario", run_dir.name)),
        path=run_dir,
        runs={variant: {seed if isinstance(seed, int) else 0: run_dir}},
        table_path=None,
    )


def find_experiments(out_dir: Path) -> list[Experiment]:
    """Every experiment under ``out_dir`` (or ``out_dir`` itself if it is one run folder); none at all
    is a UserError saying what was expected."""
    if not out_dir.is_dir():
        raise UserError("output folder is missing", source=str(out_dir))
    if (out_dir / "summary.json").exists():
        return [single_run(out_dir)]
    found = []
    for child in sorted(out_dir.iterdir(), key=lambda p: _scenario_key(p.name)):
        if child.is_dir() and child.name != "figures":
            experiment = find_experiment(child)
            if experiment is not None:
                found.append(experiment)
    if not found:
        raise UserError(
            "no experiment found (expected <scenario>/<variant>/seed-<n>/ run folders or <scenario>/table.json)",
            source=str(out_dir),
        )
    log.debug("found experiments: %s", [e.scenario for e in found])
    return found
