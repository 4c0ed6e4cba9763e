"""CloudSim-compatible figures may not move: four policies on 20110303 and 20110306, through the CLI.

``golden_cloudsim.json`` holds ``consolidator planetlab --day D --policy P --profile cloudsim --json``
as main printed it on 2026-12-04 before the decision code was shared with the control loop (issue 10);
20110303 matches CloudSim 3.0.3's own figures (DESIGN §6). Every printed digit must stay.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

GOLDEN = json.loads((Path(__file__).parent / "golden_cloudsim.json").read_text())
PRINTED = {"energy_kwh": 2, "slatah_pct": 2, "pdm_pct": 2}  # the digits of the table and of CloudSim


@pytest.mark.slow
@pytest.mark.parametrize("want", GOLDEN, ids=lambda g: f"{g['day']}-{g['policy']}")
def test_cloudsim_json_unchanged(planetlab_root: Path, want: dict[str, object]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "consolidator.cli.main", "planetlab", "--day", str(want["day"]), "--policy",
         str(want["policy"]), "--profile", "cloudsim", "--json", "--traces", str(planetlab_root)],
        capture_output=True, text=True, check=False, timeout=900)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert set(got) == set(want) | {"wall_s"}
    for key, value in want.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-15), key
            if key in PRINTED:
                assert f"{got[key]:.{PRINTED[key]}f}" == f"{value:.{PRINTED[key]}f}", key
        else:
            assert got[key] == value, key
