"""The lab's pieces that need no QEMU: scenario scaling, the network (real namespaces, veth, tbf),
the recorder's run folder, the timeline comparison, and the CLI's handling of bad arguments."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from consolidator.agent.qemu.guestctl import delay_bin_upper_s
from consolidator.domain.errors import UserError
from consolidator.domain.events import HostPowerChanged, MigrationFinished, MigrationStarted
from consolidator.domain.samples import HostSample, VmSample
from consolidator.domain.types import MigrationMethod, MigrationOutcome, PowerState
from consolidator.experiments.lab.backlog import GuestQueues, backlog_markdown, compare_backlog
from consolidator.experiments.lab.compare import align, compare, to_markdown
from consolidator.experiments.lab.network import LabNetwork
from consolidator.experiments.lab.record import LabRecorder
from consolidator.experiments.lab.scale import LabPolicy, LabScale, load_at, scale_scenario
from consolidator.experiments.runs import simulate, write_run
from consolidator.manager.poller import PolledStats
from consolidator.protocol.schemas import GuestQueueView
from consolidator.sim.scenario import load_scenario


def test_scaling_keeps_the_story_and_shrinks_time_and_memory() -> None:
    base = load_scenario("simple")
    lab = scale_scenario(base, LabScale(time_scale=0.25))
    assert lab.duration_s == base.duration_s * 0.25 and lab.tick_s == base.tick_s * 0.25
    assert [v.mem_mib for v in lab.vms] == [256] * 5
    assert [h.name for h in lab.hosts] == ["pm0", "pm1", "pm2", "pm3", "pm4", "pm5"]
    assert lab.placement["vm0"] == "pm1" and lab.placement["vm1"] == "pm0"
    assert lab.schedules[0] == ((0.0, 0.8), (75 * 0.25, 0.4))
    assert lab.hosts[0].power.suspend_s == base.hosts[0].power.suspend_s * 0.25
    assert LabScale(time_scale=0.25).policy_args() == {"hold_s": 5.0}
    assert load_at(lab.schedules[0], 18.0) == 0.8 and load_at(lab.schedules[0], 18.75) == 0.4


def test_lab_policy_is_the_scenarios_or_any_registered_name_with_times_scaled() -> None:
    lit = scale_scenario(load_scenario("lab-literature"), LabScale())
    assert LabPolicy.of(lit, LabScale()) == LabPolicy("thr-mmt-0.8", {"interval_s": 8.0})  # 32 s x 0.25
    assert LabPolicy.of(lit, LabScale(time_scale=0.125), "thr-mmt-0.8").args == {"interval_s": 4.0}
    assert LabPolicy.of(lit, LabScale(), "mad-mmt").args == {"interval_s": 75.0}  # the default 300 s, scaled
    assert LabPolicy.of(lit, LabScale(), "paper").args == {"hold_s": 5.0}
    assert LabPolicy.of(scale_scenario(load_scenario("simple"), LabScale()), LabScale()).name == "paper"
    with pytest.raises(UserError, match="unknown VM selector 'nope'"):
        LabPolicy.of(lit, LabScale(), "thr-nope")


def test_a_scenarios_policy_is_checked_against_the_registry(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nduration_s = 10\n[[hosts]]\nname = "a"\nrole = "warehouse"\n'
                   '[[vms]]\nname = "v"\nload = [[0, 0.5]]\n[policy]\nname = "thr-mmt"\nargs = { hold_s = 2 }\n')
    with pytest.raises(UserError) as caught:
        load_scenario(bad)
    assert caught.value.source == str(bad) and caught.value.field == "policy.hold_s"


@pytest.mark.parametrize("args", [{"time_scale": 0.5}, {"time_scale": 0}, {"cpu_quota": 2.0},
                                  {"overhead": "guess"}])
def test_bad_lab_scale_is_user_error(args: dict[str, object]) -> None:
    with pytest.raises(UserError):
        LabScale(**args)  # type: ignore[arg-type]


def test_simulated_lab_scenario_tells_the_papers_story_faster() -> None:
    """The scaled scenario in the simulator: same decisions as the paper's, at 1/4 of the times."""
    lab = scale_scenario(load_scenario("simple"), LabScale())
    result = simulate(lab, "paper", MigrationMethod.POSTCOPY, policy_args=LabScale().policy_args())
    moves = [(m.vm, m.src, m.dst) for m in result.record.migrations]
    assert moves[:2] == [("vm0", "pm1", "pm0"), ("vm0", "pm0", "pm1")]
    first = result.record.migrations[0]
    assert 75 * 0.25 < first.start_s < 100 * 0.25  # paper: decision at 85 s


