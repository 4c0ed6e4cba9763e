"""What the report says for one experiment: figures drawn, tables formatted, parameters collected.

``build_report`` (report.py) turns these sections into Markdown and HTML; nothing here writes text
files other than the PNGs.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consolidator.reports import figures
from consolidator.reports.layout import Experiment
from consolidator.reports.runs import Run, load_run, load_summary
from consolidator.reports.table import Row, TableFile, TableView, load_table, table_view
from consolidator.reports.timeline import migration_rows, simple_timeline_rows

log = logging.getLogger(__name__)

HOW_TO_READ = {
    "cpu": (
        "One row per host (Warehouse node first), one column per migration method, as in the paper's "
        "Fig. 6 (left postcopy, right precopy). Coloured areas are the CPU each VM gets on that host, "
        "stacked; the black line is the host's demand including virtualisation overhead. Orange bands "
        "are migrations into or out of the host, labelled VM→destination or VM←source; grey is the "
        "host suspended to RAM; ▼ marks the end of a suspend and ▲ the end of a resume. A long band "
        "with the VM still drawn on the source is a precopy still sending dirty pages."
    ),
    "power": (
        "The paper's Fig. 7: power of every host stacked, so the top edge (black) is the cluster's "
        "total. A suspended host still draws its S3 power (a thin band). Bands and markers as in the "
        "CPU figure; the title gives the energy of the whole run. The area between the two panels' "
        "black lines is the energy one method saves over the other."
    ),
    "active": (
        "The paper's Fig. 8: how many hosts are powered (on, suspending or resuming) each second, for "
        "each method against the ideal (dashed): First-Fit of all VMs every second with instant "
        "migrations. Time spent above the dashed line is energy the method could not save, usually "
        "because a migration was still running."
    ),
    "total": (
        "The paper's Fig. 9: total power of the cluster for each method, with the ideal (dashed) and "
        "no consolidation (dotted, one VM per Server node) as bounds. The legend gives each run's "
        "energy. The closer a method's line hugs the ideal, the more of the gap it removes."
    ),
    "backlog": (
        "Work waiting: the CPU work (core·s) that has arrived at the VMs and not been served yet, summed "
        "over all VMs, for each method against no consolidation (dotted) and the ideal (dashed). It "
        "rises while a host is over its capacity or a moving guest stalls on postcopy faults, and falls "
        "as the work is caught up; the run goes on after the scenario's end until it is zero, which is "
        "why the x axis may pass it. The legend gives each run's 95th-percentile extra delay of work."
    ),
    "seeds": (
        "Left: the energy of every seed (dots) and their mean ± sd (black), the spread behind the ± in "
        "the table. Right: each seed's energy saved against no consolidation on the same seed; seeds "
        "share their load trace across variants, so this pairing removes the load's own spread. Stars "
        "are the paper's Table IV. The time-series figures above draw one seed only."
    ),
}


TABLE_HOW_TO_READ = (
    "Read the first columns. Every row serves the same work: VMs' work arrives (Poisson tasks) until the "
    "scenario's end, what a host cannot serve waits in the VM's backlog, and the run goes on until every "
    "backlog is served. Energy to complete is the whole cluster's energy until then, in watt-seconds "
    "(mean ± sample sd over seeds); gap removed = (E_none − E_x) / (E_none − E_ideal) on that energy: "
    "100 % matches the ideal bound, 0 % is no better than not consolidating, below 0 is worse. Delay is "
    "the extra delay of work (FIFO within each VM, weighted by work; docs/models.md): what packing and "
    "migrating cost the guests. The window columns are the paper's Table IV measure (energy over the "
    "fixed 900 s) beside its figures; a method that leaves work waiting at the window's end looks "
    "cheaper there than it is, which is why it is not the headline. Unserved CPU is the share of demand "
    "no host served in that second (work that then waited). The paper's columns are its Table IV, "
    "measured once on its testbed."
)
SENSITIVITY_NOTE = (
    " Rows {rows} are sensitivity readings: ideal@c packs First-Fit to c per host (the paper does not "
    "say which capacity its First-Fit used, so these show how far the ideal bound, and with it every "
    "gap-removed figure, moves with that choice); x@4cores lets hosts serve 4 while their power stops "
    "rising at 1, the simulator's reading before issue 8, under which packing active VMs costs nothing."
)
LEGACY_NOTE = (
    " Rows {rows} use the legacy accounting, where CPU a VM did not get is dropped instead of owed: "
    "their energy is not at equal work and is shown for comparison only."
)


def table_reading(table: TableFile | None) -> str:
    """How to read the table, plus a note on sensitivity rows (``name@value``) when there are any."""
    if table is None:
        return ""
    extra = [name for name in table.rows if "@" in name]
    legacy = [name for name in table.rows if name.endswith("lost-cpu")]
    return (TABLE_HOW_TO_READ + (SENSITIVITY_NOTE.format(rows=", ".join(extra)) if extra else "")
            + (LEGACY_NOTE.format(rows=", ".join(legacy)) if legacy else ""))


@dataclass(frozen=True)
class FigureRef:
    key: str
    title: str
    path: Path
    how_to_read: str


@dataclass(frozen=True)
class Section:
    """Everything the report shows for one scenario."""

    scenario: str
    table: TableView | None
    table_source: str
    figures: tuple[FigureRef, ...]
    figure_seed: int | None
    run_rows: tuple[tuple[str, ...], ...]
    params: tuple[tuple[str, ...], ...]  # first row: header ("parameter", variant, ...)
    migrations: tuple[tuple[str, ...], ...] = ()
    timeline: tuple[tuple[str, ...], ...] = ()  # simple scenario: ours beside the paper's (Sec. IV-B)
    cluster: str = ""
    table_reading: str = ""


def seed_energies(experiment: Experiment) -> dict[str, dict[int, float]]:
    """Energy of every stored run from its summary.json: variant -> seed -> Ws."""
    return {
        v: {s: load_summary(experiment.runs[v][s] / "summary.json").energy_ws for s in experiment.seeds(v)}
        for v in experiment.variants
    }


def table_from_summaries(experiment: Experiment) -> TableFile:
    """A table.json equivalent computed from the runs' summary.json files (when the table is missing)."""
    energy = {v: list(by_seed.values()) for v, by_seed in seed_energies(experiment).items()}
    mean = {v: statistics.fmean(e) for v, e in energy.items()}
    rows = {}
    for name, values in energy.items():
        row: dict[str, float] = {"energy_ws": mean[name]}
        if len(values) > 1:
            row["energy_ws_sd"] = statistics.stdev(values)
        if "none" in mean:
            row["saved_pct"] = 100.0 * (mean["none"] - mean[name]) / mean["none"]
            if "ideal" in mean and mean["none"] != mean["ideal"]:
                row["gap_removed_pct"] = 100.0 * (mean["none"] - mean[name]) / (mean["none"] - mean["ideal"])
        rows[name] = Row.model_validate(row)
    seeds = sorted({s for v in experiment.variants for s in experiment.seeds(v)})
    return TableFile(
        scenario=experiment.scenario,
        seeds=seeds,
        rows=rows,
        notes=["computed by the report from the runs' summary.json (no table.json found)"],
    )


