"""Literature mode's realistic profile: a PlanetLab day run by the simulator under a literature policy.

The CloudSim-compatible profile (``consolidator.literature``) copies CloudSim 3.0.3's model to the
digit. The realistic profile is no second engine: it is ``sim/`` running the same policy
(``make_policy``, the control loop, the engine's decision code) on the built-in scenario
``planetlab-20110303`` with the requested day — CloudSim's hosts, VM types and PABFD placement, and
our models of what CloudSim leaves free: precopy/postcopy/hybrid migrations over the same 62.5 MB/s,
S3 for idle hosts (7 W, 5 s each way), memory enforced by our controller, backlogged work (DESIGN §2).
Its figures are the simulator's run summary (``models.summary``); docs/literature.md compares the two.
"""

from __future__ import annotations

import copy
import csv
import json
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from consolidator.domain.errors import UserError
from consolidator.domain.types import MigrationMethod
from consolidator.literature import runner
from consolidator.policies.literature.registry import parse_policy
from consolidator.policies.registry import make_policy
from consolidator.sim.engine import RunResult, Simulation
from consolidator.sim.scenario import Scenario, load_scenario, scenario_from_dict

TEMPLATE = "planetlab-20110303"  # the built-in scenario whose hosts, VM types and models a day runs on
PROFILES = ("cloudsim", "realistic", "compare")
Row = dict[str, Any]


def day_scenario(day: str, root: Path) -> tuple[Scenario, str]:
    """The template scenario on ``day`` (a day folder under ``root``, a folder path or a CSV trace),
    for as long as its trace lasts; with the day's name."""
    trace, name = runner.load_day(day, root)
    raw = copy.deepcopy(load_scenario(TEMPLATE).raw)
    raw["name"] = "planetlab-" + (re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:50] or "day")
    raw["description"] = f"PlanetLab {name} on the hosts and models of {TEMPLATE}"
    raw["duration_s"] = trace.steps * trace.interval_s
    raw["workload"] = {**raw["workload"], "day": day, "traces": str(root), "interval_s": trace.interval_s}
    return scenario_from_dict(raw, f"{TEMPLATE} (built-in) on {name}"), name


def check_policy(policy: str) -> None:
    """UserError unless ``policy`` is a literature migration policy (the baselines have no simulator form)."""
    if parse_policy(policy).baseline is not None:
        raise UserError(f"{policy} has no realistic variant: the simulator runs the literature's migration "
                        "policies (thr/iqr/mad/lr/lrr/mhod-<selector>)", field="--policy")


def run_realistic(day: str, root: Path, policy: str, method: MigrationMethod, seed: int = 1) -> Row:
    """One day under ``policy`` in the simulator; its summary as a row (``energy_kwh`` added)."""
    check_policy(policy)
    started = time.perf_counter()
    scenario, name = day_scenario(day, root)
    result = Simulation(scenario, make_policy(policy, seed=seed), method, record_vms=False).run()
    return realistic_row(result, name, policy, time.perf_counter() - started)


def realistic_row(result: RunResult, day: str, policy: str, wall_s: float) -> Row:
    s = {k: v for k, v in result.summary.items() if k not in ("energy_ws_by_host", "params", "policy")}
    return {"day": day, "policy": policy, "profile": "realistic", **s,
            "energy_kwh": result.totals.energy_ws / 3.6e6, "wall_s": wall_s}


def cloudsim_row(day: str, root: Path, policy: str, seed: int = 1) -> Row:
    trace, name = runner.load_day(day, root)
    return runner.as_dict(runner.run_one(trace, name, policy, seed))


def compare(day: str, root: Path, policy: str, methods: Sequence[MigrationMethod], seed: int = 1) -> list[Row]:
    """The CloudSim-compatible run and the simulator's run for each method, side by side."""
    check_policy(policy)
    return [cloudsim_row(day, root, policy, seed)] + [run_realistic(day, root, policy, m, seed) for m in methods]


def sweep(root: Path, days: Sequence[str], policies: Sequence[str], profile: str,
          method: MigrationMethod | None, seed: int = 1, on_done: Callable[[Row], None] | None = None) -> list[Row]:
    """Every policy on every day; ``profile`` cloudsim, realistic (``method``, default postcopy) or
    compare (cloudsim and realistic ``method``, or postcopy and precopy); ``on_done`` after each."""
    if profile not in PROFILES:
        raise UserError(f"unknown profile {profile!r} (known: {', '.join(PROFILES)})", field="--profile")
    for name in policies:  # fail before the first long run
        if profile == "cloudsim":
            parse_policy(name)
        else:
            check_policy(name)
    methods = [method] if method else [MigrationMethod.POSTCOPY, MigrationMethod.PRECOPY]
    rows: list[Row] = []
    for day in days:
        for name in policies:
            if profile == "cloudsim":
                done = [cloudsim_row(day, root, name, seed)]
            elif profile == "realistic":
                done = [run_realistic(day, root, name, method or MigrationMethod.POSTCOPY, seed)]
            else:
                done = compare(day, root, name, methods, seed)
            rows.extend(done)
            if on_done is not None:
                on_done(done[-1])
    return rows


def write_rows(rows: Sequence[Row], out: Path) -> tuple[Path, Path]:
    """``results.csv`` (the union of the rows' keys; a CloudSim row has no work keys, a simulator row no
    SLA metrics) and ``results.json`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out / "results.csv", out / "results.json"
    fields = list(dict.fromkeys(k for r in rows for k in r)) or ["policy"]
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)
    json_path.write_text(json.dumps(list(rows), indent=2) + "\n")
    return csv_path, json_path
