"""CLI of literature mode: ``consolidator planetlab`` (one day) and ``consolidator planetlab-sweep``."""

from __future__ import annotations

import enum
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from consolidator.domain.errors import UserError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from consolidator.literature.cloudsim import RunResult

# Each command imports what it needs when it runs: `consolidator --help` stays fast.
TRACES_ENV = "CONSOLIDATOR_PLANETLAB"  # the same name as consolidator.literature.traces.TRACES_ENV

REFERENCE_POLICIES = ("thr-mmt-0.8", "iqr-mmt-1.5", "mad-mmt-2.5", "lr-mmt-1.2", "lrr-mmt-1.2")


class Profile(enum.Enum):
    cloudsim = "cloudsim"
    realistic = "realistic"


class SweepProfile(enum.Enum):
    cloudsim = "cloudsim"
    realistic = "realistic"
    compare = "compare"


class Method(enum.Enum):
    precopy = "precopy"
    postcopy = "postcopy"
    hybrid = "hybrid"


TracesOpt = Annotated[Path | None, typer.Option(
    "--traces", help=f"Folder of PlanetLab day folders (default ${TRACES_ENV}, else ../shared/data/planetlab, "
                     "else the cache `consolidator data planetlab` fills).")]


def _console() -> Console:
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=160)


def _table(results: list[RunResult], title: str) -> Table:
    from rich.table import Table

    table = Table(title=title)
    for col in ("day", "policy", "profile", "migration", "kWh", "sleep+mig kWh", "migrations", "cancelled",
                "SLATAH %", "PDM %", "SLAV", "ESV", "shutdowns", "wall s"):
        left = col in ("day", "policy", "profile", "migration")
        table.add_column(col, justify="left" if left else "right", no_wrap=left)
    for r in results:
        table.add_row(r.day, r.policy, r.profile, r.migration, f"{r.energy_kwh:.2f}",
                      f"{r.sleep_energy_kwh + r.extra_energy_kwh:.2f}", f"{r.migrations:,}",
                      f"{r.cancelled_migrations:,}", f"{r.slatah_pct:.2f}", f"{r.pdm_pct:.3f}", f"{r.slav:.3e}",
                      f"{r.esv:.3e}", f"{r.host_shutdowns:,}", f"{r.wall_s:.2f}")
    return table


def planetlab(
    day: Annotated[str, typer.Option(
        help="Day folder name (e.g. 20110303), a path to one, or a CSV file (timestamp,vm,cpu).")],
    policy: Annotated[str, typer.Option(
        help="<detector>-<selector>[-<param>], e.g. thr-mmt-0.8, lr-mmt-1.2; or dvfs / npa (no migrations).")],
    profile: Annotated[Profile, typer.Option(help="cloudsim: CloudSim 3.0.3's model; realistic: our costs.")]
    = Profile.cloudsim,
    migration: Annotated[Method | None, typer.Option(
        help="Realistic profile: this method only (default: postcopy and precopy side by side).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object, nothing else.")] = False,
    traces: TracesOpt = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the RS selector's generator.")] = 1,
) -> None:
    """Run one PlanetLab day under a literature policy (Beloglazov & Buyya, as CloudSim 3.0.3 runs it)."""
    from consolidator.domain.types import MigrationMethod
    from consolidator.literature import runner
    from consolidator.literature import traces as traces_mod
    from consolidator.policies.literature.registry import parse_policy

    parse_policy(policy)
    root = traces or traces_mod.default_traces_root()
    trace, name = runner.load_day(day, root)
    if profile is Profile.cloudsim:
        if migration is not None:
            raise UserError("--migration applies to --profile realistic only", field="--migration")
        results = [runner.run_one(trace, name, policy, "cloudsim", None, seed)]
    else:
        methods = ([MigrationMethod(migration.value)] if migration
                   else [MigrationMethod.POSTCOPY, MigrationMethod.PRECOPY])
        results = runner.compare(trace, name, policy, methods, seed)
    if as_json:
        if profile is Profile.cloudsim:
            typer.echo(json.dumps(runner.as_dict(results[0])))
        else:
            typer.echo(json.dumps({r.migration: runner.as_dict(r) for r in results}))
        return
    _console().print(_table(results, f"PlanetLab {name}, {results[0].policy}"))


def planetlab_sweep(
    days: Annotated[str, typer.Option(help="Comma-separated day names, or 'all'.")] = "all",
    policies: Annotated[str, typer.Option(help="Comma-separated policy names, or 'reference' / 'all'.")]
    = "reference",
    profile: Annotated[SweepProfile, typer.Option(
        help="cloudsim, realistic, or compare (cloudsim and realistic postcopy/precopy side by side).")]
    = SweepProfile.cloudsim,
    migration: Annotated[Method | None, typer.Option(
        help="Realistic/compare: the migration method (compare default: postcopy and precopy).")] = None,
    out: Annotated[Path, typer.Option(help="Folder for results.csv, results.json and comparison.png.")]
    = Path("out/planetlab"),
    traces: TracesOpt = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the RS selector's generator.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON, nothing else.")] = False,
) -> None:
    """Every policy on every day, with a progress bar; writes a table and a comparison plot."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from consolidator.domain.types import MigrationMethod
    from consolidator.literature import runner
    from consolidator.literature import traces as traces_mod
    from consolidator.literature.plot import comparison_plot  # matplotlib only when plotting
    from consolidator.policies.literature.registry import policy_names

    root = traces or traces_mod.default_traces_root()
    day_list = runner.list_days(root) if days == "all" else [d.strip() for d in days.split(",") if d.strip()]
    names = {"reference": list(REFERENCE_POLICIES), "all": policy_names()}.get(
        policies, [p.strip() for p in policies.split(",") if p.strip()])
    if profile is SweepProfile.cloudsim and migration is not None:
        raise UserError("--migration applies to --profile realistic or compare only", field="--migration")
    method = MigrationMethod(migration.value) if migration else None
    for d in day_list:
        if not d.lower().endswith(".csv"):
            traces_mod.day_folder(d, root)
    started = time.perf_counter()
    console = _console()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=as_json) as progress:
        task = progress.add_task("PlanetLab sweep", total=len(day_list) * len(names))
        results = runner.sweep(root, day_list, names, profile.value, method, seed,
                               on_done=lambda r: progress.update(task, advance=1,
                                                                 description=f"{r.day} {r.policy}"))
    csv_path, json_path = runner.write_results(results, out)
    png = comparison_plot(results, out / "comparison.png")
    if as_json:
        typer.echo(json.dumps([runner.as_dict(r) for r in results]))
        return
    console.print(_table(results, f"PlanetLab sweep ({profile.value})"))
    console.print(f"wrote {csv_path}, {json_path}, {png} in {time.perf_counter() - started:.1f} s")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.command("planetlab")(planetlab)
    app.command("planetlab-sweep")(planetlab_sweep)
