"""The paper's figures from stored runs: Fig. 6 (CPU per host and VM), Fig. 7 (power per host and total),
Fig. 8 (active hosts vs ideal), Fig. 9 (total power vs ideal and none), plus work waiting and energy per
seed.

Each function takes loaded runs (``consolidator.reports.runs``), writes one PNG and returns its path.
Runs side by side are the paper's left/right panels (postcopy | precopy).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from consolidator.domain.types import MigrationOutcome
from consolidator.reports import plotting as p
from consolidator.reports.runs import FloatArray, Run

MAX_HOST_PANELS = 12  # beyond this a per-host grid is unreadable; the busiest hosts are drawn
REFERENCES = ("ideal", "none")
MAX_VMS_IN_LEGEND = 12


def _vm_cpu_on(run: Run, host: str, times: FloatArray) -> dict[str, FloatArray]:
    """Served CPU of each VM while it runs on ``host`` (zero elsewhere), held per tick."""
    out = {}
    for name, vm in run.vms.items():
        index = np.clip(np.searchsorted(vm.t_s, times, side="right") - 1, 0, len(vm.t_s) - 1)
        here = vm.host[index] == host
        if here.any():
            out[name] = np.where(here, vm.served[index], 0.0)
    return out


def _idle_throughout(runs: Sequence[Run], host: str) -> bool:
    """True if the host never ran a VM and never woke in any of the runs (a panel would be empty)."""
    for run in runs:
        series = run.hosts.get(host)
        if series is not None and (series.n_vms.any() or series.active.any()):
            return False
    return True


def _name_list(names: list[str], most: int = 6) -> str:
    return ", ".join(names) if len(names) <= most else f"{len(names)} hosts ({', '.join(names[:3])}, …)"


def _hosts_to_draw(runs: Sequence[Run]) -> tuple[list[str], str]:
    """(hosts that get a panel, a note naming the hosts left out and why)."""
    order = p.host_order(runs[0])
    idle = [h for h in order if _idle_throughout(runs, h)]
    busy = [h for h in order if h not in idle] or order[:1]
    notes = [f"asleep with no VM throughout: {_name_list(idle)}"] if idle else []
    if len(busy) > MAX_HOST_PANELS:
        demand = {h: sum(float(r.hosts[h].cpu_demand.sum()) for r in runs if h in r.hosts) for h in busy}
        keep = set(sorted(busy, key=lambda h: -demand[h])[:MAX_HOST_PANELS])
        notes.append(f"{len(busy) - len(keep)} less busy hosts not drawn")
        busy = [h for h in busy if h in keep]
    return busy, "; ".join(notes)


def _cpu_panel(ax: Axes, run: Run, host: str, vm_colours: dict[str, str]) -> float:
    series = run.hosts[host]
    times = series.t_s
    p.shade_suspended(ax, series)
    base = np.zeros_like(times)
    for name, cpu in _vm_cpu_on(run, host, times).items():
        ax.fill_between(times, base, base + cpu, step="post", color=vm_colours[name], alpha=0.85, lw=0, zorder=2)
        base = base + cpu
    ax.step(times, series.cpu_demand, where="post", color="black", lw=1.0, zorder=3)
    if series.cpu_unserved.any():
        ax.step(times, series.cpu_unserved, where="post", color=p.CANCELLED_COLOUR, lw=1.2, ls="--", zorder=3)
    p.migration_spans(ax, run.migrations, run.summary.duration_s, host=host, label=len(run.migrations) <= 8)
    p.power_markers(ax, run.power_events, host=host)
    return float(series.cpu_demand.max(initial=0.0))


@p.styled
def cpu_figure(runs: Sequence[Run], path: Path, title: str) -> Path:
    """Fig. 6: one row per host, one column per run; VMs' CPU stacked, host demand as a black line."""
    hosts, left_out = _hosts_to_draw(runs)
    vm_names = sorted({vm for run in runs for vm in run.vms}, key=p._natural)
    vm_colours = p.palette(vm_names)
    fig = p.new_figure(6.2 * len(runs) + 0.6, 1.55 * len(hosts) + 1.6)
    # one y scale per host row (a Warehouse node carries several VMs, a Server node one), the same
    # scale left and right so the two methods compare at a glance
    axes = fig.subplots(len(hosts), len(runs), sharex=True, sharey="row", squeeze=False)
    top = dict.fromkeys(hosts, 0.0)
    for col, run in enumerate(runs):
        axes[0][col].set_title(_run_title(run))
        for row, host in enumerate(hosts):
            ax = axes[row][col]
            if host in run.hosts:
                top[host] = max(top[host], _cpu_panel(ax, run, host, vm_colours))
            if col == 0:
                ax.set_ylabel(f"{host} ({run.hosts[host].role})\nCPU (cores)" if host in run.hosts else host)
            ax.grid(axis="y", alpha=0.3)
        axes[-1][col].set_xlabel("time (s)")
    for row, host in enumerate(hosts):
        axes[row][0].set_ylim(0, max(top[host], 0.1) * 1.4)  # headroom for the migration labels
    if len(vm_names) <= MAX_VMS_IN_LEGEND:
        handles: list[Artist] = [Patch(color=vm_colours[v], label=v) for v in vm_names]
    else:  # a thousand swatches help nobody; the colours still tell neighbouring VMs apart
        handles = [Patch(color=vm_colours[vm_names[0]], label=f"one colour per VM ({len(vm_names)} VMs)")]
    handles.append(Line2D([], [], color="black", label="host CPU demand (VMs + overhead)"))
    handles += p.legend_extras(_any_cancelled(runs))
    fig.legend(handles=handles, loc="outside lower center", ncol=p.legend_columns(fig, len(handles)), frameon=False)
    if left_out:
        title += f"\n({left_out})"
    fig.suptitle(title, fontsize=13)
    return p.save(fig, path)


