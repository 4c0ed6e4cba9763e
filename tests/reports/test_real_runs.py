"""The report on the simulator's real output: `consolidator reproduce` (2 seeds), then checks that the
report shows what the run folders hold — not hand-made fixtures."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from report_fixtures import check_png

from consolidator.reports.layout import find_experiments
from consolidator.reports.runs import load_run
from consolidator.reports.table import load_table, table_view
from consolidator.reports.timeline import first_consolidation

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("reproduce")
    result = subprocess.run(
        [sys.executable, "-m", "consolidator.cli.main", "reproduce", "--seeds", "2", "--out", str(folder)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return folder


def test_every_figure_is_a_readable_png_and_linked(out: Path) -> None:
    figures = sorted((out / "figures").glob("*.png"))
    assert {f"{s}-{k}.png" for s in ("simple", "complex") for k in ("cpu", "power", "active", "total")} <= {
        f.name for f in figures
    }
    for path in figures:
        check_png(path, (450, 300))
    markdown = (out / "report.md").read_text()
    assert sorted(re.findall(r"\]\((figures/[^)]+)\)", markdown)) == [f"figures/{f.name}" for f in figures]
    assert (out / "report.html").read_text().count("data:image/png;base64,") == len(figures)


def test_table_in_the_report_is_the_table_json(out: Path) -> None:
    view = table_view(load_table(out / "complex" / "table.json"))
    html, markdown = (out / "report.html").read_text(), (out / "report.md").read_text()
    for row in view.rows:
        assert f'<th scope="row">{row[0]}</th><td>{row[1]}</td>' in html
        assert f"| {row[0]} | {row[1]} |" in markdown


def test_simple_timeline_matches_the_stored_events(out: Path) -> None:
    run = load_run(out / "simple" / "postcopy" / "seed-0")
    moved = first_consolidation(run)
    assert moved is not None and moved.migration.end_s is not None
    events = [e for e in run.power_events if e.host == moved.migration.src and e.state == "suspended"]
    assert moved.suspended_s == min(e.t_s for e in events if e.t_s >= moved.migration.start_s)
    markdown = (out / "report.md").read_text()
    assert f"| first move to a Warehouse node starts (s) | {moved.migration.start_s:.0f} |" in markdown


def test_energy_in_figure_titles_and_run_table_is_the_summary(out: Path) -> None:
    summary = json.loads((out / "simple" / "precopy" / "seed-0" / "summary.json").read_text())
    markdown = (out / "report.md").read_text()
    assert f"| precopy | {summary['energy_to_complete_ws']:,.0f} | {summary['complete_s']:,.4g} |" in markdown
    assert f"| {summary['energy_ws']:,.0f} |" in markdown
    complex_ = next(e for e in find_experiments(out) if e.scenario == "complex")
    assert complex_.figure_seed() == 0  # seed 0 keeps full run folders, the others their summary


def test_work_waiting_figure_draws_the_runs_backlog(out: Path) -> None:
    folder = out / "complex" / "postcopy" / "seed-0"
    summary = json.loads((folder / "summary.json").read_text())
    series = load_run(folder).total_backlog()
    assert series is not None
    t, waiting = series
    end = int(summary["duration_s"]) - 1  # the window's last tick
    assert waiting[t == end][0] == pytest.approx(summary["backlog_end_core_s"], abs=1e-4 * 5)
    assert waiting[-1] == pytest.approx(0.0, abs=1e-4) and t[-1] + summary["tick_s"] == summary["complete_s"]
    assert waiting.max() > 1.0  # postcopy's moves leave work waiting
    check_png(out / "figures" / "complex-backlog.png", (450, 300))
