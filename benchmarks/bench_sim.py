"""Simulator benchmarks (issue 2): prints wall times against the targets.

    python3 benchmarks/bench_sim.py [--json]

1. the complex scenario, one seed, postcopy (target ≤ 1 s);
2. 1,000 hosts / 5,000 VMs for one simulated hour at 1 s ticks with the `paper` policy (≤ 10 s);
3. one planner round (`paper`) at 10,000 hosts / 100,000 VMs (≤ 100 ms), and the whole control
   tick around it (monitor window, snapshot, plan, controller).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from dataclasses import replace

import numpy as np

from consolidator.control.loop import build_loop
from consolidator.control.ports import NullSink
from consolidator.domain.types import HostSpec, MigrationMethod, PowerProfile, PowerState, Role, VmSpec
from consolidator.policies.paper import PaperPolicy
from consolidator.sim.engine import Simulation
from consolidator.sim.scenario import Scenario, load_scenario
from consolidator.sim.workload import RandomModes


def fleet(n_warehouses: int, n_servers: int, n_vms: int, duration_s: float) -> Scenario:
    """A large cluster: VMs start round-robin on the Warehouse nodes; 10 % of the time a VM is active."""
    base = load_scenario("complex")
    coherent = PowerProfile(full_load_cores=None)  # power saturates where the host stops serving
    hosts = tuple(HostSpec(f"w{i}", Role.WAREHOUSE, 16, 262144, power=coherent) for i in range(n_warehouses)) + tuple(
        HostSpec(f"s{i}", Role.SERVER, 4, 16384, power=coherent) for i in range(n_servers))
    vms = tuple(VmSpec(f"vm{i}") for i in range(n_vms))
    placement = {v.name: f"w{i % n_warehouses}" for i, v in enumerate(vms)}
    return replace(base, name="fleet", duration_s=duration_s, hosts=hosts, vms=vms, placement=placement,
                   schedules=tuple(() for _ in vms), overhead_per_vm_cores=0.002,
                   random_modes=RandomModes(p_active=0.1, switch_s=(300.0, 900.0), active=(0.7, 1.0),
                                            idle=(0.0, 0.02)))


def bench_complex() -> tuple[float, float]:
    """Wall and CPU seconds (CPU time is what a loaded machine distorts least)."""
    sc = load_scenario("complex")
    start, cpu = time.perf_counter(), time.process_time()
    Simulation(sc, PaperPolicy(), MigrationMethod.POSTCOPY, seed=0, record_vms=True).run()
    return time.perf_counter() - start, time.process_time() - cpu


def bench_fleet() -> tuple[float, dict[str, float]]:
    sc = fleet(200, 800, 5000, 3600.0)
    start, cpu = time.perf_counter(), time.process_time()
    result = Simulation(sc, PaperPolicy(), MigrationMethod.POSTCOPY, seed=0, record_vms=False).run()
    wall = time.perf_counter() - start
    s = result.summary
    return wall, {"cpu_s": round(time.process_time() - cpu, 2), "migrations": s["migrations"],
                  "suspends": s["suspends"], "energy_kwh": s["energy_ws"] / 3.6e6,
                  "complete_s": s["complete_s"], "delay_p95_s": s["delay_p95_s"]}


def bench_planner(n_hosts: int = 10_000, n_vms: int = 100_000, rounds: int = 5) -> tuple[float, float]:
    """Median of ``rounds`` planner rounds, and of whole control ticks, on a loaded large cluster."""
    rng = np.random.default_rng(0)
    n_w = n_hosts // 5
    hosts = [HostSpec(f"w{i}", Role.WAREHOUSE, 16, 262144) for i in range(n_w)] + [
        HostSpec(f"s{i}", Role.SERVER, 4, 16384) for i in range(n_hosts - n_w)]
    vms = [VmSpec(f"vm{i}") for i in range(n_vms)]
    placement = {v.name: hosts[i % n_w].name if i % 10 else hosts[n_w + (i // 10) % (n_hosts - n_w)].name
                 for i, v in enumerate(vms)}

    class Port:
        def start_migration(self, *a: object) -> None: ...
        def cancel_migration(self, *a: object) -> None: ...
        def suspend_host(self, *a: object) -> None: ...
        def wake_host(self, *a: object) -> None: ...

    states = {h.name: PowerState.ON for h in hosts}
    loop = build_loop(hosts, vms, placement, PaperPolicy(), Port(), NullSink(), MigrationMethod.POSTCOPY, states)
    host_of = np.array([loop.monitor.host_index[placement[v.name]] for v in vms])
    plan_times, tick_times = [], []
    for k in range(rounds + 10):
        loads = np.where(rng.random(n_vms) < 0.1, rng.uniform(0.7, 1.0, n_vms), rng.uniform(0.0, 0.02, n_vms))
        host_loads = np.bincount(host_of, weights=loads, minlength=n_hosts) + 0.002
        loop.monitor.record_arrays(float(k), host_loads, loads, host_of, store=False)
        if k < 10:
            loop.monitor.close_period(float(k))
            continue
        snap = loop.snapshot(float(k))
        start = time.perf_counter()
        loop.policy.plan(snap)
        plan_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        loop.tick(float(k))
        tick_times.append(time.perf_counter() - start)
    return float(np.median(plan_times)), float(np.median(tick_times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    complex_s, complex_cpu_s = bench_complex()
    fleet_s, fleet_info = bench_fleet()
    plan_s, tick_s = bench_planner()
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "complex_one_seed_s": round(complex_s, 3), "complex_one_seed_cpu_s": round(complex_cpu_s, 3),
        "complex_target_s": 1.0,
        "fleet_1000h_5000vm_1h_s": round(fleet_s, 2), "fleet_target_s": 10.0, **{f"fleet_{k}": v for k, v in
                                                                                 fleet_info.items()},
        "planner_10k_100k_ms": round(plan_s * 1000, 1), "planner_target_ms": 100.0,
        "control_tick_10k_100k_ms": round(tick_s * 1000, 1), "peak_rss_mib": round(rss_mib),
        "load_avg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(f"machine: {figures['machine']}; 1-min load average {load_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after (other work on the machine slows every figure)")
    print(f"complex scenario, 1 seed, postcopy:       {complex_s:8.3f} s   (target ≤ 1 s; CPU {complex_cpu_s:.3f} s)")
    print(f"1,000 hosts / 5,000 VMs, 1 h at 1 s:      {fleet_s:8.2f} s   (target ≤ 10 s; CPU {fleet_info['cpu_s']} s; "
          f"{fleet_info['migrations']} migrations, {fleet_info['suspends']} suspends)")
    print(f"planner round, 10,000 hosts / 100,000 VMs: {plan_s * 1000:7.1f} ms  (target ≤ 100 ms)")
    print(f"whole control tick at that size:           {tick_s * 1000:7.1f} ms")
    print(f"peak RSS: {rss_mib:.0f} MiB")


if __name__ == "__main__":
    main()
