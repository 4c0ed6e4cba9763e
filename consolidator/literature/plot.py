"""Comparison plot of a sweep: energy and SLAV per policy, mean over days with min-max bars."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from consolidator.literature.cloudsim import RunResult  # noqa: E402


def _variant(r: RunResult) -> str:
    return "cloudsim" if r.profile == "cloudsim" else f"realistic {r.migration}"


def comparison_plot(results: Sequence[RunResult], path: Path) -> Path:
    """Two panels (energy kWh, SLAV x 1e5), bars per policy and profile variant; writes ``path`` (PNG)."""
    policies = list(dict.fromkeys(r.policy for r in results))
    variants = list(dict.fromkeys(_variant(r) for r in results))
    fig, axes = plt.subplots(1, 2, figsize=(max(6.0, 1.2 * len(policies) * len(variants) + 3), 4),
                             constrained_layout=True)
    panels = (("energy_kwh", "Energy (kWh)", 1.0), ("slav", "SLAV (x 1e-5)", 1e5))
    days = sorted({r.day for r in results})
    width = 0.8 / len(variants)
    x = np.arange(len(policies))
    for ax, (key, label, scale) in zip(axes, panels, strict=True):
        for k, variant in enumerate(variants):
            means, lows, highs = [], [], []
            for name in policies:
                values = np.array([getattr(r, key) * scale for r in results
                                   if r.policy == name and _variant(r) == variant])
                means.append(values.mean())
                lows.append(values.mean() - values.min())
                highs.append(values.max() - values.mean())
            ax.bar(x + (k - (len(variants) - 1) / 2) * width, means, width, yerr=[lows, highs], capsize=3,
                   label=variant)
        ax.set_xticks(x, policies, rotation=30, ha="right")
        ax.set_ylabel(label)
        ax.set_ylim(0, ax.get_ylim()[1] * (1.25 if len(variants) > 1 else 1.0))  # room for the legend
        ax.grid(axis="y", alpha=0.3)
    if len(variants) > 1:
        axes[0].legend(fontsize="small", loc="upper left", ncols=len(variants))
    fig.suptitle(f"PlanetLab, {len(days)} day(s): mean, min-max over days")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
