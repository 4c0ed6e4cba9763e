"""The figures are real PNGs of a readable size with something drawn on them.

Inputs are hand-made run folders (report_fixtures.py), not simulator output.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import report_fixtures
from PIL import Image
from report_fixtures import check_png

from consolidator.reports import figures
from consolidator.reports.runs import Run, load_run

VARIANTS = ("none", "ideal", "postcopy", "precopy")


@pytest.fixture(scope="module")
def runs(experiment_dir: Path) -> dict[str, Run]:
    return {v: load_run(experiment_dir / "simple" / v / "seed-0") for v in VARIANTS}


def test_cpu_figure_has_one_row_per_busy_host(runs: dict[str, Run], tmp_path: Path) -> None:
    path = figures.cpu_figure([runs["postcopy"], runs["precopy"]], tmp_path / "cpu.png", "Fig. 6")
    width, height = check_png(path, (1000, 400))
    # PM2-PM5 hold no VM and sleep throughout: two host rows only, so the figure is wider than tall.
    assert width > height


def test_cpu_figure_draws_every_host_that_did_something(runs: dict[str, Run], tmp_path: Path) -> None:
    path = figures.cpu_figure([runs["none"]], tmp_path / "cpu-none.png", "no consolidation")
    width, height = check_png(path)
    assert height > width  # five busy Server nodes, one row each, in a single column


def test_power_figure(runs: dict[str, Run], tmp_path: Path) -> None:
    check_png(
        figures.power_figure([runs["postcopy"], runs["precopy"]], tmp_path / "power.png", "Fig. 7"),
        (1000, 350),
    )


def test_active_hosts_and_total_power(runs: dict[str, Run], tmp_path: Path) -> None:
    check_png(figures.active_hosts_figure(runs, tmp_path / "active.png", "Fig. 8"), (1000, 300))
    check_png(figures.total_power_figure(runs, tmp_path / "total.png", "Fig. 9"), (1000, 300))


def test_references_are_told_by_policy_not_by_name(runs: dict[str, Run]) -> None:
    named = {
        "none": runs["none"],
        "ideal@1.5": runs["ideal"],
        "postcopy": runs["postcopy"],
        "hybrid": runs["postcopy"],
        "precopy": runs["precopy"],
    }
    assert figures.compared_variants(named) == ["postcopy", "hybrid", "precopy"]
    assert figures.side_by_side(named) == ["postcopy", "precopy"]  # the paper's left | right
    assert figures.side_by_side({"hybrid": runs["postcopy"]}) == ["hybrid"]
    assert figures.compared_variants({"none": runs["none"], "ideal": runs["ideal"]}) == ["none", "ideal"]


def test_energy_by_seed(tmp_path: Path) -> None:
    energies = {"none": {0: 390e3, 1: 391e3, 2: 389e3}, "postcopy": {0: 344e3, 1: 350e3, 2: 340e3}}
    path = figures.energy_by_seed_figure(energies, tmp_path / "seeds.png", "seeds", {"postcopy": 11.8})
    check_png(path, (700, 300))


def test_energy_by_seed_without_none(tmp_path: Path) -> None:
    energies = {"postcopy": {0: 344e3, 1: 350e3}}
    check_png(figures.energy_by_seed_figure(energies, tmp_path / "seeds.png", "seeds"), (700, 300))


def test_figures_differ_when_the_data_differ(runs: dict[str, Run], tmp_path: Path) -> None:
    a = figures.power_figure([runs["postcopy"]], tmp_path / "a.png", "same title")
    b = figures.power_figure([runs["precopy"]], tmp_path / "b.png", "same title")
    with Image.open(a) as ia, Image.open(b) as ib:
        assert ia.size == ib.size
        assert np.abs(np.asarray(ia, dtype=float) - np.asarray(ib, dtype=float)).mean() > 0.5


def test_drawing_leaves_global_matplotlib_state_alone(runs: dict[str, Run], tmp_path: Path) -> None:
    import matplotlib

    before = dict(matplotlib.rcParams)
    figures.power_figure([runs["postcopy"]], tmp_path / "p.png", "state")
    assert dict(matplotlib.rcParams) == before


def test_many_hosts_and_vms_stay_readable(tmp_path: Path) -> None:
    """30 hosts, 40 VMs: Fig. 6 draws at most 12 host rows, Fig. 7 stacks 11 hosts and 'others'."""
    run = load_run(report_fixtures.write_wide_run(tmp_path / "wide"))
    width, height = check_png(figures.cpu_figure([run], tmp_path / "cpu.png", "wide"), (600, 600))
    assert height <= 12 * 160 + 400  # 12 rows at 1.55 in, plus title and legend
    hosts, note = figures._hosts_to_draw([run])
    assert len(hosts) == figures.MAX_HOST_PANELS and "less busy hosts not drawn" in note
    bands = figures._power_bands([run])
    assert len(bands) == figures.MAX_HOST_PANELS and bands[-1][0] == "other 19 hosts"
    assert sorted(h for _, hs in bands for h in hs) == sorted(run.hosts)  # every host in exactly one band
    check_png(figures.power_figure([run], tmp_path / "power.png", "wide"), (600, 350))
