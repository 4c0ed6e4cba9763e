"""Host CPU and memory from /proc (the machine the agent runs on)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class CpuTimes:
    busy_ticks: int
    total_ticks: int


def read_cpu_times(proc: Path = PROC) -> CpuTimes:
    """The aggregate ``cpu`` line of /proc/stat: busy = everything but idle and iowait."""
    fields = (proc / "stat").read_text().splitlines()[0].split()
    values = [int(v) for v in fields[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    # guest time is already counted in user/nice (kernel docs, proc(5)); leave it out of the total
    total = sum(values[:8])
    return CpuTimes(busy_ticks=total - idle, total_ticks=total)


def cpu_cores_busy(before: CpuTimes, after: CpuTimes, cores: int | None = None) -> float:
    """Cores busy between two readings (1.0 = one core fully busy)."""
    total = after.total_ticks - before.total_ticks
    if total <= 0:
        return 0.0
    n = cores if cores is not None else (os.cpu_count() or 1)
    return n * (after.busy_ticks - before.busy_ticks) / total


def read_mem_mib(proc: Path = PROC) -> tuple[float, float]:
    """(total, used) MiB from /proc/meminfo; used = MemTotal - MemAvailable."""
    info: dict[str, int] = {}
    for line in (proc / "meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            info[key] = int(parts[0])
    total_kib = info.get("MemTotal", 0)
    avail_kib = info.get("MemAvailable", info.get("MemFree", 0))
    return total_kib / 1024, (total_kib - avail_kib) / 1024
