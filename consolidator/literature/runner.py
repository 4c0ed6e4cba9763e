"""Runs of the CloudSim-compatible profile: load a day, run one policy on it, the result as JSON.

The realistic profile (the simulator on the same day) and sweeps over both live in
``consolidator.experiments.planetlab``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from consolidator.domain.errors import UserError
from consolidator.literature.cloudsim import RunResult, run_cloudsim
from consolidator.policies.literature.registry import parse_policy
from consolidator.traces.load import (
    Trace,
    day_folder,
    load_csv,
    load_planetlab_day,
)


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


def run_one(trace: Trace, day: str, policy: str, seed: int = 1) -> RunResult:
    """One day under one policy, as CloudSim 3.0.3 runs it."""
    return run_cloudsim(trace, parse_policy(policy), day, seed)


def as_dict(result: RunResult) -> dict[str, object]:
    return {k: (float(v) if isinstance(v, float) else v) for k, v in dataclasses.asdict(result).items()}
