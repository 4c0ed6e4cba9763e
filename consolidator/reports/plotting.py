"""Shared drawing helpers: colours, migration spans, suspend/resume markers, power-state shading.

Figures are built on ``matplotlib.figure.Figure`` directly (never pyplot), so no global figure state
is shared between reports and the Agg canvas is used without touching the process-wide backend.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ParamSpec, TypeVar

import matplotlib
import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from consolidator.domain.types import MigrationOutcome, PowerState
from consolidator.reports.runs import HostSeries, MigrationRecord, PowerEvent, Run

DPI = 100
# One colour per variant, the same in every figure (Okabe-Ito, readable by colour-blind readers).
VARIANT_COLOURS = {
    "postcopy": "#0072B2",
    "precopy": "#D55E00",
    "hybrid": "#009E73",
    "ideal": "#000000",
    "none": "#999999",
}
EXTRA_COLOURS = ("#CC79A7", "#E69F00", "#56B4E9", "#F0E442")
MIGRATION_COLOUR = "#E69F00"
CANCELLED_COLOUR = "#CC0000"
SUSPENDED_COLOUR = "#DDDDDD"
SUSPEND_MARK = ("v", "#333333")  # (marker, colour): a host finished suspending
RESUME_MARK = ("^", "#009E73")  # a host finished resuming
P = ParamSpec("P")
R = TypeVar("R")
FONT = {"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 9}


def variant_colour(variant: str, index: int = 0) -> str:
    return VARIANT_COLOURS.get(variant, EXTRA_COLOURS[index % len(EXTRA_COLOURS)])


def palette(names: Iterable[str], cmap_colours: tuple[str, ...] | None = None) -> dict[str, str]:
    """A stable colour per name (hosts or VMs), in the given order."""
    colours = cmap_colours or (
        "#4C72B0",
        "#DD8452",
        "#55A868",
        "#C44E52",
        "#8172B3",
        "#937860",
        "#DA8BC3",
        "#8C8C8C",
        "#CCB974",
        "#64B5CD",
    )
    return {name: colours[i % len(colours)] for i, name in enumerate(names)}


def host_order(run: Run) -> list[str]:
    """Warehouse nodes first (the paper's PM0), then servers; natural order inside each role."""
    return sorted(run.hosts, key=lambda h: (run.hosts[h].role != "warehouse", _natural(h)))


def _natural(name: str) -> tuple[object, ...]:
    digits = "".join(c for c in name if c.isdigit())
    return (name.rstrip("0123456789"), int(digits) if digits else -1, name)


def styled(draw: Callable[P, R]) -> Callable[P, R]:
    """Run a figure function under the report's font sizes, without touching the global rcParams."""

    @functools.wraps(draw)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with matplotlib.rc_context(FONT):  # type: ignore[arg-type]
            return draw(*args, **kwargs)

    return wrapper


def new_figure(width_in: float, height_in: float) -> Figure:
    return Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")


def legend_columns(fig: Figure, entries: int) -> int:
    """As many legend columns as fit the figure's width (≈ 1.9 in per entry at 9 pt), at least one."""
    return max(1, min(entries, int(fig.get_figwidth() / 1.9)))


def save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, facecolor="white")
    return path


