"""Comparison plot of a sweep: energy and SLAV per policy, mean over days with min-max bars."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from consolidator.literature.cloudsim import RunResult  # noqa: E402


def comparison_plot(results: Sequence[RunResult], path: Path) -> Path:
    """Two panels (energy kWh, SLAV x 1e5) with one bar per policy; writes ``path`` (PNG)."""
    policies = list(dict.fromkeys(r.policy for r in results))
    fig, axes = plt.subplots(1, 2, figsize=(max(6.0, 1.2 * len(policies) + 3), 4), constrained_layout=True)
    panels = (("energy_kwh", "Energy (kWh)", 1.0), ("slav", "SLAV (x 1e-5)", 1e5))
    days = sorted({r.day for r in results})
    for ax, (key, label, scale) in zip(axes, panels, strict=True):
        means, lows, highs = [], [], []
        for name in policies:
            values = np.array([getattr(r, key) * scale for r in results if r.policy == name])
            means.append(values.mean())
            lows.append(values.mean() - values.min())
            highs.append(values.max() - values.mean())
        x = np.arange(len(policies))
        ax.bar(x, means, yerr=[lows, highs], capsize=4, color="tab:blue" if key == "energy_kwh" else "tab:red")
        ax.set_xticks(x, policies, rotation=30, ha="right")
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    profile = results[0].profile if results else ""
    fig.suptitle(f"PlanetLab, {profile} profile, {len(days)} day(s): mean, min-max")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
