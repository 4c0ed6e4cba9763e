"""The fault-injection run (``consolidator lab run --faults SPEC``): its SPEC (table-driven), and real
runs (QEMU, TCG): the destination QEMU dies mid-postcopy (the loss is forced, detected within 5 s from
the destination's own answer, recorded LOST and counted as explained); the source host dies
mid-postcopy (agent and QEMU killed: recorded LOST within 5 s from the destination's paused half);
a sleeping destination woken through dropped Wake-on-LAN packets and through an unreachable BMC
(real ipmi_sim; the waker falls back, errors reported, nothing lost)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from consolidator.agent.qemu.launch import why_qemu_cannot_run
from consolidator.domain.errors import UserError
from consolidator.domain.types import MigrationMethod
from consolidator.experiments.lab.faultspec import FAULT_METHODS, load_spec, parse_spec


def test_built_in_specs_place_every_fault_once_with_its_method() -> None:
    quick = load_spec("quick")
    faults = [s.fault for s in quick.steps if s.fault]
    assert sorted(faults) == sorted(["link_cut", "kill_source_agent", "kill_destination_agent",
                                     "kill_destination_qemu", "kill_destination_qemu_postcopy", "drop_wol",
                                     "bmc_down"])
    assert all(s.method is FAULT_METHODS[s.fault] for s in quick.steps if s.fault)
    assert any(s.fault == "link_cut" and s.method is MigrationMethod.POSTCOPY for s in quick.steps)
    assert load_spec("quick") == quick  # seeded: the same plan every time
    assert {s.fault for s in load_spec("all").steps} - {None} == set(FAULT_METHODS)


def test_a_different_seed_shuffles_the_plan() -> None:
    data = {"migrations": 8, "faults": {"link_cut": 2, "slow_link": 2}}
    plans = {tuple(s.fault for s in parse_spec({**data, "seed": seed}, "x", "x.toml").steps) for seed in range(6)}
    assert len(plans) > 1


@pytest.mark.parametrize(("data", "field"), [
    ({"faults": {"meteor": 1}}, "faults.meteor"),
    ({"faults": {"link_cut": -1}}, "faults.link_cut"),
    ({"faults": {"link_cut": 3}, "migrations": 2}, "migrations"),
    ({"link_mb_s": float("nan")}, "link_mb_s"),
    ({"cut_s": float("inf")}, "cut_s"),
    ({"vm_mem_mib": 1e9}, "vm_mem_mib"),
    ({"colour": "red"}, "colour"),
    ({"faults": "many"}, "faults"),
])
def test_bad_spec_names_its_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_spec(data, "bad", "bad.toml")
    assert caught.value.field == field and caught.value.source == "bad.toml"


def test_unknown_spec_exits_2_with_one_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "consolidator.cli.main", "lab", "run", "--faults", "nosuch",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "nosuch" in done.stderr and "quick" in done.stderr


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_dead_destination_mid_postcopy_is_a_reported_explained_loss(tmp_path: Path) -> None:
    reason = why_qemu_cannot_run()
    if reason:
        pytest.skip(reason)
    spec = tmp_path / "loss.toml"
    spec.write_text("seed = 1\nmigrations = 1\nlink_mb_s = 30.0\n[faults]\nkill_destination_qemu_postcopy = 1\n")
    done = subprocess.run([sys.executable, "-m", "consolidator.cli.main", "lab", "run", "--faults", str(spec),
                           "--json", "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=580)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary == json.loads((tmp_path / "out" / "faults.json").read_text())
    assert summary["faults"] == {"kill_destination_qemu_postcopy": 1}
    assert (summary["vms_lost"], summary["unexplained_losses"], summary["migrations_unreconciled"]) == (1, 0, 0)
    assert summary["outcomes"] == {"lost": 1}  # the manager's verdict, never a clean stop
    [loss] = summary["losses"]
    assert loss["certain"] and "gone" in loss["cause"]
    assert loss["detected_after_kill_s"] is not None and loss["detected_after_kill_s"] <= 5.0


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_dead_source_host_and_broken_wake_paths(tmp_path: Path) -> None:
    reason = why_qemu_cannot_run() or _why_no_bmc()
    if reason:
        pytest.skip(reason)
    spec = tmp_path / "three.toml"
    spec.write_text("seed = 1\nmigrations = 3\nlink_mb_s = 30.0\n"
                    "[faults]\nkill_source_host = 1\ndrop_wol = 1\nbmc_down = 1\n")
    done = subprocess.run([sys.executable, "-m", "consolidator.cli.main", "lab", "run", "--faults", str(spec),
                           "--json", "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=880)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["faults"] == {"kill_source_host": 1, "drop_wol": 1, "bmc_down": 1}
    assert (summary["vms_lost"], summary["unexplained_losses"], summary["migrations_unreconciled"]) == (1, 0, 0)
    assert summary["outcomes"] == {"lost": 1, "completed": 2} and summary["bad_pages"] == 0
    [loss] = summary["losses"]
    assert loss["certain"] and "does not answer" in loss["cause"] and "paused" in loss["cause"]
    assert loss["detected_after_kill_s"] is not None and loss["detected_after_kill_s"] <= 5.0
    steps = {s["fault"]: s for s in summary["steps"]}
    assert steps["kill_source_host"]["outcome"] == "lost"
    wol, bmc = steps["drop_wol"], steps["bmc_down"]
    assert [a["method"] for a in wol["wake_attempts"] if not a["ok"]] == ["wol", "wol"]
    assert wol["woken_by"] == "ipmi" and wol["outcome"] == "completed" and wol["bad_pages"] == 0
    assert [a["method"] for a in bmc["wake_attempts"] if not a["ok"]] == ["ipmi", "ipmi"]
    assert bmc["woken_by"] == "wol" and bmc["outcome"] == "completed" and bmc["bad_pages"] == 0
    assert bmc["meter_errors"] and bmc["meter_after_w"] == 53.0  # the reading fails, then works again
    assert (summary["wake_fallbacks"], summary["wakes_failed"], summary["meter_errors"]) == (2, 0, 1)


def _why_no_bmc() -> str | None:
    import shutil

    for tool in ("ipmi_sim", "ipmitool", "iptables", "gcc"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/setup.d/30-services.sh, 55-faults.sh)"
    return None
