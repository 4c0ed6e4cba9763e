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