def _figure_runs(experiment: Experiment) -> dict[str, Run]:
    """The full runs of the figure seed, every variant that has one at that seed."""
    seed = experiment.figure_seed()
    if seed is None:
        return {}
    found = {v: experiment.run_folder(v, seed) for v in experiment.variants}
    return {v: load_run(folder) for v, folder in found.items() if folder is not None}


def _draw_runs(experiment: Experiment, runs: dict[str, Run], fig_dir: Path) -> list[FigureRef]:
    """Fig. 6-9 from the figure seed's full run folders."""
    if not runs:
        return []
    name, seed = experiment.scenario, experiment.figure_seed()
    compared = [runs[v] for v in figures.side_by_side(runs)]
    draw = [
        ("cpu", "Fig. 6 — CPU usage of hosts and VMs", figures.cpu_figure, compared),
        ("power", "Fig. 7 — power of each host and in total", figures.power_figure, compared),
        ("active", "Fig. 8 — active hosts over time", figures.active_hosts_figure, runs),
        ("total", "Fig. 9 — total power over time", figures.total_power_figure, runs),
    ]
    if all(run.total_backlog() is not None for run in runs.values()):  # runs since issue 8
        draw.append(("backlog", "Work waiting over time", figures.backlog_figure, runs))
    refs = []
    for key, title, function, arg in draw:
        full = f"{title} ({name} scenario, seed {seed})"
        path = function(arg, fig_dir / f"{name}-{key}.png", full)  # type: ignore[operator]
        refs.append(FigureRef(key, full, path, HOW_TO_READ[key]))
    return refs


