"""Event tables: every migration of the drawn runs, and the simple scenario's timeline beside the paper's.

The paper gives the simple scenario's timeline in prose only (Section IV-B); ``PAPER_SIMPLE`` quotes
it, so a reader can compare our times with its times without opening the PDF.
"""

from __future__ import annotations

from dataclasses import dataclass

from consolidator.domain.types import PowerState
from consolidator.reports.runs import MigrationRecord, Run

# Hirofuchi et al. 2011, Section IV-B (text and Fig. 6-7); "≈" as the paper is approximate.
PAPER_SIMPLE = {
    "postcopy": {"start": "85", "end": "≈ 100", "duration": "≈ 15", "suspended": "≈ 100", "asleep": "≈ 80"},
    "precopy": {"start": "85", "end": "≈ 160", "duration": "≈ 75", "suspended": "≈ 160", "asleep": "≈ 20"},
}
DASH = "—"


@dataclass(frozen=True)
class Consolidation:
    """The first move of a VM back onto a Warehouse node, and what it let the source host do."""

    migration: MigrationRecord
    suspended_s: float | None  # when the source host finished suspending afterwards
    asleep_s: float | None  # how long it then stayed suspended (to the end of the run if never woken)


def migration_rows(runs: dict[str, Run]) -> tuple[tuple[str, ...], ...]:
    """One row per migration of every drawn run, in start order."""
    rows: list[tuple[str, ...]] = [
        ("run", "VM", "from → to", "method", "start (s)", "end (s)", "duration (s)", "outcome")
    ]
    for variant, run in runs.items():
        for m in sorted(run.migrations, key=lambda m: m.start_s):
            end = f"{m.end_s:.1f}" if m.end_s is not None else "running"
            duration = f"{m.end_s - m.start_s:.1f}" if m.end_s is not None else DASH
            rows.append((variant, m.vm, f"{m.src} → {m.dst}", m.method, f"{m.start_s:.1f}", end, duration, m.outcome))
    return tuple(rows)


def first_consolidation(run: Run) -> Consolidation | None:
    """The first migration onto a Warehouse node and the suspend of the host it emptied, if any."""
    warehouses = {name for name, host in run.hosts.items() if host.role == "warehouse"}
    moves = sorted((m for m in run.migrations if m.dst in warehouses), key=lambda m: m.start_s)
    if not moves:
        return None
    move = moves[0]
    events = sorted((e for e in run.power_events if e.host == move.src and e.t_s >= move.start_s), key=lambda e: e.t_s)
    down = next((e.t_s for e in events if e.state is PowerState.SUSPENDED), None)
    if down is None:
        return Consolidation(move, None, None)
    up = next((e.t_s for e in events if e.t_s > down and e.state in (PowerState.RESUMING, PowerState.ON)), None)
    return Consolidation(move, down, (up if up is not None else run.summary.duration_s) - down)


def _f(value: float | None) -> str:
    return DASH if value is None else f"{value:.0f}"


def simple_timeline_rows(runs: dict[str, Run]) -> tuple[tuple[str, ...], ...]:
    """Metric rows with our value and the paper's for postcopy and precopy (empty if either is missing)."""
    methods = [v for v in ("postcopy", "precopy") if v in runs]
    found = {v: first_consolidation(runs[v]) for v in methods}
    if not methods or all(c is None for c in found.values()):
        return ()
    header: list[str] = ["", *[label for v in methods for label in (v, f"paper {v}")]]
    metrics = (
        ("start", "first move to a Warehouse node starts (s)"),
        ("end", "… and ends (s)"),
        ("duration", "migration time (s)"),
        ("suspended", "its source host suspended at (s)"),
        ("asleep", "… and stays asleep for (s)"),
    )
    rows = [tuple(header)]
    for key, label in metrics:
        cells = [label]
        for v in methods:
            cells += [_metric(found[v], key), PAPER_SIMPLE[v][key]]
        rows.append(tuple(cells))
    return tuple(rows)


def _metric(c: Consolidation | None, key: str) -> str:
    if c is None:
        return DASH
    m = c.migration
    values = {
        "start": m.start_s,
        "end": m.end_s,
        "duration": None if m.end_s is None else m.end_s - m.start_s,
        "suspended": c.suspended_s,
        "asleep": c.asleep_s,
    }
    return _f(values[key])
