"""Table IV from run summaries: equal-work columns, per-seed gaps, rows as data (experiments/reproduce.py)."""

from __future__ import annotations

from typing import Any

import pytest

from consolidator.domain.types import MigrationMethod
from consolidator.experiments.reproduce import INTERFACE_KEYS, VARIANTS, Reading, Variant, build_table, interface_table
from consolidator.sim.backlog import Accounting
from consolidator.sim.scenario import load_scenario


def _summary(window: float, complete: float, delay_p95: float = 0.0) -> dict[str, Any]:
    return {
        "energy_ws": window, "energy_to_complete_ws": complete, "delay_mean_s": delay_p95 / 3,
        "delay_p95_s": delay_p95, "delay_max_s": delay_p95, "complete_s": 900.0, "unserved_cpu_pct": 0.0,
        "work_arrived_core_s": 3000.0, "work_served_core_s": 3000.0, "backlog_end_core_s": 0.0,
        "unserved_core_s": 0.0, "overload_s": 0.0, "migrations": 3, "migrations_cancelled": 0,
        "active_host_s": 900.0, "active_on_warehouse_vm_s": 0.0, "completed": True,
    }


ROWS = (
    Variant("none", "none", MigrationMethod.POSTCOPY),
    Variant("ideal", "ideal", MigrationMethod.INSTANT),
    Variant("postcopy", "paper", MigrationMethod.POSTCOPY),
    Variant("ours", "aware", MigrationMethod.POSTCOPY, own=True),
    Variant("precopy-lost-cpu", "paper", MigrationMethod.PRECOPY, main=False, reading=Reading.LOST_CPU),
)


def _table() -> dict[str, Any]:
    runs = {
        # seed 0 then seed 1: (window energy, energy to complete)
        "none": [_summary(400.0, 400.0), _summary(500.0, 500.0)],
        "ideal": [_summary(300.0, 300.0), _summary(300.0, 300.0)],
        "postcopy": [_summary(340.0, 380.0, 20.0), _summary(450.0, 480.0, 10.0)],
        "ours": [_summary(320.0, 320.0, 4.0), _summary(400.0, 400.0, 2.0)],
        "precopy-lost-cpu": [_summary(330.0, 330.0), _summary(430.0, 430.0)],
    }
    return build_table("complex", [0, 1], runs, ROWS)


@pytest.mark.parametrize(
    ("row", "key", "value"),
    [
        ("postcopy", "gap_removed_pct", (60.0 + 25.0) / 2),  # window: (400-340)/100, (500-450)/200
        ("postcopy", "gap_removed_complete_pct", (20.0 + 10.0) / 2),  # to complete: (400-380)/100, (500-480)/200
        ("postcopy", "saved_complete_pct", (5.0 + 4.0) / 2),
        ("postcopy", "energy_to_complete_ws", 430.0),
        ("postcopy", "delay_p95_s", 15.0),
        ("ours", "gap_removed_complete_pct", (80.0 + 50.0) / 2),
        ("none", "saved_complete_pct", 0.0),
        ("ideal", "gap_removed_complete_pct", 100.0),
    ],
)
def test_rows_average_per_seed_figures(row: str, key: str, value: float) -> None:
    assert _table()["rows"][row][key] == pytest.approx(value)


def test_own_policy_is_named_and_main_rows_make_the_interface_table() -> None:
    table = _table()
    assert table["own_policy"] == "ours"
    face = interface_table(table)
    assert face["own_policy"] == "ours"
    assert set(face["table"]) == {"none", "ideal", "postcopy", "ours"}
    assert set(face["extra"]) == {"precopy-lost-cpu"}
    for row in face["table"].values():
        assert set(INTERFACE_KEYS) <= set(row)


def test_readings_change_the_scenario_only_as_labelled() -> None:
    sc = load_scenario("complex")
    by_name = {v.name: v for v in VARIANTS}
    four = by_name["postcopy@4cores"].scenario_for(sc)
    assert all(h.cores == 4.0 and h.power.full_load_cores == 1.0 for h in four.hosts)
    assert four.guests == sc.guests
    lost = by_name["postcopy-lost-cpu"].scenario_for(sc)
    assert lost.guests.accounting is Accounting.LOST_CPU and lost.hosts == sc.hosts
    assert by_name["postcopy"].scenario_for(sc) == sc
    assert by_name["postcopy-1/host"].scenario_for(sc).max_moves_per_host == 1
    assert [v.name for v in VARIANTS if v.main][:4] == ["none", "ideal", "postcopy", "precopy"]
