"""Event tables: migrations listed in order, the simple scenario's timeline read from the events.

Inputs are hand-made run folders (report_fixtures.py), not simulator output.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import report_fixtures

from consolidator.reports.runs import Run, load_run
from consolidator.reports.timeline import (
    PAPER_SIMPLE,
    first_consolidation,
    migration_rows,
    simple_timeline_rows,
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    root = tmp_path_factory.mktemp("timeline")
    return {v: load_run(report_fixtures.write_run(root / v, "simple", v, seed=0)) for v in ("postcopy", "precopy")}


def test_first_consolidation_reads_the_events(runs: dict[str, Run]) -> None:
    # scripted: VM0 PM1 -> PM0 from 85 s to 100 s (postcopy) / 160 s (precopy); PM1 suspended 5 s later,
    # resumes at 176 s
    post = first_consolidation(runs["postcopy"])
    pre = first_consolidation(runs["precopy"])
    assert post is not None and pre is not None
    assert (post.migration.start_s, post.migration.end_s, post.suspended_s) == (85.0, 100.0, 105.0)
    assert post.asleep_s == pytest.approx(176.0 - 105.0)
    assert (pre.migration.end_s, pre.suspended_s, pre.asleep_s) == (160.0, 165.0, 11.0)


def test_simple_timeline_puts_the_paper_beside_ours(runs: dict[str, Run]) -> None:
    rows = simple_timeline_rows(runs)
    assert rows[0] == ("", "postcopy", "paper postcopy", "precopy", "paper precopy")
    by_label = {row[0]: row[1:] for row in rows[1:]}
    assert by_label["migration time (s)"] == (
        "15",
        PAPER_SIMPLE["postcopy"]["duration"],
        "75",
        PAPER_SIMPLE["precopy"]["duration"],
    )
    assert by_label["… and stays asleep for (s)"][0] == "71"


def test_no_timeline_without_a_move_to_the_warehouse(runs: dict[str, Run], tmp_path: Path) -> None:
    none = load_run(report_fixtures.write_run(tmp_path / "none", "simple", "none", seed=0, duration_s=30))
    assert first_consolidation(none) is None
    assert simple_timeline_rows({"postcopy": none}) == ()


def test_migration_rows_in_start_order(runs: dict[str, Run]) -> None:
    rows = migration_rows(runs)
    assert rows[0][:3] == ("run", "VM", "from → to")
    assert len(rows) == 1 + 3 + 3
    post = [r for r in rows[1:] if r[0] == "postcopy"]
    assert [r[4] for r in post] == ["5.0", "85.0", "185.0"] and post[1][2] == "PM1 → PM0"
    assert post[1][6] == "15.0" and post[1][7] == "completed"
