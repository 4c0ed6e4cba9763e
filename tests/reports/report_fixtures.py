"""Hand-made run folders for the report tests.

These are NOT simulator output: a tiny scripted world (fixed VM loads, scripted migrations and host
power states, the paper's linear power model) writes the files of docs/run-format.md so the report can
be tested without the simulator. Tests on the simulator's real output live in test_real_runs.py.
Also ``check_png``, the shared check that a figure is a real, readable image.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

HOSTS = ("PM0", "PM1", "PM2", "PM3", "PM4", "PM5")
VMS = ("VM0", "VM1", "VM2", "VM3", "VM4")


@dataclass(frozen=True)
class Move:
    vm: str
    src: str
    dst: str
    start_s: float
    end_s: float
    outcome: str = "completed"


def vm_load(vm: str, t: float) -> float:
    """The simple scenario's loads (paper Fig. 5), in cores."""
    if vm == "VM0":
        return 0.8 if t < 75 else 0.4
    if vm == "VM1" and t >= 175:
        return 0.3
    return 0.0005


def _script(variant: str, seed: int) -> tuple[list[Move], dict[str, list[tuple[float, str]]], dict[str, str]]:
    """Scripted migrations, host power timelines and initial placement for one variant."""
    slow = variant == "precopy"
    shift = float(seed)  # seeds differ a little so mean ± sd is not zero
    if variant == "none":
        start = {vm: f"PM{i + 1}" for i, vm in enumerate(VMS)}
        power = {h: [(0.0, "on")] for h in HOSTS[1:]}
        power["PM0"] = [(0.0, "suspended")]
        return [], power, start
    start = {vm: "PM0" for vm in VMS}
    if variant == "ideal":
        power = {h: [(0.0, "suspended")] for h in HOSTS[1:]}
        power["PM1"] = [(0.0, "on"), (75.0, "suspended"), (175.0, "on")]
        moves = [
            Move("VM0", "PM0", "PM1", 0.0, 0.0),
            Move("VM0", "PM1", "PM0", 75.0, 75.0),
            Move("VM0", "PM0", "PM1", 175.0, 175.0),
        ]
        return moves, {"PM0": [(0.0, "on")], **power}, start
    back_end = (160.0 if slow else 100.0) + shift
    out_end = (250.0 if slow else 195.0) + shift
    moves = [
        Move("VM0", "PM0", "PM1", 5.0, 15.0 if not slow else 40.0),
        Move("VM0", "PM1", "PM0", 85.0, back_end),
        Move("VM0", "PM0", "PM1", 185.0, out_end),
    ]
    pm1 = [
        (0.0, "on"),
        (back_end, "suspending"),
        (back_end + 5, "suspended"),
        (176.0, "resuming"),
        (181.0, "on"),
    ]
    power = {h: [(0.0, "suspended")] for h in HOSTS[2:]}
    return moves, {"PM0": [(0.0, "on")], "PM1": pm1, **power}, start


def _state_at(timeline: list[tuple[float, str]], t: float) -> str:
    state = timeline[0][1]
    for since, name in timeline:
        if t >= since:
            state = name
    return state


def _host_of(vm: str, t: float, start: dict[str, str], moves: list[Move]) -> tuple[str, bool]:
    host, migrating = start[vm], False
    for move in moves:
        if move.vm == vm and t >= move.start_s:
            if t >= move.end_s:
                host = move.dst if move.outcome == "completed" else move.src
            else:
                migrating = True
    return host, migrating


def write_run(folder: Path, scenario: str, variant: str, seed: int, duration_s: int = 300) -> Path:
    """Write one hand-made run folder (all files of docs/run-format.md except run.sqlite)."""
    moves, power, start = _script(variant, seed)
    folder.mkdir(parents=True, exist_ok=True)
    host_rows, vm_rows, energy = [], [], dict.fromkeys(HOSTS, 0.0)
    for t in range(duration_s):
        demand = dict.fromkeys(HOSTS, 0.0)
        busy = dict.fromkeys(HOSTS, 0.0)
        for vm in VMS:
            host, migrating = _host_of(vm, t, start, moves)
            load = vm_load(vm, t)
            demand[host] += load
            vm_rows.append([t, vm, host, load, load, load, int(migrating)])
        for move in moves:
            if move.start_s <= t < move.end_s:
                busy[move.src] += 3.0 + (20.0 if variant == "precopy" else 0.0)
                busy[move.dst] += 3.0
        for host in HOSTS:
            state = _state_at(power[host], t)
            load = demand[host] + (0.05 if demand[host] else 0.0)
            watts = {"suspended": 7.0, "on": 53.0 + 47.0 * min(1.0, load) + busy[host]}.get(state, 53.0)
            energy[host] += watts
            n = sum(1 for vm in VMS if _host_of(vm, t, start, moves)[0] == host)
            role = "warehouse" if host == "PM0" else "server"
            host_rows.append([t, host, role, state, load, min(load, 4.0), max(0.0, load - 4.0), watts, n])
    _write_csv(
        folder / "hosts.csv",
        ["t_s", "host", "role", "state", "cpu_demand", "cpu_served", "cpu_unserved", "watts", "n_vms"],
        host_rows,
    )
    _write_csv(folder / "vms.csv", ["t_s", "vm", "host", "demand", "served", "load_avg", "migrating"], vm_rows)
    _write_csv(
        folder / "migrations.csv",
        ["vm", "src", "dst", "method", "start_s", "end_s", "outcome", "bytes_sent", "downtime_s", "rounds"],
        [[m.vm, m.src, m.dst, variant, m.start_s, m.end_s, m.outcome, 1e9, 0.1, 1] for m in moves],
    )
    events = [[since, h, state] for h in HOSTS for since, state in power[h][1:]]
    _write_csv(folder / "power_events.csv", ["t_s", "host", "state"], sorted(events))
    summary = {
        "scenario": scenario,
        "policy": "paper" if variant in ("postcopy", "precopy") else variant,
        "migration": variant if variant in ("postcopy", "precopy") else "instant",
        "seed": seed,
        "duration_s": duration_s,
        "tick_s": 1.0,
        "energy_ws": sum(energy.values()),
        "energy_ws_by_host": energy,
        "demand_core_s": 100.0,
        "unserved_core_s": 0.0,
        "unserved_cpu_pct": 0.0,
        "overload_s": 0.0,
        "migrations": len(moves),
        "migrations_cancelled": 0,
        "suspends": 1,
        "wakes": 1,
        "params": {"bandwidth_bytes_per_s": 120e6, "downtime_limit_s": 0.3},
    }
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    return folder


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


