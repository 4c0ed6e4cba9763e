"""``consolidator lab run --engine libvirt``: a small scenario run live through private libvirtd daemons
(one per host, the test guest as libvirt domains with a shared-folder disk and a virtio NIC) by the
manager service, beside the simulator, and compared — what the lab does for the simple scenario,
made small: two hosts, two 256 MiB guests, 30 lab seconds.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from consolidator.cli.main import app
from consolidator.manager.libvirt.daemons import why_libvirtd_cannot_run

WHY = why_libvirtd_cannot_run()
pytestmark = [pytest.mark.qemu, pytest.mark.slow, pytest.mark.skipif(WHY is not None, reason=WHY or "")]

# Two light VMs, one on the Server node: the paper's policy brings it to the Warehouse and suspends
# the Server, in the simulator and live alike (light loads: a busy machine cannot change the story).
SCENARIO = """\
name = "libvirt-small"
description = "VM0 (light) on the Server node: moved to the Warehouse, the Server suspended"
duration_s = 120
tick_s = 1
overhead_per_vm_cores = 0.05

[[hosts]]
name = "PM0"
role = "warehouse"

[[hosts]]
name = "PM1"
role = "server"

[[vms]]
name = "VM0"
host = "PM1"
load = [[0, 0.05]]

[[vms]]
name = "VM1"
load = [[0, 0.05]]

[migration]
bandwidth_mb_s = 120
downtime_limit_s = 0.3
timeout_s = 600
"""


def test_lab_run_through_libvirt_compares_with_the_simulator(tmp_path: Path) -> None:
    scenario = tmp_path / "small.toml"
    scenario.write_text(SCENARIO)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["lab", "run", "--engine", "libvirt", "--scenario", str(scenario),
                                      "--methods", "postcopy", "--out", str(out)])
    assert result.exit_code == 0, result.output
    comparisons = json.loads((out / "comparison.json").read_text())
    assert [(c["method"], c["engine"]) for c in comparisons] == [("postcopy", "libvirt")] * 2
    first = comparisons[0]
    # the story's first steps are paired in both timelines (a busy machine may add live moves later:
    # the guests' loads are libvirt's measure of their QEMU, emulation included)
    firsts = {e["event"]: e for e in first["events"] if e["n"] == 1}
    for key in ("migration start vm0 pm1 pm0", "migration end vm0 pm1 pm0 completed", "host suspended pm1"):
        assert firsts[key]["live_s"] is not None and firsts[key]["sim_s"] is not None, (key, first["events"])
    summary = json.loads((out / "live" / "postcopy" / "summary.json").read_text())
    assert summary["params"]["engine"] == "libvirt" and summary["params"]["errors"] == []
    assert "Live runs through: libvirt" in (out / "comparison.md").read_text()
    # nothing left behind: the lab's daemons, namespaces and bridge are gone
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert "clv" not in netns
