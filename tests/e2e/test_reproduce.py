"""End to end: the paper's experiments through the simulator, the control loop and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from consolidator.domain.types import MigrationMethod
from consolidator.experiments.reproduce import run_complex, run_simple
from consolidator.sim.scenario import load_scenario


@pytest.fixture(scope="module")
def simple() -> dict[str, dict]:
    return run_simple(None, (MigrationMethod.POSTCOPY, MigrationMethod.PRECOPY))


def _first_return(tl: dict) -> dict:
    return next(m for m in tl["migrations"] if m["vm"] == "VM0" and m["dst"] == "PM0")


def _check_paper_return(tl: dict) -> None:
    m = _first_return(tl)
    assert 80 <= m["start_s"] <= 90  # paper: decision at 85 s
    assert m["end_s"] <= 105  # paper: done ≈ 100 s
    suspended = [e["t_s"] for e in tl["power_events"] if e["host"] == "PM1" and e["state"] == "suspended"]
    assert suspended and m["end_s"] <= suspended[0] <= m["end_s"] + 10


def test_simple_postcopy_timeline_matches_the_paper(simple: dict) -> None:
    _check_paper_return(simple["postcopy"])


def test_simple_postcopy_with_cheap_faults_keeps_vm0_home_until_vm1_rises() -> None:
    """Paper Fig. 6: PM1 is next resumed after VM1 rises at 175 s. With vanilla postcopy's 27 ms per
    remote fault VM0 hardly runs during its move, and the work it owes afterwards reads as load to the
    heuristic, which may send it off again before 175 s (docs/models.md); with postcopy-preempt's page
    latency (QEMU's published 0.57 ms) the paper's timeline holds."""
    sc = load_scenario("simple")
    cheap = replace(sc, migration=replace(sc.migration, postcopy_fault_s=0.00057))
    runs = run_simple(None, (MigrationMethod.POSTCOPY, MigrationMethod.PRECOPY), scenario=cheap, baselines=False)
    tl = runs["postcopy"]
    _check_paper_return(tl)
    resumed = [e["t_s"] for e in tl["power_events"] if e["host"] == "PM1" and e["state"] == "on"]
    assert resumed and resumed[0] > 175  # VM1 rises at 175 s: the Warehouse overloads, PM1 wakes
    assert runs["precopy"]["energy_ws"] > tl["energy_ws"]  # paper IV-B: PM1 sleeps longer with postcopy


def test_simple_precopy_lasts_more_than_twice_as_long(simple: dict) -> None:
    post, pre = _first_return(simple["postcopy"]), _first_return(simple["precopy"])
    assert pre["start_s"] == post["start_s"]
    assert (pre["end_s"] - pre["start_s"]) >= 2 * (post["end_s"] - post["start_s"])


@pytest.fixture(scope="module")
def complex_table() -> dict:
    return run_complex(None, seeds=6, extras=False)


def test_complex_rows_are_compared_at_equal_work(complex_table: dict) -> None:
    rows = complex_table["rows"]
    served = [row["work_served_core_s"] for row in rows.values()]
    assert max(served) - min(served) <= 0.001 * min(served)
    assert all(row["completed"] for row in rows.values())
    for row in rows.values():  # the run goes on after the window only for the work still waiting
        assert row["energy_to_complete_ws"] >= row["energy_ws"]
        assert row["complete_s"] >= 900
    paper_rows = ("none", "ideal", "postcopy", "precopy")
    assert min(paper_rows, key=lambda n: rows[n]["energy_to_complete_ws"]) == "ideal"
    assert rows["postcopy"]["delay_mean_s"] > rows["none"]["delay_mean_s"]  # moving VMs makes work wait


def test_precopy_keeps_active_vms_on_the_warehouse(complex_table: dict) -> None:
    """Precopy cannot move a VM that dirties faster than the link: active VMs stay packed."""
    rows = complex_table["rows"]
    assert rows["precopy"]["active_on_warehouse_vm_s"] > 2 * rows["postcopy"]["active_on_warehouse_vm_s"]
    assert rows["precopy"]["migrations"] < rows["postcopy"]["migrations"]


def test_complex_runs_are_reproducible_per_seed() -> None:
    a = run_complex(None, seeds=2, extras=False)
    b = run_complex(None, seeds=2, extras=False)
    assert a["rows"]["postcopy"]["energy_ws"] == b["rows"]["postcopy"]["energy_ws"]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "consolidator.cli.main", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


def test_cli_json_interfaces(tmp_path: Path) -> None:
    proc = _cli("reproduce", "simple", "--migration", "postcopy", "--json", "--no-report", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    simple = json.loads(proc.stdout)
    assert {"migrations", "power_events", "energy_ws"} <= simple.keys()
    assert set(simple["migrations"][0]) >= {"vm", "src", "dst", "method", "start_s", "end_s"}
    assert {e["state"] for e in simple["power_events"]} <= {"suspended", "on"}
    proc = _cli("reproduce", "complex", "--seeds", "2", "--json", "--no-report", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    table = data["table"]
    assert {"none", "ideal", "postcopy", "precopy"} <= set(table)
    assert data["own_policy"] is None or data["own_policy"] in table
    for row in table.values():
        assert {"energy_ws", "saved_pct", "gap_removed_pct", "unserved_cpu_pct", "energy_to_complete_ws",
                "work_served_core_s", "delay_p95_s", "gap_removed_complete_pct"} <= set(row)
    assert table["none"]["saved_pct"] == 0
    assert table["ideal"]["gap_removed_complete_pct"] == 100
    served = [row["work_served_core_s"] for row in table.values()]
    assert max(served) - min(served) <= 0.001 * min(served)  # the same work in every row


def test_main_job_writes_runs_table_figures_and_report(tmp_path: Path) -> None:
    proc = _cli("reproduce", "--seeds", "2", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out"
    assert (out / "complex" / "table.json").is_file()
    for name in ("hosts.csv", "vms.csv", "migrations.csv", "power_events.csv", "summary.json", "run.sqlite"):
        assert (out / "simple" / "postcopy" / "seed-0" / name).is_file(), name
    assert (out / "report.html").is_file() and (out / "report.md").is_file()
    assert list((out / "figures").glob("*.png"))
    assert "Table IV" in proc.stdout