def shade_suspended(ax: Axes, host: HostSeries) -> None:
    """Grey background while the host is suspended (or failed): it serves nothing then."""
    asleep = ~host.active
    if not asleep.any():
        return
    edges = np.diff(np.concatenate(([0], asleep.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    tick = float(np.median(np.diff(host.t_s))) if len(host.t_s) > 1 else 1.0
    for first, last in zip(starts, ends, strict=True):
        end = host.t_s[last] if last < len(host.t_s) else host.t_s[-1] + tick
        ax.axvspan(host.t_s[first], end, color=SUSPENDED_COLOUR, alpha=0.6, lw=0, zorder=0)


def merge_intervals(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Union of [start, end] intervals, sorted: overlapping migrations become one band, so bands
    never darken where several migrations overlap (their count is in the labels and the table)."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def migration_spans(
    ax: Axes,
    migrations: Iterable[MigrationRecord],
    end_s: float,
    *,
    host: str | None = None,
    label: bool = True,
) -> int:
    """Draw the migrations (touching ``host``, if given) as bands; returns how many there were.

    Completed or running migrations are orange, cancelled ones red and hatched; instant moves (the
    ideal baseline) are thin lines. Labels (VM→destination, VM←source) step down when they crowd.
    """
    chosen = [m for m in migrations if host is None or host in (m.src, m.dst)]
    spans: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for mig in chosen:
        stop = mig.end_s if mig.end_s is not None else end_s
        if stop <= mig.start_s:
            ax.axvline(mig.start_s, color=MIGRATION_COLOUR, lw=1, alpha=0.7, zorder=1)
        else:
            spans[mig.outcome is MigrationOutcome.CANCELLED].append((mig.start_s, stop))
    for cancelled, intervals in spans.items():
        for start, stop in merge_intervals(intervals):
            if cancelled:
                ax.axvspan(
                    start,
                    stop,
                    facecolor=CANCELLED_COLOUR,
                    alpha=0.12,
                    hatch="//",
                    edgecolor=CANCELLED_COLOUR,
                    lw=0,
                    zorder=1,
                )
            else:
                ax.axvspan(start, stop, color=MIGRATION_COLOUR, alpha=0.22, lw=0, zorder=1)
    if label:
        _label_migrations(ax, chosen, host, end_s)
    return len(chosen)


def _label_migrations(ax: Axes, chosen: list[MigrationRecord], host: str | None, end_s: float) -> None:
    """One label per migration at its start; a label that would overlap the previous one steps down."""
    crowd_s = 0.09 * max(end_s, 1.0)  # about the width of a label at the default figure sizes
    last_x, level = float("-inf"), 0
    for mig in sorted(chosen, key=lambda m: m.start_s):
        level = (level + 1) % 6 if mig.start_s - last_x < crowd_s else 0
        last_x = mig.start_s
        outgoing = host is None or host == mig.src
        text = ax.annotate(
            f"{mig.vm}{'→' + mig.dst if outgoing else '←' + mig.src}",
            xy=(mig.start_s, 0.97 - 0.1 * level),
            xycoords=("data", "axes fraction"),
            fontsize=8,
            va="top",
            ha="left",
            color="#7A4F00",
            clip_on=True,
        )
        text.set_in_layout(False)  # labels near the right edge must not shrink the axes


def power_markers(
    ax: Axes, events: Iterable[PowerEvent], *, host: str | None = None, y: float = 1.0, names: bool = False
) -> None:
    """▼ where a host finished suspending, ▲ where it finished resuming (at ``y`` in axes fraction);
    with ``names``, the host's name beside each marker."""
    trans = ax.get_xaxis_transform()
    chosen = [e for e in events if e.state in (PowerState.SUSPENDED, PowerState.ON) and host in (None, e.host)]
    for state, (marker, colour) in ((PowerState.SUSPENDED, SUSPEND_MARK), (PowerState.ON, RESUME_MARK)):
        times = [e.t_s for e in chosen if e.state is state]
        (line,) = ax.plot(
            times,
            [y] * len(times),
            transform=trans,
            clip_on=False,
            zorder=5,
            marker=marker,
            color=colour,
            markersize=8,
            linestyle="none",
        )
        line.set_in_layout(False)
    for event in chosen if names else ():
        text = ax.annotate(
            event.host,
            xy=(event.t_s, y),
            xycoords=trans,
            xytext=(6, -1),
            textcoords="offset points",
            fontsize=8,
            va="center",
            ha="left",
            color="#333333",
        )
        text.set_in_layout(False)


def legend_extras(include_cancelled: bool = False) -> list[Artist]:
    """Legend handles for the span and marker conventions shared by every figure."""
    handles: list[Artist] = [
        Patch(color=MIGRATION_COLOUR, alpha=0.35, label="migration running"),
        Patch(color=SUSPENDED_COLOUR, label="host suspended (S3)"),
        _mark_handle(SUSPEND_MARK, "suspended (event)"),
        _mark_handle(RESUME_MARK, "resumed (event)"),
    ]
    if include_cancelled:
        cancelled = Patch(facecolor=CANCELLED_COLOUR, alpha=0.3, hatch="//", edgecolor=CANCELLED_COLOUR)
        cancelled.set_label("migration cancelled")
        handles.insert(1, cancelled)
    return handles


def _mark_handle(style: tuple[str, str], label: str) -> Line2D:
    marker, colour = style
    return Line2D([], [], marker=marker, color=colour, markersize=8, linestyle="none", label=label)