def _recorded(tmp_path: Path) -> Path:
    sc = scale_scenario(load_scenario("simple"), LabScale())
    rec = LabRecorder(sc, MigrationMethod.POSTCOPY, {"pm0": PowerState.ON, "pm1": PowerState.ON})
    vm_host = np.array([1, 0, 0, 0, 0])
    for k in range(8):
        t = k * sc.tick_s
        if k == 3:
            rec.on_event(MigrationStarted(t, "vm0", "pm1", "pm0", MigrationMethod.POSTCOPY))
        if k == 5:
            rec.on_event(MigrationFinished(t, "vm0", "pm1", "pm0", MigrationMethod.POSTCOPY,
                                           MigrationOutcome.COMPLETED, 0.75, 2.7e8))
            rec.on_event(HostPowerChanged(t, "pm1", PowerState.SUSPENDED))
            vm_host = np.array([0, 0, 0, 0, 0])
        polled = {}
        for h in ("pm0", "pm1"):
            idx = {"pm0": 0, "pm1": 1}[h]
            vms = tuple(VmSample(t, f"vm{j}", h, 0.8 if j == 0 else 0.0005) for j in range(5) if vm_host[j] == idx)
            polled[h] = PolledStats(HostSample(t, h, sum(v.cpu_load for v in vms) + 0.05 * len(vms)), vms,
                                    None)  # type: ignore[arg-type]
        rec.tick(t, polled, vm_host, np.zeros(5))
    result = rec.result("paper", {"params": {"lab": True}})
    write_run(result, tmp_path)
    replay = rec.measured_schedules()
    assert len(replay) == 5 and len(replay[0]) == 8 and replay[0][0] == (0.0, 0.8)
    assert replay[0][1] == pytest.approx((0.25 - 0.25, 0.8))
    return tmp_path


def test_recorder_writes_the_simulators_run_folder(tmp_path: Path) -> None:
    folder = _recorded(tmp_path)
    header = (folder / "hosts.csv").read_text().splitlines()[0]
    assert header == "t_s,host,role,state,cpu_demand,cpu_served,cpu_unserved,watts,n_vms"
    assert (folder / "vms.csv").read_text().splitlines()[0] == "t_s,vm,host,demand,served,load_avg,migrating,backlog"
    migrations = (folder / "migrations.csv").read_text().splitlines()
    assert migrations[1].startswith("vm0,pm1,pm0,postcopy,0.750,1.250,completed")
    assert (folder / "power_events.csv").read_text().splitlines()[1] == "1.250,pm1,suspended"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["migrations"] == 1 and summary["suspends"] == 1 and summary["params"] == {"lab": True}
    pm1 = [r.split(",") for r in (folder / "hosts.csv").read_text().splitlines()[1:] if ",pm1," in r]
    assert float(pm1[0][7]) == pytest.approx(53 + 47 * 0.85)  # the paper's linear model, L = 0.8 + 0.05
    assert float(pm1[4][7]) == pytest.approx(53 + 47 * 0.85 + 3)  # + 3 W while a migration runs
    assert pm1[-1][3] == "suspended" and float(pm1[-1][7]) == 7.0


def test_comparison_pairs_events_in_order() -> None:
    lab = scale_scenario(load_scenario("simple"), LabScale())
    sim = simulate(lab, "paper", MigrationMethod.POSTCOPY, policy_args=LabScale().policy_args())
    same = compare(sim, sim, 0.25)
    assert same["max_rel_diff"] == 0.0 and same["unmatched"] == []
    assert "| migration start vm0 pm1 pm0 | 1 |" in to_markdown([same])


