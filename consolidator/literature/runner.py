"""Runs of literature mode: one day under one policy and profile, side-by-side comparisons, sweeps."""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from consolidator.domain.errors import UserError
from consolidator.domain.types import MigrationMethod
from consolidator.literature.cloudsim import RunResult, run_cloudsim
from consolidator.literature.realistic import run_realistic
from consolidator.literature.traces import (
    Trace,
    day_folder,
    load_csv,
    load_planetlab_day,
)
from consolidator.policies.literature.registry import parse_policy

log = logging.getLogger(__name__)

PROFILES = ("cloudsim", "realistic")
METHODS = (MigrationMethod.PRECOPY, MigrationMethod.POSTCOPY, MigrationMethod.HYBRID)


def load_day(day: str, root: Path) -> tuple[Trace, str]:
    """The trace of ``day``: a PlanetLab day folder (name under ``root`` or a path) or a ``.csv`` file
    with columns timestamp, vm, cpu; returns it with the name to report."""
    candidate = Path(day)
    if candidate.suffix.lower() == ".csv":
        return load_csv(candidate), candidate.stem
    return load_planetlab_day(day_folder(day, root)), Path(day).name


def list_days(root: Path) -> list[str]:
    if not root.is_dir():
        raise UserError("no such traces folder", source=str(root), field="--traces")
    return sorted(p.name for p in root.iterdir() if p.is_dir())


def run_one(trace: Trace, day: str, policy: str, profile: str, method: MigrationMethod | None,
            seed: int = 1) -> RunResult:
    """One day, one policy, one profile (``method`` only for the realistic profile)."""
    parsed = parse_policy(policy)
    if profile == "cloudsim":
        if method is not None:
            raise UserError("--migration applies to the realistic profile only (CloudSim's model has "
                            "its own: RAM / 62.5 MB/s)", field="--migration")
        return run_cloudsim(trace, parsed, day, seed)
    if profile == "realistic":
        if parsed.baseline is not None and parsed.baseline.value == "npa":
            raise UserError("npa (every host at full power) has no realistic variant", field="--policy")
        return run_realistic(trace, parsed, day, method or MigrationMethod.POSTCOPY, seed)
    raise UserError(f"unknown profile {profile!r} (known: {', '.join(PROFILES)})", field="--profile")


def compare(trace: Trace, day: str, policy: str, methods: Sequence[MigrationMethod],
            seed: int = 1) -> list[RunResult]:
    """The cloudsim profile and the realistic one for each method, for a side-by-side report."""
    runs = [run_one(trace, day, policy, "cloudsim", None, seed)]
    runs.extend(run_one(trace, day, policy, "realistic", m, seed) for m in methods)
    return runs


def sweep(root: Path, days: Sequence[str], policies: Sequence[str], profile: str,
          method: MigrationMethod | None, seed: int = 1,
          on_done: Callable[[RunResult], None] | None = None) -> list[RunResult]:
    """Every policy on every day (traces loaded once per day); ``on_done`` after each day x policy.

    ``profile`` "compare" runs the cloudsim profile and the realistic one (``method``, or postcopy
    and precopy) for each.
    """
    for name in policies:
        parse_policy(name)  # fail before the first long run
    results: list[RunResult] = []
    for day in days:
        trace, _ = load_day(day, root)
        for name in policies:
            if profile == "compare":
                runs = compare(trace, day, name, [method] if method else [MigrationMethod.POSTCOPY,
                                                                          MigrationMethod.PRECOPY], seed)
            else:
                runs = [run_one(trace, day, name, profile, method, seed)]
            results.extend(runs)
            if on_done is not None:
                on_done(runs[-1])
    return results


def as_dict(result: RunResult) -> dict[str, object]:
    return {k: (float(v) if isinstance(v, float) else v) for k, v in dataclasses.asdict(result).items()}


def write_results(results: Sequence[RunResult], out: Path) -> tuple[Path, Path]:
    """``results.csv`` and ``results.json`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    rows = [as_dict(r) for r in results]
    csv_path, json_path = out / "results.csv", out / "results.json"
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["policy"])
        writer.writeheader()
        writer.writerows(rows)
    json_path.write_text(json.dumps(rows, indent=2) + "\n")
    return csv_path, json_path
