"""Start-up cost of the command line, as whole processes: ``consolidator --help`` and one PlanetLab day.

    python3 benchmarks/bench_startup.py [--runs 7] [--traces DIR]

Each command runs once to warm the caches (numba's compiled code, parsed traces, the OS page cache),
then ``--runs`` times; the median wall and CPU time of the whole process (interpreter start, imports,
the command's work) are printed with min and max, the load average before and after, and the
targets of issue 10: ``--help`` <= 0.3 s, ``planetlab --day 20110303 --policy thr-mmt-0.8 --profile
cloudsim`` <= 1.0 s. The machine is shared: quote the median, and the load beside it.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGETS_S = {"help": 0.3, "planetlab": 1.0}


def _measure(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall s, CPU s (user + sys of the child) and exit status of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    return wall, cpu, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--traces", type=Path, default=None,
                        help="PlanetLab root (default: $CONSOLIDATOR_PLANETLAB, else ../shared/data/planetlab)")
    args = parser.parse_args()
    exe = shutil.which("consolidator")
    if exe is None:
        sys.exit("consolidator is not on PATH (pip install -e .)")
    env = dict(os.environ)
    if args.traces is not None:
        env["CONSOLIDATOR_PLANETLAB"] = str(args.traces)
    commands = {
        "help": [exe, "--help"],
        "planetlab": [exe, "planetlab", "--day", "20110303", "--policy", "thr-mmt-0.8", "--profile", "cloudsim"],
    }
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; executable {exe}")
    print(f"{'command':<10} {'wall med':>9} {'min':>7} {'max':>7} {'cpu med':>8} {'target':>7}  verdict")
    for name, argv in commands.items():
        _measure(argv, env)  # warm-up: fills numba's cache and the parsed-trace cache
        runs = [_measure(argv, env) for _ in range(args.runs)]
        walls = [r[0] for r in runs]
        cpus = [r[1] for r in runs]
        med = statistics.median(walls)
        ok = "OK" if med <= TARGETS_S[name] else "over"
        print(f"{name:<10} {med:9.3f} {min(walls):7.3f} {max(walls):7.3f} {statistics.median(cpus):8.3f} "
              f"{TARGETS_S[name]:7.2f}  {ok}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