def _draw_seeds(experiment: Experiment, fig_dir: Path, table: TableFile | None) -> list[FigureRef]:
    """Energy per seed, from the summaries alone; only when there is more than one seed."""
    energies = seed_energies(experiment)
    most = max((len(e) for e in energies.values()), default=0)
    if most < 2:
        return []
    paper = {n: r.saved_pct for n, r in table.paper.items() if r.saved_pct is not None} if table else {}
    title = f"Energy per seed ({experiment.scenario} scenario, {most} seeds)"
    path = figures.energy_by_seed_figure(energies, fig_dir / f"{experiment.scenario}-seeds.png", title, paper)
    return [FigureRef("seeds", title, path, HOW_TO_READ["seeds"])]


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def _run_rows(runs: dict[str, Run]) -> tuple[tuple[str, ...], ...]:
    header = (
        "run",
        "energy to complete (Ws)",
        "complete (s)",
        "delay p95 (s)",
        "window energy (Ws)",
        "unserved (core·s)",
        "unserved (%)",
        "overload (host·s)",
        "migrations",
        "cancelled",
        "suspends",
        "wakes",
    )
    rows = [header]
    for variant, run in runs.items():
        s = run.summary
        rows.append(
            (
                variant,
                _fmt(s.energy_to_complete_ws),
                _fmt(s.complete_s),
                _fmt(s.delay_p95_s),
                f"{s.energy_ws:,.0f}",
                _fmt(s.unserved_core_s),
                _fmt(s.unserved_cpu_pct),
                _fmt(s.overload_s),
                _fmt(s.migrations),
                _fmt(s.migrations_cancelled),
                _fmt(s.suspends),
                _fmt(s.wakes),
            )
        )
    return tuple(rows)


def _params(runs: dict[str, Run]) -> tuple[tuple[str, ...], ...]:
    """Parameters per variant; nested objects flattened to dotted keys."""
    flat = {v: _flatten(run.summary.params) for v, run in runs.items()}
    for v, run in runs.items():
        flat[v] = {
            "policy": run.summary.policy,
            "migration": run.summary.migration,
            "duration_s": run.summary.duration_s,
            "tick_s": run.summary.tick_s,
            **flat[v],
        }
    keys = list(dict.fromkeys(k for values in flat.values() for k in values))
    rows = [("parameter", *runs)]
    rows += [(k, *(_fmt(flat[v].get(k)) for v in runs)) for k in keys]
    return tuple(rows)


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def build_section(experiment: Experiment, fig_dir: Path) -> Section:
    """Load what an experiment stored, draw its figures into ``fig_dir`` and format its tables."""
    if experiment.table_path is not None:
        table, source = load_table(experiment.table_path), str(experiment.table_path.name)
    elif experiment.runs:
        table, source = table_from_summaries(experiment), "run summaries"
    else:
        table, source = None, ""
    runs = _figure_runs(experiment) if experiment.runs else {}
    refs = _draw_runs(experiment, runs, fig_dir) + _draw_seeds(experiment, fig_dir, table)
    log.info("report section %s: %d figures", experiment.scenario, len(refs))
    return Section(
        scenario=experiment.scenario,
        table=table_view(table) if table is not None else None,
        table_source=source,
        figures=tuple(refs),
        figure_seed=experiment.figure_seed() if experiment.runs else None,
        run_rows=_run_rows(runs),
        params=_params(runs) if runs else (),
        migrations=migration_rows({v: r for v, r in runs.items() if not figures.is_reference(r)}),
        timeline=simple_timeline_rows(runs) if experiment.scenario == "simple" else (),
        cluster=_cluster_text(runs, experiment),
        table_reading=table_reading(table),
    )


def _cluster_text(runs: dict[str, Run], experiment: Experiment) -> str:
    """One line on what was simulated, read from the runs (never assumed)."""
    seeds = sorted({s for v in experiment.variants for s in experiment.seeds(v)})
    seed_text = f"seed {seeds[0]}" if len(seeds) == 1 else f"{len(seeds)} seeds ({seeds[0]}–{seeds[-1]})"
    if not runs:
        return f"{len(experiment.variants)} variants, {seed_text}; no time series stored, table only."
    run = next(iter(runs.values()))
    roles = [h.role for h in run.hosts.values()]
    role_text = ", ".join(f"{roles.count(r)} {r}" for r in sorted(set(roles), key=lambda r: r != "warehouse"))
    return (
        f"{len(run.hosts)} hosts ({role_text}), {len(run.vms)} VMs, {run.summary.duration_s:g} s at "
        f"{run.summary.tick_s:g} s ticks; variants {', '.join(experiment.variants)}; {seed_text}."
    )