@pytest.mark.parametrize(
    ("live", "sim", "pairs"),
    [
        ([1.0, 2.0, 3.0], [1.1, 2.1, 2.9], [(0, 0), (1, 1), (2, 2)]),
        ([25.8, 46.8], [47.2], [(0, None), (1, 0)]),  # an extra live event early does not shift the pair
        ([20.5, 34.0, 56.1], [20.7], [(0, 0), (1, None), (2, None)]),
        ([], [5.0], [(None, 0)]),
    ],
)
def test_align_pairs_nearest_in_order(live: list[float], sim: list[float],
                                      pairs: list[tuple[int | None, int | None]]) -> None:
    assert align(live, sim, gap=7.5) == pairs


def _why_no_netns() -> str | None:
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    if shutil.which("ip") is None or shutil.which("tc") is None:
        return "iproute2 (ip, tc) is not installed"
    return None


def test_network_setup_shapes_links_and_teardown_removes_everything() -> None:
    reason = _why_no_netns()
    if reason:
        pytest.skip(reason)
    prefix = f"cn{os.getpid() % 10000}"
    net = LabNetwork.plan(["pm0", "pm1"], 30e6, prefix)
    try:
        net.setup()
        qdisc = subprocess.run(["ip", "netns", "exec", f"{prefix}-pm0", "tc", "qdisc", "show", "dev", "eth0"],
                               capture_output=True, text=True, check=True).stdout
        assert "tbf" in qdisc and "240Mbit" in qdisc  # 30 MB/s
        root_side = subprocess.run(["tc", "qdisc", "show", "dev", f"{prefix}-pm1"], capture_output=True,
                                   text=True, check=True).stdout
        assert "tbf" in root_side
    finally:
        removed = net.teardown()
    assert f"netns {prefix}-pm0" in removed and f"bridge {prefix}-br" in removed
    assert net.teardown() == []
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert prefix not in names


