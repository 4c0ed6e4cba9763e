"""A literature policy (THR-MMT, Beloglazov & Buyya) drives the live lab through the manager service
(real QEMU, TCG here), and the simulator runs the same policy on the same scaled load: the built-in
``lab-literature`` scenario (three hosts, two 256 MiB guests, one minute at 1/4 time scale). The policy
must shed the VM of the overloaded host to a woken one, bring it back when it idles and suspend the
emptied host; every guest's memory must be intact; and the timelines must agree within the lab's
usual agreement (``compare.AGREEMENT_REL``)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from consolidator.agent.qemu import launch
from consolidator.domain.types import MigrationMethod
from consolidator.experiments.lab import LabScale, lab_down, lab_run, lab_up_for, scale_scenario
from consolidator.experiments.lab.compare import AGREEMENT_REL, disagreements
from consolidator.sim.scenario import load_scenario

pytestmark = [pytest.mark.qemu, pytest.mark.slow, pytest.mark.timeout(600)]
SCENARIO = "lab-literature"


def test_thr_mmt_drives_the_live_lab_as_the_simulator_predicts(tmp_path: Path) -> None:
    reason = launch.why_qemu_cannot_run()
    if reason:
        pytest.skip(reason)
    folder = Path(f"/tmp/cl-{os.getpid()}")  # short: QMP socket paths must stay under 108 bytes
    shutil.rmtree(folder, ignore_errors=True)
    scale = LabScale(cpu_quota=0.25)  # a quarter core per guest: room for two TCG guests on a shared machine
    sc = scale_scenario(load_scenario(SCENARIO), scale)
    try:
        lab_up_for(folder, sc, 120e6, prefix=f"cl{os.getpid() % 10000}", agent_port=25000 + os.getpid() % 5000)
        comparisons = lab_run(folder, tmp_path, SCENARIO, [MigrationMethod.POSTCOPY], scale, 120e6, keep=True)
    finally:
        lab_down(folder)
        shutil.rmtree(folder, ignore_errors=True)
    live = json.loads((tmp_path / "live" / "postcopy" / "summary.json").read_text())
    sim = json.loads((tmp_path / "sim" / "postcopy" / "summary.json").read_text())
    params = live["params"]
    print(f"\n{(tmp_path / 'comparison.md').read_text()}\nlive {live['migrations']} moves, {live['suspends']} "
          f"suspends, energy {live['energy_ws']:.0f} Ws; simulated {sim['migrations']}, {sim['suspends']}, "
          f"{sim['energy_ws']:.0f} Ws; machine load {params['machine_loadavg_1min']}")
    assert params["policy"] == "thr-mmt-0.8" and params["policy_args"] == {"interval_s": 8.0}
    assert params["errors"] == []
    assert live["migrations"] >= 2 and live["suspends"] >= 1  # shed on overload, back on underload, suspended
    assert params["bad_pages"] == {"vm0": 0, "vm1": 0}  # every guest checked, every page as written
    against_sim = comparisons[0]
    assert against_sim["against"] == "simulated"
    assert disagreements(against_sim) == [], f"outside the lab's agreement ({AGREEMENT_REL:.0%})"