def _power_bands(runs: Sequence[Run]) -> list[tuple[str, list[str]]]:
    """(label, hosts) per stacked band: every host, or with many hosts the biggest few and "others"."""
    order = p.host_order(runs[0])
    if len(order) <= MAX_HOST_PANELS:
        return [(h, [h]) for h in order]
    energy = {h: sum(float(r.hosts[h].watts.sum()) for r in runs if h in r.hosts) for h in order}
    top = set(sorted(order, key=lambda h: -energy[h])[: MAX_HOST_PANELS - 1])
    rest = [h for h in order if h not in top]
    return [(h, [h]) for h in order if h in top] + [(f"other {len(rest)} hosts", rest)]


def _band_watts(run: Run, hosts: list[str], times: FloatArray) -> FloatArray:
    total = np.zeros_like(times)
    for host in hosts:
        if host in run.hosts:
            series = run.hosts[host]
            total += np.interp(times, series.t_s, series.watts)
    return total


@p.styled
def power_figure(runs: Sequence[Run], path: Path, title: str) -> Path:
    """Fig. 7: per-host power stacked (the top edge is the total), one panel per run."""
    bands = _power_bands(runs)
    colours = p.palette([label for label, _ in bands])
    fig = p.new_figure(6.2 * len(runs) + 0.6, 4.8)
    axes = fig.subplots(1, len(runs), sharey=True, squeeze=False)[0]
    for ax, run in zip(axes, runs, strict=True):
        times, total = run.total_watts()
        base = np.zeros_like(times)
        for label, hosts in bands:
            watts = _band_watts(run, hosts, times)
            ax.fill_between(
                times,
                base,
                base + watts,
                step="post",
                color=colours[label],
                alpha=0.8,
                lw=0.3,
                edgecolor="white",
                zorder=2,
            )
            base = base + watts
        ax.step(times, total, where="post", color="black", lw=1.2, zorder=3)
        p.migration_spans(ax, run.migrations, run.summary.duration_s, label=len(run.migrations) <= 6)
        p.power_markers(ax, run.power_events, names=len(run.power_events) <= 12)
        ax.set_title(f"{_run_title(run)} — {run.summary.energy_ws:,.0f} Ws", pad=16)
        ax.set_xlabel("time (s)")
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("power (W)")
    axes[0].set_ylim(0, max(float(r.total_watts()[1].max(initial=0.0)) for r in runs) * 1.2)
    handles: list[Artist] = [Patch(color=colours[label], label=label) for label, _ in bands]
    handles.append(Line2D([], [], color="black", label="total"))
    handles += [h for h in p.legend_extras(_any_cancelled(runs)) if "S3" not in str(h.get_label())]
    fig.legend(handles=handles, loc="outside lower center", ncol=p.legend_columns(fig, len(handles)), frameon=False)
    fig.suptitle(title, fontsize=13)
    return p.save(fig, path)


