"""How many hosts an instant, clairvoyant packer needs on the complex scenario (docs/models.md, "aware").

Each second, the VMs' loads are packed exactly (all 52 partitions of 5 VMs) onto hosts of capacity 1.0,
with and without the simulator's virtualisation overhead (0.05 cores per VM; a VM whose load plus overhead
exceeds the capacity gets a host of its own), and by First-Fit without overhead (what the `ideal` row
does). Prints host-seconds per run and the share of the none -> First-Fit gap each removes (`none` keeps
5 hosts on). Usage: python scripts/packing_bound.py [SEEDS]
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Iterator

import numpy as np

from consolidator.sim.scenario import load_scenario


def _partitions(items: list[int]) -> Iterator[list[list[int]]]:
    if not items:
        yield []
        return
    for rest in _partitions(items[1:]):
        for i in range(len(rest)):
            yield rest[:i] + [[items[0], *rest[i]]] + rest[i + 1:]
        yield [[items[0]], *rest]


def exact_hosts(loads: np.ndarray, parts: list[list[list[int]]], capacity: float = 1.0) -> int:
    return next(len(p) for p in parts if all(loads[b].sum() <= capacity + 1e-9 for b in p))


def first_fit_hosts(loads: np.ndarray, capacity: float = 1.0) -> int:
    bins: list[float] = []
    for x in loads:
        i = next((i for i, b in enumerate(bins) if b + x <= capacity + 1e-9), None)
        if i is None:
            bins.append(float(x))
        else:
            bins[i] += float(x)
    return len(bins)


def main(seeds: int) -> None:
    sc = load_scenario("complex")
    parts = sorted(_partitions(list(range(len(sc.vms)))), key=len)
    overhead = sc.overhead_per_vm_cores
    host_s: dict[str, list[int]] = {"first-fit, no overhead (ideal)": [], "exact, no overhead": [],
                                    "exact, with overhead": []}
    for seed in range(seeds):
        trace = sc.loads(seed)
        counts = dict.fromkeys(host_s, 0)
        for t in range(int(sc.duration_s)):
            load = trace.at(float(t)).copy()
            counts["first-fit, no overhead (ideal)"] += first_fit_hosts(load)
            counts["exact, no overhead"] += exact_hosts(load, parts)
            counts["exact, with overhead"] += exact_hosts(np.minimum(load + overhead, 1.0), parts)
        for key, value in counts.items():
            host_s[key].append(value)
    none = (len(sc.hosts) - 1) * sc.duration_s
    ideal = statistics.fmean(host_s["first-fit, no overhead (ideal)"])
    for key, values in host_s.items():
        mean = statistics.fmean(values)
        print(f"{key:32s} {mean:7.0f} host-s  {100 * (none - mean) / (none - ideal):5.1f} % of the gap")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