def test_lab_down_without_a_lab_removes_nothing(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "consolidator.cli.main", "lab", "down", "--dir", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "nothing to remove"


@pytest.mark.parametrize("args", [["lab", "run", "--out", "x", "--methods", "teleport"],
                                  ["lab", "run", "--out", "x", "--policy", "thr-nope"],
                                  ["lab", "run", "--out", "x", "--time-scale", "0.5"],
                                  ["lab", "run", "--out", "x", "--link-mb-s", "0"],
                                  ["lab", "up", "--scenario", "no-such-scenario"]])
def test_lab_cli_bad_arguments_exit_2_with_one_line(args: list[str], tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "consolidator.cli.main", *args, "--dir", str(tmp_path)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "lab.json").exists()


def _queue(done: int, queued: int, backlog_s: float, delay_sum_s: float, hist: dict[int, int]) -> GuestQueueView:
    return GuestQueueView(tasks=done + queued, done=done, queued=queued, dropped=0, busy_s=0.02 * done,
                          backlog_s=backlog_s, delay_sum_s=delay_sum_s, delay_max_s=max(hist) * 0.01,
                          delay_hist=hist, uptime_s=1.0)


def test_guest_queues_beside_the_simulators_backlog() -> None:
    """The run's delays are the differences from t = 0 (the warm-up's last reading); the peak backlog and
    when it drained come from the per-tick readings; the simulator's side from its run record."""
    sc = scale_scenario(load_scenario("simple"), LabScale(host_caps=(("pm1", 0.6),)))
    assert sc.hosts[1].cores == 0.6 and sc.hosts[1].power.full_load_cores == 0.6  # capacity = saturation
    assert LabScale(host_caps=(("pm1", 0.6),)).cpu_caps() == {"pm1": pytest.approx(0.3)}  # x cpu_quota 0.5
    guests = GuestQueues(sc)

    def polled(queue: GuestQueueView) -> dict[str, PolledStats]:
        vm = SimpleNamespace(name="vm0", guest_queue=queue)
        return {"pm1": PolledStats(None, (), SimpleNamespace(vms=[vm]))}  # type: ignore[arg-type]

    guests.warm(polled(_queue(100, 0, 0.0, 1.0, {0: 100})))
    for k, (backlog, done) in enumerate([(0.5, 110), (2.0, 120), (1.0, 160), (0.01, 200)]):
        guests.tick(k * 0.25, polled(_queue(done, 5, backlog, 1.0 + (done - 100) * 0.5, {0: 100, 12: done - 100})))
    delays = guests.delays()
    assert delays["tasks_done"] == 100 and delays["mean_s"] == pytest.approx(0.5)
    assert delays["p95_s"] == pytest.approx(delay_bin_upper_s(12))  # every task of the run in bin 12
    sim = simulate(sc, "paper", MigrationMethod.POSTCOPY, policy_args={"hold_s": 5.0})
    c = compare_backlog(sim, guests, 0.25)
    vm0 = c["vms"][0]
    assert vm0["live"] == {"peak_core_s": 2.0, "peak_t_s": 0.25, "drained_t_s": 0.75, "end_core_s": 0.01,
                           "served_core_s": pytest.approx(2.0), "backlog_t0_core_s": 0.0}  # 100 tasks x 0.02
    assert vm0["sim"]["peak_core_s"] > 1.0  # capped at 0.6, VM0 wants 0.8 for 18.75 s
    assert c["delay"]["sim"]["mean_s"] == sim.summary["delay_mean_s"]
    text = "\n".join(backlog_markdown(c))
    assert "| vm0 | " in text and "100 tasks" in text


def test_lab_demand_counts_the_guests_waiting_work_as_the_simulator_does() -> None:
    """A VM's demand in a live run is what it ran plus the work waiting in its guest's queue (≤ vCPUs), as
    the simulator's backlog demand; so work that waited counts as unserved even when the VM caught up
    later (a demand taken from the scheduled load would cancel it out over the run)."""
    sc = scale_scenario(load_scenario("simple"), LabScale())
    dt = sc.tick_s
    rec = LabRecorder(sc, MigrationMethod.POSTCOPY, {"pm0": PowerState.ON, "pm1": PowerState.ON})
    waiting = [0.0, 0.1, 0.05, 0.0]  # vm0's guest backlog at each tick end, core·s
    ran = [0.5, 0.5, 0.9, 0.7]  # vm0's measured load: it catches up in ticks 2 and 3
    for k, (backlog, load) in enumerate(zip(waiting, ran, strict=True)):
        t = k * dt
        samples = tuple(VmSample(t, f"vm{j}", "pm0", load if j == 0 else 0.0) for j in range(5))
        raw = SimpleNamespace(vms=[SimpleNamespace(name=f"vm{j}", guest_queue=_queue(
            10 * k, 1, backlog if j == 0 else 0.0, 0.0, {0: 10 * k})) for j in range(5)])
        polled = {"pm0": PolledStats(HostSample(t, "pm0", load), samples, raw)}  # type: ignore[arg-type]
        rec.tick(t, polled, np.zeros(5, dtype=int), np.zeros(5))
    result = rec.result("paper", {"params": {"lab": True}})
    assert result.record.vm_demand is not None
    assert list(result.record.vm_demand[:, 0]) == pytest.approx([0.5, 0.5 + 0.1 / dt, 1.0, 0.7])  # ≤ 1 vCPU
    assert list(result.record.vm_demand[:, 1]) == [0.0] * 4  # nothing waiting: demand = what it ran
    assert result.summary["unserved_core_s"] == pytest.approx(0.1 + 0.1 * dt)  # min(waiting, (1 − ran) · dt)
    assert result.summary["unserved_core_s"] == result.totals.unserved_core_s
    assert result.summary["active_on_warehouse_vm_s"] >= 0.0 and result.summary["energy_to_complete_ws"] == \
        pytest.approx(result.summary["energy_ws"])