def is_reference(run: Run) -> bool:
    """A baseline (no consolidation, or an ideal at any packing capacity), not a method under test."""
    return run.summary.policy in REFERENCES


def compared_variants(runs: Mapping[str, Run]) -> list[str]:
    """The consolidating variants, drawn one per panel against the references (all, if none is)."""
    return [v for v, run in runs.items() if not is_reference(run)] or list(runs)


def side_by_side(runs: Mapping[str, Run]) -> list[str]:
    """The paper's left|right panels: postcopy and precopy if both ran, else every compared variant."""
    compared = compared_variants(runs)
    pair: list[str] = [v for v in ("postcopy", "precopy") if v in compared]
    return pair if len(pair) == 2 else compared


def _panel_width_in(panels: int) -> float:
    return min(6.2, 16.0 / panels)  # at most ≈ 1,660 px wide, readable at 100 % zoom


def _series(run: Run, what: str) -> tuple[FloatArray, FloatArray]:
    if what == "backlog":
        series = run.total_backlog()
        assert series is not None, "backlog_figure needs runs with a backlog column"
        return series
    return run.active_hosts() if what == "active" else run.total_watts()


def _label(run: Run, variant: str, what: str) -> str:
    if what == "active":
        return variant
    if what == "backlog":
        p95 = run.summary.delay_p95_s
        return variant if p95 is None else f"{variant} (p95 delay {p95:.0f} s)"
    return f"{variant} ({run.summary.energy_ws:,.0f} Ws)"


def _comparison_figure(runs: Mapping[str, Run], what: str, path: Path, title: str) -> Path:
    """One panel per compared variant, the references drawn in each; ``what``: "active", "power" or
    "backlog"."""
    variants = compared_variants(runs)
    refs = (("ideal", "--"),) if what == "active" else (("none", ":"), ("ideal", "--"))
    fig = p.new_figure(_panel_width_in(len(variants)) * len(variants) + 0.6, 4.2)
    axes = fig.subplots(1, len(variants), sharey=True, squeeze=False)[0]
    top = max(float(_series(run, what)[1].max(initial=0.0)) for run in runs.values())
    for i, (ax, variant) in enumerate(zip(axes, variants, strict=True)):
        run = runs[variant]
        for ref, style in refs:
            if ref in runs and ref != variant:
                t, y = _series(runs[ref], what)
                label = _label(runs[ref], ref, what)
                ax.step(t, y, where="post", color=p.variant_colour(ref), ls=style, lw=1.3, zorder=3, label=label)
        t, y = _series(run, what)
        label = _label(run, variant, what)
        ax.step(t, y, where="post", color=p.variant_colour(variant, i), lw=2, zorder=4, label=label)
        p.migration_spans(ax, run.migrations, run.summary.duration_s, label=False)
        p.power_markers(ax, run.power_events)
        against = " and ".join(r for r, _ in reversed(refs) if r in runs and r != variant)
        ax.set_title(f"{variant} vs {against}" if against else variant, pad=16)
        ax.set_xlabel("time (s)")
        ax.grid(alpha=0.3)
        # the bottom of the power plots is empty (no host idles at 0); the top of the backlog plots is
        ax.legend(loc="upper right" if what == "backlog" else "lower right", framealpha=0.9)
    if what == "backlog":
        axes[0].set_ylabel("work waiting, all VMs (core·s)")
        axes[0].set_ylim(0, top * 1.15 + 1e-9)
    elif what == "active":
        axes[0].set_ylabel("active hosts (on, suspending or resuming)")
        axes[0].set_ylim(0, top + 1)
        axes[0].yaxis.get_major_locator().set_params(integer=True)
    else:
        axes[0].set_ylabel("total power (W)")
        axes[0].set_ylim(0, top * 1.15)
    extras = [h for h in p.legend_extras(_any_cancelled(runs[v] for v in variants)) if "S3" not in str(h.get_label())]
    fig.legend(handles=extras, loc="outside lower center", ncol=p.legend_columns(fig, len(extras)), frameon=False)
    fig.suptitle(title, fontsize=13)
    return p.save(fig, path)


def _any_cancelled(runs: Iterable[Run]) -> bool:
    return any(m.outcome is MigrationOutcome.CANCELLED for run in runs for m in run.migrations)


