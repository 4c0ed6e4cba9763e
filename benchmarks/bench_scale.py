"""Scale of the simulator with the control loop: PlanetLab-derived load on fleets of 1k to 100k hosts.

    python3 benchmarks/bench_scale.py [--hosts 1000,10000,100000] [--vms-per-host 10] [--policy thr-mmt-0.8]
                                      [--tick-s 300] [--duration-s 86400] [--traces DIR] [--day 20110303]

Each size runs in a fresh process (so its peak RSS is its own): a scenario of half HP G4, half G5 hosts
(SPECpower tables, 1000 MIPS as the load unit, one host in five a Warehouse node for the paper's
policy), ``vms-per-host`` VMs per host replaying the day's traces in turn (CloudSim's VM types,
``placement = "spread"``), postcopy migrations, S3; the run is the simulator's whole loop (arrivals,
backlogs, migrations, power, the Load Monitor, the planner, the VM Controller), no samples stored.
Prints one row per size: steps, wall and CPU seconds, peak RSS, migrations, energy, and the load
average. Issue 10's targets: 100,000 hosts / 1,000,000 VMs, one day at 300 s, <= 10 min and <= 8 GB;
10,000 hosts / 50,000 VMs, one hour at 1 s. The machine is shared: note the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

SCENARIO = """
name = "scale"
duration_s = {duration}
tick_s = {tick}
overhead_per_vm_cores = 0.0
[[hosts]]
name = "wh-{{i}}"
role = "warehouse"
count = {wh}
cores = 5.32
core_speed = 2.66
mem_mib = 65536
nic_mb_s = 125
power = {{ table_watts = [93.7, 97.0, 101.0, 105.0, 110.0, 116.0, 121.0, 125.0, 129.0, 133.0, 135.0] }}
[[hosts]]
name = "g4-{{i}}"
role = "server"
count = {g4}
cores = 3.72
core_speed = 1.86
mem_mib = 65536
nic_mb_s = 125
power = {{ table_watts = [86.0, 89.4, 92.6, 96.0, 99.5, 102.0, 106.0, 108.0, 112.0, 114.0, 117.0] }}
[[hosts]]
name = "g5-{{i}}"
role = "server"
count = {g5}
cores = 5.32
core_speed = 2.66
mem_mib = 65536
nic_mb_s = 125
power = {{ table_watts = [93.7, 97.0, 101.0, 105.0, 110.0, 116.0, 121.0, 125.0, 129.0, 133.0, 135.0] }}
[migration]
bandwidth_mb_s = 62.5
[guests]
task_mean_s = 0
[workload]
kind = "planetlab"
day = "{day}"
traces = "{traces}"
vms = {vms}
placement = "spread"
"""


def child(args: argparse.Namespace, hosts: int) -> None:
    from consolidator.domain.types import MigrationMethod
    from consolidator.policies.registry import make_policy
    from consolidator.sim.engine import Simulation
    from consolidator.sim.scenario import parse_scenario

    wh = max(1, hosts // 5)
    text = SCENARIO.format(duration=args.duration_s, tick=args.tick_s, wh=wh, g4=(hosts - wh) // 2,
                           g5=hosts - wh - (hosts - wh) // 2, day=args.day, traces=args.traces,
                           vms=hosts * args.vms_per_host)
    wall, cpu = time.perf_counter(), time.process_time()
    sc = parse_scenario(text.encode(), f"scale-{hosts}")
    build_s = time.perf_counter() - wall
    literature = {"interval_s": args.interval_s, "underload_tries": args.underload_tries}
    policy = make_policy(args.policy, **(literature if "-" in args.policy else {}))
    result = Simulation(sc, policy, MigrationMethod.POSTCOPY, record_vms=False).run()
    s = result.summary
    print(json.dumps({
        "hosts": hosts, "vms": len(sc.vms), "steps": int(round(s.get("complete_s", sc.duration_s) / sc.tick_s)),
        "build_s": build_s, "wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "migrations": len(s["migrations"]) if isinstance(s.get("migrations"), list) else s.get("migrations"),
        "energy_kwh": s["energy_ws"] / 3.6e6,
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="1000,10000,100000")
    parser.add_argument("--vms-per-host", type=int, default=10)
    parser.add_argument("--policy", default="thr-mmt-0.8")
    parser.add_argument("--interval-s", type=float, default=300.0, help="planning interval of a literature policy")
    parser.add_argument("--underload-tries", type=int, default=100,
                        help="literature policy: hosts its underload step tries per round (0: all, CloudSim)")
    parser.add_argument("--tick-s", type=float, default=300.0)
    parser.add_argument("--duration-s", type=float, default=86400.0)
    parser.add_argument("--day", default="20110303")
    parser.add_argument("--traces", default=os.environ.get("CONSOLIDATOR_PLANETLAB") or str(
        Path(__file__).resolve().parents[2] / "shared" / "data" / "planetlab"))
    parser.add_argument("--timeout-s", type=float, default=3600.0)
    parser.add_argument("--child", type=int)
    args = parser.parse_args()
    if args.child:
        child(args, args.child)
        return
    print(f"policy {args.policy}, {args.vms_per_host} VMs per host, tick {args.tick_s:g} s, "
          f"{args.duration_s:g} s of load; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'hosts':>8} {'VMs':>9} {'steps':>6} {'build s':>8} {'wall s':>8} {'CPU s':>8} {'peak MB':>8} "
          f"{'migr.':>8} {'kWh':>10}  load")
    for hosts in (int(h) for h in args.hosts.split(",")):
        argv = [sys.executable, __file__, "--child", str(hosts)] + [
            f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k not in ("child", "hosts")]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=args.timeout_s, check=False)
        except subprocess.TimeoutExpired:
            print(f"{hosts:>8} did not finish within {args.timeout_s:g} s")
            continue
        if proc.returncode != 0:
            print(f"{hosts:>8} failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else '?'}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{r['hosts']:>8} {r['vms']:>9} {r['steps']:>6} {r['build_s']:8.1f} {r['wall_s']:8.1f} "
              f"{r['cpu_s']:8.1f} {r['peak_rss_mb']:8.0f} {r['migrations']:>8} {r['energy_kwh']:10.1f}  "
              f"{os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
