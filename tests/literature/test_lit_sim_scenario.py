"""PlanetLab days as a simulator scenario: the literature policies through the control loop, our models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from consolidator.domain.errors import UserError
from consolidator.sim.scenario import load_scenario, parse_scenario

SMALL = """
name = "pl-small"
duration_s = 7200
tick_s = 300
overhead_per_vm_cores = 0.0
[[hosts]]
name = "g5-{{i}}"
role = "server"
count = 20
cores = 5.32
core_speed = 2.66
mem_mib = 16384
nic_mb_s = 125
power = {{ table_watts = [93.7, 97.0, 101.0, 105.0, 110.0, 116.0, 121.0, 125.0, 129.0, 133.0, 135.0] }}
[migration]
bandwidth_mb_s = 62.5
[workload]
kind = "planetlab"
day = "{day}"
traces = "{root}"
vms = {vms}
placement = "{placement}"
"""


def _small(root: Path, day: str = "20110303", vms: int = 60, placement: str = "pabfd") -> bytes:
    return SMALL.format(day=day, root=root, vms=vms, placement=placement).encode()


def test_scenario_makes_cloudsim_vms_loads_and_placement(planetlab_root: Path) -> None:
    sc = parse_scenario(_small(planetlab_root), "pl-small.toml")
    assert len(sc.vms) == 60 and len(sc.hosts) == 20
    # CloudSim's types by block of ceil(60/4) = 15: 2500, 2000, 1000, 500 MIPS with 1000 MIPS as the unit
    assert [sc.vms[i].vcpu_speed for i in (0, 15, 30, 45)] == [2.5, 2.0, 1.0, 0.5]
    assert [sc.vms[i].mem_mib for i in (0, 15, 30, 45)] == [870, 1740, 1740, 613]
    files = sorted(p.name for p in (planetlab_root / "20110303").iterdir())
    assert [v.name for v in sc.vms] == files[:60]
    first = int((planetlab_root / "20110303" / files[0]).read_text().split()[3])
    loads = sc.loads()
    assert loads.at(900.0)[0] == pytest.approx(first / 100 * 2.5)  # step 3 of the trace, VM 0
    hosts_used = set(sc.placement.values())
    assert 1 < len(hosts_used) <= 20  # PABFD at creation spreads the VMs


def test_more_vms_than_files_reuse_the_files(planetlab_root: Path) -> None:
    sc = parse_scenario(_small(planetlab_root, "20110306", 2000, "spread"), "pl.toml")
    assert sc.placement[sc.vms[21].name] == "g5-1"  # VM i on host i mod 20
    loads = sc.loads().at(0.0)
    assert len(sc.vms) == 2000 and len({v.name for v in sc.vms}) == 2000
    assert loads[898] == pytest.approx(loads[0] / sc.vms[0].vcpu_speed * sc.vms[898].vcpu_speed)


def test_bad_day_names_the_field(planetlab_root: Path) -> None:
    with pytest.raises(UserError) as err:
        parse_scenario(_small(planetlab_root, "19990101"), "pl.toml")
    assert err.value.field == "workload.day" and err.value.source == "pl.toml"


@pytest.mark.parametrize("policy", ["thr-mmt-0.8", "mad-mmt-2.5"])
def test_simulate_cli_runs_a_literature_policy_on_planetlab(planetlab_root: Path, tmp_path: Path,
                                                            policy: str) -> None:
    path = tmp_path / "pl-small.toml"
    path.write_bytes(_small(planetlab_root))
    proc = subprocess.run([sys.executable, "-m", "consolidator.cli.main", "simulate", str(path), "--policy", policy,
                           "--migration", "postcopy", "--json"], capture_output=True, text=True, check=False,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["policy"] == policy and out["migration"] == "postcopy" and out["completed"]
    assert out["migrations"] and all(m["method"] == "postcopy" for m in out["migrations"])
    assert out["suspends"] > 0 and out["energy_ws"] > 0
    # moves are planned every 300 s: each starts at a round (+ a resume when the target slept)
    assert {round(m["start_s"]) % 300 for m in out["migrations"]} <= {0, 5}


def test_the_shipped_example_loads(planetlab_root: Path) -> None:
    sc = load_scenario("planetlab-20110303")
    assert len(sc.vms) == 1052 and len(sc.hosts) == 800 and sc.tick_s == 300
    assert np.isclose(sc.hosts[0].core_speed, 1.86) and np.isclose(sc.hosts[-1].cores, 5.32)
