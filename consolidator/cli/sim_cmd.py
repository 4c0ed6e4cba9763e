"""CLI: `consolidator reproduce` (the main job) and `consolidator simulate`."""

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

# Each command imports what it needs when it runs: `consolidator --help` stays fast.


class Experiment(enum.Enum):
    all = "all"
    simple = "simple"
    complex = "complex"


def _console() -> Console:
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=160)


def reproduce(
    experiment: Annotated[Experiment, typer.Argument(help="Which experiment of the paper.")] = Experiment.all,
    seeds: Annotated[int, typer.Option(min=1, max=1000, help="Seeds of the complex scenario.")] = 20,
    migration: Annotated[Method | None, typer.Option(help="simple: only this method.")] = None,
    out: Annotated[Path, typer.Option(help="Output folder for runs, table, figures, report.")] = Path("out"),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object, nothing else.")] = False,
    report: Annotated[bool, typer.Option(help="Draw figures and write the report.")] = True,
) -> None:
    """Reproduce the paper: the simple and complex scenarios, postcopy vs precopy vs none and ideal."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from consolidator.domain.types import MigrationMethod
    from consolidator.experiments import reproduce as rep

    started = time.perf_counter()
    console = _console()
    result: dict[str, Any] = {}
    if experiment in (Experiment.all, Experiment.simple):
        methods = (MigrationMethod(migration.value),) if migration else (MigrationMethod.POSTCOPY,
                                                                          MigrationMethod.PRECOPY)
        simple = rep.run_simple(out, methods, baselines=not as_json)
        result["simple"] = simple
        if not as_json:
            _print_simple(console, simple)
    if experiment in (Experiment.all, Experiment.complex):
        total = seeds * (len(rep.MAIN_VARIANTS) + len(rep.EXTRA_VARIANTS))
        with Progress(TextColumn("complex scenario"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TextColumn("{task.description}"), console=Console(stderr=True),
                      disable=as_json) as bar:
            task = bar.add_task("", total=total)
            table = rep.run_complex(out, seeds, lambda what: bar.update(task, advance=1, description=what))
        result["complex"] = rep.interface_table(table)
        if not as_json:
            _print_complex(console, table)
    if report:
        from consolidator.reports import build_report

        path = build_report(out)
        if not as_json:
            console.print(f"\nreport: {path}  figures: {out / 'figures'}  runs: {out}")
    if not as_json:
        console.print(f"done in {time.perf_counter() - started:.1f} s")
        return
    if experiment is Experiment.simple and migration:
        typer.echo(json.dumps(result["simple"][migration.value]))
    elif experiment is Experiment.complex:
        typer.echo(json.dumps(result["complex"]))
    else:
        typer.echo(json.dumps(result))


def _print_simple(console: Console, simple: dict[str, dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title="Simple scenario (paper Fig. 6-7): migrations and power events")
    for col in ("method", "migration", "start s", "end s", "took s", "power events", "energy Ws"):
        table.add_column(col, justify="right" if col.endswith("s") else "left")
    for method, tl in simple.items():
        migs = tl["migrations"]
        events = ", ".join(f"{e['host']} {e['state']} @{e['t_s']:.0f}" for e in tl["power_events"])
        for i, m in enumerate(migs):
            table.add_row(method if i == 0 else "", f"{m['vm']} {m['src']}→{m['dst']}", f"{m['start_s']:.1f}",
                          f"{m['end_s']:.1f}", f"{m['end_s'] - m['start_s']:.1f}", events if i == 0 else "",
                          f"{tl['energy_ws']:.0f}" if i == 0 else "")
    console.print(table)


def _print_complex(console: Console, table: dict[str, Any]) -> None:
    from rich.table import Table

    rows = table["rows"]
    paper = table["paper"]
    t = Table(title=f"Complex scenario (paper Table IV), {len(table['seeds'])} seeds: mean ± sd")
    for col in ("run", "energy to complete Ws", "gap removed %", "delay mean/p95 s", "window energy Ws",
                "window gap %", "migrations", "paper Ws", "paper gap %"):
        t.add_column(col, justify="left" if col == "run" else "right")
    for name, r in rows.items():
        p = paper.get(name, {})
        gap = name not in ("none", "ideal")
        t.add_row(name if r["completed"] else f"{name} *",
                  f"{r['energy_to_complete_ws']:,.0f} ± {r['energy_to_complete_ws_sd']:,.0f}",
                  f"{r['gap_removed_complete_pct']:.0f}" if gap else "–",
                  f"{r['delay_mean_s']:.1f} / {r['delay_p95_s']:.0f}",
                  f"{r['energy_ws']:,.0f}", f"{r['gap_removed_pct']:.0f}" if gap else "–", f"{r['migrations']:.1f}",
                  f"{p['energy_ws']:,}" if p else "", f"{p.get('gap_removed_pct', '')}" if p else "")
    console.print(t)
    if not all(r["completed"] for r in rows.values()):
        console.print("* some seeds hit the drain bound ([guests] drain_limit_s) with work still waiting: "
                      "their energy to complete is a lower bound.")
    console.print("Read 'energy to complete': every row serves the same work (arrivals stop at 900 s; the run "
                  "goes on until every VM's backlog is served). The window energy is the paper's Table IV "
                  "measure; it rewards leaving work undone. Delay: extra delay of work (docs/models.md).")


def simulate(
    scenario: Annotated[str, typer.Argument(help="A scenario file (TOML) or a built-in name (simple, complex).")],
    policy: Annotated[str | None, typer.Option(help="Planner policy: any name of 'consolidator policies' "
                                                    "(default: the scenario's [policy], else paper).")] = None,
    migration: Annotated[Method, typer.Option(help="Migration method.")] = Method.postcopy,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: the scenario's).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write a run folder here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Simulate one scenario under one policy and migration method."""
    from rich.table import Table

    from consolidator.domain.types import MigrationMethod
    from consolidator.experiments.runs import simulate as run_sim
    from consolidator.experiments.runs import timeline
    from consolidator.sim.scenario import load_scenario

    sc = load_scenario(scenario)
    policy, args = sc.policy_for(policy)
    method = MigrationMethod.INSTANT if policy == "ideal" else MigrationMethod(migration.value)
    result = run_sim(sc, policy, method, seed=seed, out_dir=out, policy_args=args)
    summary = {k: v for k, v in result.summary.items() if k != "params"}
    if as_json:
        typer.echo(json.dumps({**summary, **{k: v for k, v in timeline(result).items()
                                              if k in ("migrations", "power_events")}}, default=float))
        return
    console = _console()
    t = Table(title=f"{sc.name}: policy {policy}, {method.value}, seed {result.seed}")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for key in ("energy_ws", "energy_to_complete_ws", "work_arrived_core_s", "work_served_core_s",
                "backlog_end_core_s", "complete_s", "delay_mean_s", "delay_p95_s", "unserved_core_s",
                "unserved_cpu_pct", "overload_s", "migrations",
                "migrations_cancelled", "suspends", "wakes", "active_host_s"):
        value = summary[key]
        t.add_row(key, f"{value:,.2f}" if isinstance(value, float) else str(value))
    console.print(t)
    if out:
        console.print(f"run folder: {out}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.command("reproduce")(reproduce)
    app.command("simulate")(simulate)


__all__ = ["register", "UserError"]