PAPER = {
    "none": {"energy_ws": 390175, "saved_pct": 0.0},
    "ideal": {"energy_ws": 294033, "saved_pct": 24.6},
    "postcopy": {"energy_ws": 344204, "saved_pct": 11.8},
    "precopy": {"energy_ws": 369877, "saved_pct": 5.2},
}


def write_experiment(out: Path, scenario: str, seeds: tuple[int, ...], duration_s: int = 300) -> Path:
    """A hand-made experiment folder: every variant for every seed, plus a table.json from them."""
    energies: dict[str, list[float]] = {}
    for variant in ("none", "ideal", "postcopy", "precopy"):
        for seed in seeds:
            folder = write_run(out / scenario / variant / f"seed-{seed}", scenario, variant, seed, duration_s)
            energies.setdefault(variant, []).append(json.loads((folder / "summary.json").read_text())["energy_ws"])
    mean = {k: sum(v) / len(v) for k, v in energies.items()}
    rows = {}
    for name, values in energies.items():
        sd = (sum((x - mean[name]) ** 2 for x in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
        saved = 100 * (mean["none"] - mean[name]) / mean["none"]
        gap = 100 * (mean["none"] - mean[name]) / (mean["none"] - mean["ideal"])
        rows[name] = {
            "energy_ws": mean[name],
            "energy_ws_sd": sd,
            "saved_pct": saved,
            "gap_removed_pct": gap,
            "unserved_cpu_pct": 0.0,
            "migrations": 3,
        }
    table = {
        "scenario": scenario,
        "seeds": list(seeds),
        "rows": rows,
        "paper": PAPER,
        "notes": ["hand-made fixture, not simulator output"],
    }
    (out / scenario / "table.json").write_text(json.dumps(table, indent=2))
    return out


def write_wide_run(folder: Path, hosts: int = 30, vms: int = 40, duration_s: int = 60) -> Path:
    """A hand-made run with many hosts and VMs (VM i on host i % hosts, load by a fixed rule), to check
    that figures stay readable at a size the paper never drew."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"H{h}" for h in range(hosts)]
    host_rows, vm_rows = [], []
    for t in range(duration_s):
        load = dict.fromkeys(names, 0.0)
        for v in range(vms):
            host = names[v % hosts]
            cpu = 0.1 + 0.8 * ((v * 7 + t) % 10) / 10
            load[host] += cpu
            vm_rows.append([t, f"V{v}", host, cpu, cpu, cpu, 0])
        for h, host in enumerate(names):
            state = "on" if load[host] else "suspended"
            watts = 53 + 47 * min(1.0, load[host]) if load[host] else 7.0
            host_rows.append(
                [
                    t,
                    host,
                    "warehouse" if h == 0 else "server",
                    state,
                    load[host],
                    load[host],
                    0,
                    watts,
                    sum(1 for v in range(vms) if v % hosts == h),
                ]
            )
    _write_csv(
        folder / "hosts.csv",
        ["t_s", "host", "role", "state", "cpu_demand", "cpu_served", "cpu_unserved", "watts", "n_vms"],
        host_rows,
    )
    _write_csv(folder / "vms.csv", ["t_s", "vm", "host", "demand", "served", "load_avg", "migrating"], vm_rows)
    _write_csv(
        folder / "migrations.csv",
        ["vm", "src", "dst", "method", "start_s", "end_s", "outcome"],
        [["V1", "H1", "H0", "postcopy", 10, 20, "completed"]],
    )
    _write_csv(folder / "power_events.csv", ["t_s", "host", "state"], [])
    summary = {
        "scenario": "wide",
        "policy": "paper",
        "migration": "postcopy",
        "seed": 0,
        "duration_s": duration_s,
        "energy_ws": sum(r[7] for r in host_rows),
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def check_png(path: Path, min_size: tuple[int, int] = (600, 300)) -> tuple[int, int]:
    """A valid PNG, at least ``min_size`` and at most 2,600 px a side, and not a blank canvas."""
    assert path.exists() and path.stat().st_size > 5_000
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert min_size[0] <= width <= 2600 and min_size[1] <= height <= 2600, (width, height)
    # A blank or nearly blank canvas has almost no dark pixels; a figure with axes, text and data has many.
    assert (pixels < 128).mean() > 0.01
    return width, height
