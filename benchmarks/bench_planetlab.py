"""Benchmark of literature mode: one PlanetLab day per policy, wall and CPU time and peak memory.

    python3 benchmarks/bench_planetlab.py [--day 20110303] [--traces DIR] [--policies a,b]

Each run happens in a fresh process (after one warm-up that fills numba's on-disk cache), so the
peak RSS printed is that of a whole ``consolidator planetlab`` run: interpreter, numba, traces, engine.
Targets (issue 5): at least 30x faster than CloudSim's 47-63 s per day (<= 1.5 s) in <= 300 MB.
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

CLOUDSIM_FASTEST_S = 47.0
TARGET_S = CLOUDSIM_FASTEST_S / 30
TARGET_RSS_MB = 300.0
POLICIES = "thr-mmt-0.8,iqr-mmt-1.5,mad-mmt-2.5,lr-mmt-1.2"


def child(day: str, traces: Path, policy: str) -> None:
    """Load the day and run it once; print the run's wall/CPU time and this process's peak RSS."""
    from consolidator.literature.cloudsim import run_cloudsim
    from consolidator.policies.literature.registry import parse_policy
    from consolidator.traces.load import day_folder, load_planetlab_day

    wall, cpu = time.perf_counter(), time.process_time()
    trace = load_planetlab_day(day_folder(day, traces))
    result = run_cloudsim(trace, parse_policy(policy), day)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    warm_wall, warm_cpu = time.perf_counter(), time.process_time()
    run_cloudsim(trace, parse_policy(policy), day)  # again: compiled code already loaded
    warm_wall, warm_cpu = time.perf_counter() - warm_wall, time.process_time() - warm_cpu
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"policy": policy, "wall_s": wall, "cpu_s": cpu, "warm_wall_s": warm_wall,
                      "warm_cpu_s": warm_cpu, "peak_rss_mb": rss_mb, "energy_kwh": result.energy_kwh,
                      "migrations": result.migrations}))


def _spawn(day: str, traces: Path, policy: str) -> dict[str, float]:
    proc = subprocess.run([sys.executable, __file__, "--child", policy, "--day", day, "--traces", str(traces)],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--day", default="20110303")
    parser.add_argument("--traces", type=Path, default=Path(os.environ.get("CONSOLIDATOR_PLANETLAB") or (
        Path(__file__).resolve().parents[2] / "shared" / "data" / "planetlab")))
    parser.add_argument("--policies", default=POLICIES)
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        child(args.day, args.traces, args.child)
        return
    policies = args.policies.split(",")
    started = time.perf_counter()
    _spawn(args.day, args.traces, policies[0])  # warm-up: compile once into the on-disk cache
    print(f"warm-up (compile if the cache was cold): {time.perf_counter() - started:.1f} s")
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs "
          "(wall times suffer when it exceeds the CPU count; CPU times less so)")
    print("first = load the day + first run in a fresh process (loads the compiled engine); "
          "warm = the same run again")
    print(f"{'policy':<14} {'wall s':>7} {'cpu s':>7} {'warm wall':>9} {'warm cpu':>8} {'RSS MB':>7} {'kWh':>8} "
          f"{'migr.':>7}  speed-up (first wall) vs 47-63 s")
    worst_wall, worst_cpu, worst_rss = 0.0, 0.0, 0.0
    for policy in policies:
        r = _spawn(args.day, args.traces, policy)
        worst_wall, worst_rss = max(worst_wall, r["wall_s"]), max(worst_rss, r["peak_rss_mb"])
        worst_cpu = max(worst_cpu, r["cpu_s"])
        print(f"{policy:<14} {r['wall_s']:7.2f} {r['cpu_s']:7.2f} {r['warm_wall_s']:9.2f} {r['warm_cpu_s']:8.2f} "
              f"{r['peak_rss_mb']:7.0f} {r['energy_kwh']:8.2f} {r['migrations']:7d}  "
              f"{47 / r['wall_s']:.0f}-{63 / r['wall_s']:.0f}x")
    def verdict(ok: bool) -> str:
        return "OK" if ok else "MISSED"

    print(f"worst first run: wall {worst_wall:.2f} s [{verdict(worst_wall <= TARGET_S)}], CPU {worst_cpu:.2f} s "
          f"[{verdict(worst_cpu <= TARGET_S)}] (target <= {TARGET_S:.2f} s); peak RSS {worst_rss:.0f} MB "
          f"[{verdict(worst_rss <= TARGET_RSS_MB)}] (target <= {TARGET_RSS_MB:.0f} MB)")


if __name__ == "__main__":
    main()
