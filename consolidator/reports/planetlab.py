"""Comparison figure of a PlanetLab sweep: per policy and variant (CloudSim-compatible, simulator with
each migration method), energy and migrations — mean over days, min-max bars — and the literature's
SLAV when every row has it (a CloudSim-compatible sweep)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from consolidator.reports.plotting import new_figure, save, styled, variant_colour


def variant(row: Mapping[str, Any]) -> str:
    return "cloudsim" if row["profile"] == "cloudsim" else f"sim {row['migration']}"


@styled
def comparison_plot(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Bars per policy and variant, one panel per measure; writes ``path`` (PNG)."""
    policies = list(dict.fromkeys(str(r["policy"]) for r in rows))
    variants = list(dict.fromkeys(variant(r) for r in rows))
    panels = [("energy_kwh", "Energy (kWh)", 1.0), ("migrations", "Migrations", 1.0)]
    if all("slav" in r for r in rows):
        panels.append(("slav", "SLAV (x 1e-5)", 1e5))
    fig = new_figure(max(6.0, 0.9 * len(policies) * len(variants) + 3) * len(panels) / 2, 4)
    axes = fig.subplots(1, len(panels))
    width = 0.8 / len(variants)
    x = np.arange(len(policies))
    for ax, (key, label, scale) in zip(axes, panels, strict=True):
        for k, name in enumerate(variants):
            values = [np.array([float(r[key]) * scale for r in rows if r["policy"] == p and variant(r) == name])
                      for p in policies]
            means = np.array([v.mean() if v.size else np.nan for v in values])
            spread = np.array([[m - v.min(), v.max() - m] if v.size else [0.0, 0.0]
                               for m, v in zip(means, values, strict=True)]).T
            ax.bar(x + (k - (len(variants) - 1) / 2) * width, means, width, yerr=spread, capsize=3, label=name,
                   color=variant_colour(name.removeprefix("sim "), k))
        ax.set_xticks(x, policies, rotation=30, ha="right")
        ax.set_ylabel(label)
        ax.set_ylim(0, ax.get_ylim()[1] * (1.25 if len(variants) > 1 else 1.0))  # room for the legend
        ax.grid(axis="y", alpha=0.3)
    if len(variants) > 1:
        axes[0].legend(fontsize="small", loc="upper left", ncols=len(variants))
    days = sorted({str(r["day"]) for r in rows})
    fig.suptitle(f"PlanetLab, {len(days)} day(s): mean, min-max over days")
    return save(fig, path)
