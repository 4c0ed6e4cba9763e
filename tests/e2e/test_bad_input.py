"""Bad scenario files: exit status 2 and one line naming the file and the field, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

GOOD = """
name = "t"
duration_s = 10
[[hosts]]
name = "PM0"
role = "warehouse"
[[hosts]]
name = "PM1"
role = "server"
[[vms]]
name = "VM0"
load = [[0, 0.5]]
"""

CASES = [
    ("empty", b"", "file is empty"),
    ("binary", b"\x00\xff\xfe\x00garbage", "not UTF-8 text"),
    ("not toml", b"name = = 3", "not valid TOML"),
    ("missing field", GOOD.replace('duration_s = 10\n', '').encode(), "duration_s"),
    ("wrong type", GOOD.replace("duration_s = 10", 'duration_s = "ten"').encode(), "duration_s"),
    ("negative load", GOOD.replace("[[0, 0.5]]", "[[0, -0.5]]").encode(), "vms[0].load"),
    ("vm larger than every host", (GOOD + "mem_mib = 99999999\n").encode(), "vms[0].mem_mib"),
    ("duplicate names", GOOD.replace('name = "PM1"', 'name = "PM0"').encode(), "duplicate name 'PM0'"),
    ("unknown field", (GOOD + "colour = 3\n").encode(), "vms[0].colour"),
    ("unknown host", (GOOD + 'host = "PM9"\n').encode(), "vms[0].host"),
    ("bad role", GOOD.replace('role = "server"', 'role = "boss"').encode(), "hosts[1].role"),
]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "consolidator.cli.main", *args], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize(("case", "content", "needle"), CASES, ids=[c[0] for c in CASES])
def test_bad_scenario_exits_2_with_one_clear_line(tmp_path: Path, case: str, content: bytes, needle: str) -> None:
    path = tmp_path / "scenario.toml"
    path.write_bytes(content)
    proc = run_cli("simulate", str(path))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(path) in lines[0] and needle in lines[0]
    assert "Traceback" not in proc.stderr


def test_unknown_policy_exits_2() -> None:
    proc = run_cli("simulate", "simple", "--policy", "magic")
    assert proc.returncode == 2
    assert "unknown policy 'magic'" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_file_exits_2() -> None:
    proc = run_cli("simulate", "/nonexistent/x.toml")
    assert proc.returncode == 2 and "/nonexistent/x.toml" in proc.stderr
