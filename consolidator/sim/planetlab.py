"""PlanetLab days as a simulator workload (scenario ``[workload] kind = "planetlab"``).

Beloglazov & Buyya's traces under our models: one VM per trace file (name order), CloudSim's VM types
by block, the trace's CPU share times the type's speed as the VM's load at each 300 s step, the
scenario's hosts (e.g. HP ProLiant G4/G5 with their SPECpower tables, ``scenarios/planetlab-20110303``),
our migration models and S3. Initial placement is CloudSim's PABFD at VM creation (the literature
decision code), or ``spread`` (VM i on host i mod H) where that would take too long (fleets of 10^5
hosts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from consolidator.domain.errors import UserError
from consolidator.domain.types import HostSpec, VmSpec
from consolidator.models.power import load_points
from consolidator.traces.load import Trace, day_folder, default_traces_root, load_csv, load_planetlab_day


@dataclass(frozen=True)
class TraceTable:
    """What ``TraceLoads`` replays: per-trace CPU shares, the row each VM follows, each VM's full load."""

    fraction: np.ndarray  # (traces, steps), 0..1
    interval_s: float
    row: np.ndarray  # (vms,)
    size: np.ndarray  # (vms,)


def load_trace(day: str, traces: str | None, source: str) -> Trace:
    try:
        if day.lower().endswith(".csv"):
            return load_csv(Path(day))
        root = Path(traces) if traces else default_traces_root()
        return load_planetlab_day(day_folder(day, root))
    except UserError as exc:
        raise UserError(exc.message, source=source, field="workload.day") from None


def build(w: Any, hosts: list[HostSpec], source: str) -> tuple[list[VmSpec], dict[str, str], TraceTable]:
    """VMs, their initial hosts and their loads from a ``PlanetLabIn`` section."""
    trace = load_trace(w.day, w.traces, source)
    n_files = len(trace.vm_names)
    n = w.vms or n_files
    kinds = np.arange(n) // math.ceil(n / len(w.vm_types))
    speed = np.array([t.vcpu_speed for t in w.vm_types])[kinds]
    mem = np.array([t.mem_mib for t in w.vm_types])[kinds]
    names = [trace.vm_names[i % n_files] + ("" if i < n_files else f"~{i // n_files}") for i in range(n)]
    vms = [VmSpec(name, 1, int(mem[i]), None, w.dirty_mb_s_at_full * 1e6, float(speed[i])) for i, name in
           enumerate(names)]
    if max(speed) > max(h.cores for h in hosts) or max(mem) > max(h.mem_mib for h in hosts):
        raise UserError("a VM type is larger than every host", source=source, field="workload.vm_types")
    where = _pabfd(hosts, speed, mem) if w.placement == "pabfd" else np.arange(n) % len(hosts)
    if np.any(where < 0):
        raise UserError(f"{int(np.sum(where < 0))} VMs fit on no host at full load", source=source,
                        field="workload.vms")
    placement = {name: hosts[int(where[i])].name for i, name in enumerate(names)}
    table = TraceTable(trace.cpu_pct / 100.0, float(w.interval_s), np.arange(n) % n_files, speed)
    return vms, placement, table


def _pabfd(hosts: list[HostSpec], speed: np.ndarray, mem: np.ndarray) -> np.ndarray:
    """CloudSim's placement at VM creation: full load requested, least power increase, lowest id."""
    from consolidator.policies.literature.arrays import new_hosts, new_vms
    from consolidator.policies.literature.codes import THR
    from consolidator.policies.literature.placement import initial_placement

    table = np.array([load_points(h.power) for h in hosts], dtype=np.float64)
    pe = np.array([h.core_speed for h in hosts], dtype=np.float64)
    cores = np.array([h.cores for h in hosts], dtype=np.float64)
    hs = new_hosts(pe, table, len(speed), 0, total=cores)
    vs = new_vms(speed.astype(np.float64), mem.astype(np.float64), np.zeros((len(speed), 1)))
    host_mem = np.array([h.mem_mib for h in hosts], dtype=np.float64)
    initial_placement(hs, vs, THR, 1.0, host_mem, np.full(len(hosts), np.inf), 0.0, False)
    return np.asarray(vs.host)
