"""A literature policy (THR-MMT, Beloglazov & Buyya) drives the live lab through the manager service
(real QEMU, TCG here), and the simulator runs the same policy on the same scaled load: the built-in
``lab-literature`` scenario (three hosts, two 256 MiB guests, one minute at 1/4 time scale). The policy
sheds the VM of the overloaded host to a woken one (then brings it back when it idles and suspends the
emptied host); every guest's memory must be intact; the first move and the energy must agree with the
simulator within the lab's usual agreement (``compare.AGREEMENT_REL``)."""

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
    assert live["migrations"] >= 2  # shed on overload, and more
    assert params["bad_pages"] == {"vm0": 0, "vm1": 0}  # every guest checked, every page as written
    against_sim = comparisons[0]
    assert against_sim["against"] == "simulated"
    # The policy's first decision (the shed onto the woken host) and the energy agree within the lab's
    # usual agreement. What follows may not: a live guest stalls through its postcopy move under TCG and
    # then catches up at full speed, which can overload its new host at the next round (an extra move,
    # seen in 3 of 5 runs here; docs/literature.md) -- printed above, not asserted.
    first = [r for r in against_sim["events"] if r["event"] == "migration start vm0 pm0 pm1" and r["n"] == 1]
    assert first and first[0]["rel"] is not None and abs(first[0]["rel"]) <= AGREEMENT_REL, first
    energy = against_sim["energy_ws"]
    assert abs(energy["live"] - energy["sim"]) <= AGREEMENT_REL * energy["sim"], energy
    print("outside the usual agreement:", disagreements(against_sim) or "nothing")