@p.styled
def active_hosts_figure(runs: Mapping[str, Run], path: Path, title: str) -> Path:
    """Fig. 8: active (powered) hosts over time, one panel per variant, ideal as the dashed reference."""
    return _comparison_figure(runs, "active", path, title)


@p.styled
def total_power_figure(runs: Mapping[str, Run], path: Path, title: str) -> Path:
    """Fig. 9: total power over time, one panel per variant, with ideal and no consolidation beside it."""
    return _comparison_figure(runs, "power", path, title)


@p.styled
def backlog_figure(runs: Mapping[str, Run], path: Path, title: str) -> Path:
    """Work waiting (the VMs' backlogs summed) over time, one panel per variant, none and ideal beside it."""
    return _comparison_figure(runs, "backlog", path, title)


@p.styled
def energy_by_seed_figure(
    energy_ws: Mapping[str, Mapping[int, float]],
    path: Path,
    title: str,
    paper_saved_pct: Mapping[str, float] | None = None,
) -> Path:
    """Left: energy of every seed (dots) with mean ± sd. Right: energy saved against no consolidation
    for the same seed (seeds share their load trace, so the pairing removes the seeds' own spread),
    with the paper's saved % as a star."""
    names = list(energy_ws)
    fig = p.new_figure(min(25.0, max(8.0, 1.6 * len(names) + 3)), 4.0)  # ≤ 2,500 px however many rows
    left, right = fig.subplots(1, 2)
    colours = {n: p.variant_colour(n, i) for i, n in enumerate(names)}  # the same in both panels
    _strip(left, names, {n: list(energy_ws[n].values()) for n in names}, "{:,.0f}", colours)
    left.set_ylabel("energy (Ws)")
    left.yaxis.set_major_formatter("{x:,.0f}")
    left.set_title("energy per seed, mean ± sd")
    none = energy_ws.get("none", {})
    saved = {
        n: [100.0 * (none[s] - e) / none[s] for s, e in energy_ws[n].items() if none.get(s)]
        for n in names
        if n != "none"
    }
    saved = {n: v for n, v in saved.items() if v}
    if saved:
        _strip(right, list(saved), saved, "{:.1f} %", colours)
        stars = [(i, paper_saved_pct[n]) for i, n in enumerate(saved) if paper_saved_pct and n in paper_saved_pct]
        if stars:
            xs, ys = zip(*stars, strict=True)
            right.scatter(
                np.asarray(xs) - 0.28, ys, marker="*", s=130, color="black", zorder=5, label="paper, Table IV"
            )
            right.legend(loc="best")
        right.axhline(0, color="#999999", lw=1)
        right.set_ylabel("saved vs none, same seed (%)")
        right.set_title("energy saved against no consolidation, paired by seed")
    else:
        right.set_axis_off()
        right.text(0.5, 0.5, "no `none` runs to compare with", ha="center", va="center", transform=right.transAxes)
    fig.suptitle(title, fontsize=13)
    return p.save(fig, path)


def _strip(
    ax: Axes, names: list[str], values: Mapping[str, Sequence[float]], fmt: str, colours: Mapping[str, str]
) -> None:
    """Dots per variant (jittered), with mean ± sample sd as a bar and the mean written beside it."""
    rng = np.random.default_rng(0)  # jitter only, so dots of equal value do not hide each other
    for i, name in enumerate(names):
        data = np.asarray(values[name], dtype=float)
        colour = colours[name]
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(data)), data, color=colour, s=16, alpha=0.8, zorder=3)
        sd = float(data.std(ddof=1)) if len(data) > 1 else 0.0
        ax.errorbar(i + 0.22, data.mean(), yerr=sd, fmt="o", color="black", ms=4, capsize=4, zorder=4)
        ax.annotate(
            fmt.format(data.mean()),
            (i + 0.22, data.mean()),
            xytext=(6, 0),
            textcoords="offset points",
            fontsize=8,
            va="center",
        )
    ax.set_xticks(range(len(names)), names, rotation=20 if len(names) > 5 else 0)
    ax.set_xlim(-0.5, len(names) - 0.5 + 0.45)  # room for the last mean's label
    ax.grid(axis="y", alpha=0.3)


def _run_title(run: Run) -> str:
    s = run.summary
    what = s.migration if s.policy == "paper" else s.policy
    return f"{what} (policy {s.policy}, seed {s.seed})"
