"""The planetlab commands as a user runs them: exit 2 with one line on bad input, stable JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "consolidator.cli.main", *args], capture_output=True,
                          text=True, timeout=900, cwd=cwd)


@pytest.mark.parametrize(("args", "names"), [
    (["--day", "20990101", "--policy", "thr-mmt-0.8"], "20990101"),
    (["--day", "20110303", "--policy", "nope-mmt-0.8"], "--policy"),
    (["--day", "20110303", "--policy", "thr-mmt-x"], "--policy"),
    (["--day", "20110303", "--policy", "thr-mmt-0.8", "--migration", "postcopy"], "--migration"),
])
def test_bad_input_exits_2_with_one_line(planetlab_root: Path, args: list[str], names: str) -> None:
    proc = _cli("planetlab", "--traces", str(planetlab_root), *args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0] and "Traceback" not in proc.stderr


def test_bad_trace_file_is_named(tmp_path: Path) -> None:
    day = tmp_path / "20200101"
    day.mkdir()
    (day / "vm-a").write_text("\n".join(["10"] * 288) + "\n")
    (day / "vm-b").write_text("\n".join(["10"] * 100 + ["ten"] + ["10"] * 187) + "\n")
    proc = _cli("planetlab", "--traces", str(tmp_path), "--day", "20200101", "--policy", "thr-mmt-0.8")
    assert proc.returncode == 2
    assert str(day / "vm-b") in proc.stderr and "line 101" in proc.stderr


@pytest.mark.slow
def test_json_output_has_the_stable_keys(planetlab_root: Path) -> None:
    proc = _cli("planetlab", "--traces", str(planetlab_root), "--day", "20110303", "--policy", "thr-mmt-0.8",
                "--profile", "cloudsim", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    for key in ("energy_kwh", "migrations", "slatah_pct", "pdm_pct", "slav", "esv", "host_shutdowns", "wall_s"):
        assert key in data
    assert round(data["energy_kwh"], 2) == 192.62 and data["migrations"] == 26_711


@pytest.mark.slow
def test_sweep_writes_results_and_plot(planetlab_root: Path, tmp_path: Path) -> None:
    proc = _cli("planetlab-sweep", "--traces", str(planetlab_root), "--days", "20110306",
                "--policies", "thr-mmt-0.8,mad-mmt-2.5", "--out", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["policy"] for r in rows] == ["thr-mmt-0.8", "mad-mmt-2.5"]
    assert (tmp_path / "results.csv").is_file() and (tmp_path / "comparison.png").stat().st_size > 1000


def test_csv_trace_runs_and_bad_csv_is_named(tmp_path: Path) -> None:
    good = tmp_path / "small.csv"
    rows = ["timestamp,vm,cpu"] + [f"{k * 300},vm{v},{(7 * k + 13 * v) % 90 + 5}" for k in range(12) for v in range(6)]
    good.write_text("\n".join(rows) + "\n")
    proc = _cli("planetlab", "--day", str(good), "--policy", "thr-mmt-0.8", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["day"] == "small" and data["vms"] == 6 and data["energy_kwh"] > 0
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,vm,cpu\n0,a,50\n300,a,150\n600,a,1\n")
    proc = _cli("planetlab", "--day", str(bad), "--policy", "thr-mmt-0.8")
    assert proc.returncode == 2 and str(bad) in proc.stderr and "line 3" in proc.stderr


def test_realistic_profile_is_the_simulator_beside_cloudsim(tmp_path: Path) -> None:
    """--profile realistic runs the day in the simulator (scenario planetlab-20110303's hosts and models)
    under the same policy, one row per method, beside the unchanged CloudSim-compatible row."""
    trace = tmp_path / "mini.csv"
    rows = ["timestamp,vm,cpu"] + [f"{k * 300},vm{v},{(11 * k + 17 * v) % 95 + 3}" for k in range(16) for v in range(8)]
    trace.write_text("\n".join(rows) + "\n")
    proc = _cli("planetlab", "--day", str(trace), "--policy", "thr-mmt-0.8", "--profile", "realistic", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) == {"cloudsim", "postcopy", "precopy"}
    alone = json.loads(_cli("planetlab", "--day", str(trace), "--policy", "thr-mmt-0.8", "--json").stdout)
    assert {k: v for k, v in data["cloudsim"].items() if k != "wall_s"} == \
        {k: v for k, v in alone.items() if k != "wall_s"}
    post, pre = data["postcopy"], data["precopy"]
    for row, method in ((post, "postcopy"), (pre, "precopy")):
        assert row["profile"] == "realistic" and row["migration"] == method and row["scenario"] == "planetlab-mini"
        assert row["duration_s"] == 16 * 300 and row["energy_kwh"] == pytest.approx(row["energy_ws"] / 3.6e6)
        # 800 hosts: the unused ones sleep at 7 W in S3 where CloudSim's draw nothing
        assert row["energy_kwh"] > data["cloudsim"]["energy_kwh"] and row["suspends"] > 0
    # a busy VM dirties faster than the 62.5 MB/s link: precopy gives up, postcopy always finishes
    assert pre["migrations_cancelled"] > post["migrations_cancelled"] == 0


def test_realistic_refuses_a_baseline() -> None:
    proc = _cli("planetlab", "--day", "x.csv", "--policy", "dvfs", "--profile", "realistic")
    assert proc.returncode == 2 and "--policy" in proc.stderr and "Traceback" not in proc.stderr


def test_compare_sweep_on_a_csv_trace(tmp_path: Path) -> None:
    trace = tmp_path / "mini.csv"
    rows = ["timestamp,vm,cpu"] + [f"{k * 300},vm{v},{(11 * k + 17 * v) % 95 + 3}" for k in range(16) for v in range(8)]
    trace.write_text("\n".join(rows) + "\n")
    proc = _cli("planetlab-sweep", "--days", str(trace), "--policies", "thr-mmt-0.8,lr-mmt-1.2",
                "--profile", "compare", "--out", str(tmp_path / "out"), "--json")
    assert proc.returncode == 0, proc.stderr
    rows_out = json.loads(proc.stdout)
    assert [(r["policy"], r["migration"]) for r in rows_out] == [
        (p, m) for p in ("thr-mmt-0.8", "lr-mmt-1.2") for m in ("cloudsim", "postcopy", "precopy")]
    assert (tmp_path / "out" / "comparison.png").stat().st_size > 1000
