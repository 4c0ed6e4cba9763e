"""CLI of literature mode: ``consolidator planetlab`` (one day) and ``consolidator planetlab-sweep``."""

from __future__ import annotations

import enum
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from consolidator.cli.choices import Method
from consolidator.domain.errors import UserError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

# Each command imports what it needs when it runs: `consolidator --help` stays fast.
TRACES_ENV = "CONSOLIDATOR_PLANETLAB"  # the same name as consolidator.traces.load.TRACES_ENV

REFERENCE_POLICIES = ("thr-mmt-0.8", "iqr-mmt-1.5", "mad-mmt-2.5", "lr-mmt-1.2", "lrr-mmt-1.2")


class Profile(enum.Enum):
    cloudsim = "cloudsim"
    realistic = "realistic"


class SweepProfile(enum.Enum):
    cloudsim = "cloudsim"
    realistic = "realistic"
    compare = "compare"


TracesOpt = Annotated[Path | None, typer.Option(
    "--traces", help=f"Folder of PlanetLab day folders (default ${TRACES_ENV}, else ../shared/data/planetlab, "
                     "else the cache `consolidator data planetlab` fills).")]


def _console() -> Console:
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=160)


Row = dict[str, Any]


def _new_table(title: str, columns: tuple[str, ...]) -> Table:
    from rich.table import Table

    table = Table(title=title)
    for col in columns:
        left = col in ("day", "policy", "profile", "migration")
        table.add_column(col, justify="left" if left else "right", no_wrap=left)
    return table


def _cloudsim_table(rows: list[Row], title: str) -> Table:
    table = _new_table(title, ("day", "policy", "profile", "migration", "kWh", "sleep+mig kWh", "migrations",
                               "cancelled", "SLATAH %", "PDM %", "SLAV", "ESV", "shutdowns", "wall s"))
    for r in rows:
        table.add_row(r["day"], r["policy"], r["profile"], r["migration"], f"{r['energy_kwh']:.2f}",
                      f"{r['sleep_energy_kwh'] + r['extra_energy_kwh']:.2f}", f"{r['migrations']:,}",
                      f"{r['cancelled_migrations']:,}", f"{r['slatah_pct']:.2f}", f"{r['pdm_pct']:.3f}",
                      f"{r['slav']:.3e}", f"{r['esv']:.3e}", f"{r['host_shutdowns']:,}", f"{r['wall_s']:.2f}")
    return table


def _sim_table(rows: list[Row], title: str) -> Table:
    table = _new_table(title, ("day", "policy", "migration", "kWh", "migrations", "cancelled", "deferred",
                               "unserved CPU %", "delay mean s", "suspends", "wakes", "active host h", "wall s"))
    for r in rows:
        table.add_row(r["day"], r["policy"], r["migration"], f"{r['energy_kwh']:.2f}", f"{r['migrations']:,}",
                      f"{r['migrations_cancelled']:,}", f"{r['controller_deferred']:,}",
                      f"{r['unserved_cpu_pct']:.2f}", f"{r['delay_mean_s']:.1f}", f"{r['suspends']:,}",
                      f"{r['wakes']:,}", f"{r['active_host_s'] / 3600:,.0f}", f"{r['wall_s']:.1f}")
    return table


def _print_tables(console: Console, rows: list[Row], title: str) -> None:
    cloudsim = [r for r in rows if r["profile"] == "cloudsim"]
    sim = [r for r in rows if r["profile"] != "cloudsim"]
    if cloudsim:
        console.print(_cloudsim_table(cloudsim, f"{title}: CloudSim-compatible"))
    if sim:
        console.print(_sim_table(sim, f"{title}: simulator (realistic profile)"))


def planetlab(
    day: Annotated[str, typer.Option(
        help="Day folder name (e.g. 20110303), a path to one, or a CSV file (timestamp,vm,cpu).")],
    policy: Annotated[str, typer.Option(
        help="<detector>-<selector>[-<param>], e.g. thr-mmt-0.8, lr-mmt-1.2; or dvfs / npa (no migrations).")],
    profile: Annotated[Profile, typer.Option(
        help="cloudsim: CloudSim 3.0.3's model; realistic: the simulator on the same day (scenario "
             "planetlab-20110303: our migration models and S3), beside the cloudsim run.")] = Profile.cloudsim,
    migration: Annotated[Method | None, typer.Option(
        help="Realistic profile: this method only (default: postcopy and precopy side by side).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object, nothing else.")] = False,
    traces: TracesOpt = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the RS selector's generator.")] = 1,
) -> None:
    """Run one PlanetLab day under a literature policy (Beloglazov & Buyya, as CloudSim 3.0.3 runs it)."""
    from consolidator.literature import runner
    from consolidator.policies.literature.registry import parse_policy
    from consolidator.traces import load as traces_mod

    parse_policy(policy)
    root = traces or traces_mod.default_traces_root()
    if profile is Profile.cloudsim:
        if migration is not None:
            raise UserError("--migration applies to --profile realistic only", field="--migration")
        trace, name = runner.load_day(day, root)
        rows = [runner.as_dict(runner.run_one(trace, name, policy, seed))]
        if as_json:
            typer.echo(json.dumps(rows[0]))
            return
    else:
        from consolidator.domain.types import MigrationMethod
        from consolidator.experiments import planetlab as realistic

        methods = ([MigrationMethod(migration.value)] if migration
                   else [MigrationMethod.POSTCOPY, MigrationMethod.PRECOPY])
        rows = realistic.compare(day, root, policy, methods, seed)
        if as_json:
            typer.echo(json.dumps({r["migration"]: r for r in rows}))
            return
    _print_tables(_console(), rows, f"PlanetLab {rows[0]['day']}, {rows[0]['policy']}")


def planetlab_sweep(
    days: Annotated[str, typer.Option(help="Comma-separated day names, or 'all'.")] = "all",
    policies: Annotated[str, typer.Option(help="Comma-separated policy names, or 'reference' / 'all'.")]
    = "reference",
    profile: Annotated[SweepProfile, typer.Option(
        help="cloudsim, realistic (the simulator), or compare (cloudsim and the simulator with postcopy and "
             "precopy side by side).")]
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
    from consolidator.experiments import planetlab as sweeps
    from consolidator.literature import runner
    from consolidator.policies.literature.registry import policy_names
    from consolidator.reports.planetlab import comparison_plot  # matplotlib only when plotting
    from consolidator.traces import load as traces_mod

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
        rows = sweeps.sweep(root, day_list, names, profile.value, method, seed,
                            on_done=lambda r: progress.update(task, advance=1,
                                                              description=f"{r['day']} {r['policy']}"))
    csv_path, json_path = sweeps.write_rows(rows, out)
    png = comparison_plot(rows, out / "comparison.png")
    if as_json:
        typer.echo(json.dumps(rows))
        return
    _print_tables(console, rows, f"PlanetLab sweep ({profile.value})")
    console.print(f"wrote {csv_path}, {json_path}, {png} in {time.perf_counter() - started:.1f} s")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.command("planetlab")(planetlab)
    app.command("planetlab-sweep")(planetlab_sweep)
