"""The same 256 MiB test guest moved by precopy, postcopy and hybrid through libvirt and through our
agent's QEMU driver, over the same kind of 120 MB/s tc-shaped link (QEMU 10, TCG here; needs root).

    flock /tmp/bench.lock python3 benchmarks/bench_libvirt.py [--dirty 80] [--json]

libvirt: two private libvirtd (experiments.libvirt_testbed), the guest with a disk on the shared folder and
a virtio NIC, moved by LibvirtEngine (what the manager runs). Agent: the agent's QemuDriver, through
the calibration grid's runner (experiments.calibrate). Per move: wall time (libvirt: the migrate call,
destination start included; agent: migrate command to completion, destination prepared before),
libvirt's own job time, downtime (source pause -> destination resume, from events; libvirt's own
figure beside it), bytes sent, the guest's bad pages after the move. ``preempt``: QEMU's
postcopy-preempt channel — libvirt turns it on by itself for every postcopy move when both QEMU offer
it (no API flag, no way to turn it off), the agent runs postcopy and hybrid with it off and on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import asdict, dataclass
from typing import Any

from consolidator.domain.types import MigrationMethod
from consolidator.experiments.calibrate import CALIBRATION_LOAD, GridSpec, run_grid
from consolidator.experiments.libvirt_testbed import Testbed
from consolidator.protocol.migration import MigrationOptions
from consolidator.protocol.schemas import VmConfig

MODES = (MigrationMethod.PRECOPY, MigrationMethod.POSTCOPY, MigrationMethod.HYBRID)
OPTIONS = MigrationOptions(max_bandwidth_bytes_per_s=120e6, downtime_limit_s=0.3, timeout_s=20.0)


@dataclass(frozen=True, slots=True)
class Row:
    engine: str
    mode: str
    preempt: str  # "on", "off", "-" (precopy)
    outcome: str
    wall_s: float | None
    job_s: float | None
    downtime_s: float | None
    libvirt_downtime_s: float | None
    mb_sent: float | None
    bad_pages: int | None
    note: str = ""


async def _move(bed: Testbed, engines: dict[str, Any], src: str, dst: str, mode: MigrationMethod,
                settle_s: float) -> Row:
    await asyncio.sleep(settle_s)
    after = (await engines[src].events(0)).next_seq - 1
    await engines[src].migrate_to("vm0", engines[dst], mode, OPTIONS)
    done = None
    while done is None:
        batch = await engines[src].events(after, timeout_s=1.0)
        for e in batch.events:
            after = e.seq
            if e.kind == "migration_finished":
                done = e
    marks = await engines[dst].incoming_marks("vm0")
    result = engines[src].results.get("vm0")
    moved = done.outcome.value == "completed"
    home = dst if moved else src
    bad = await asyncio.to_thread(bed.check_pages, home, "vm0")
    down = marks.resume - done.stop_wall_s if moved and marks.resume and done.stop_wall_s else None
    job_ms = result.stats.get("time_elapsed") if result else None
    preempt = "-" if mode is MigrationMethod.PRECOPY else "on"  # libvirt's choice (docs/libvirt.md)
    return Row("libvirt", mode.value, preempt, done.outcome.value,
               round(done.t_wall_s - (done.start_wall_s or done.t_wall_s), 3),
               None if job_ms is None else job_ms / 1000, None if down is None else round(down, 4),
               result.libvirt_downtime_s if result else None, round(done.bytes_sent / 1e6, 1), bad)


async def _libvirt_rows(bed: Testbed, dirty: float, settle_s: float) -> list[Row]:
    rows: list[Row] = []
    here, there = bed.names
    for mode in MODES:
        engines = bed.engines()
        try:
            row = await _move(bed, engines, here, there, mode, settle_s)
        finally:
            for e in engines.values():
                await e.close()
        rows.append(row)
        if row.outcome == "completed":
            here, there = there, here
        print(json.dumps(asdict(row)), flush=True)
    rows.append(Row("libvirt", "postcopy", "off", "unavailable", None, None, None, None, None, None,
                    "libvirt has no switch for postcopy-preempt"))
    return rows


def libvirt_rows(dirty: float, settle_s: float) -> list[Row]:
    with Testbed(("A", "B"), tag=str(60000 + os.getpid() % 9000)) as bed:
        bed.create_guest("A", VmConfig("vm0", 256, load=CALIBRATION_LOAD, dirty_mib_s=dirty))  # as the grid's guest
        return asyncio.run(_libvirt_rows(bed, dirty, settle_s))


def agent_rows(dirty: float, settle_s: float) -> list[Row]:
    spec = GridSpec(mem_mib=(256,), dirty_mib_s=(dirty,), modes=MODES, timeout_s=OPTIONS.timeout_s,
                    settle_s=settle_s)
    return [Row("agent", r.mode, "-" if r.mode == "precopy" else ("on" if r.preempt else "off"), r.outcome,
                r.real_s, None, r.downtime_s, None, round(r.bytes_sent / 1e6, 1), r.bad_pages)
            for r in run_grid(spec)]


def table(rows: list[Row]) -> str:
    def f(v: Any, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    lines = ["| engine | mode | preempt | outcome | wall s | libvirt job s | downtime s | libvirt downtime s "
             "| MB sent | bad pages | note |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.engine} | {r.mode} | {r.preempt} | {r.outcome} | {f(r.wall_s, '.2f')} "
                     f"| {f(r.job_s, '.2f')} "
                     f"| {f(r.downtime_s, '.3f')} | {f(r.libvirt_downtime_s, '.3f')} | {f(r.mb_sent, '.0f')} "
                     f"| {f(r.bad_pages, 'd')} | {r.note} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dirty", type=float, default=80.0, help="guest page writes, MiB/s")
    ap.add_argument("--settle-s", type=float, default=2.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    load_before = os.getloadavg()
    t0 = time.monotonic()
    rows = libvirt_rows(args.dirty, args.settle_s) + agent_rows(args.dirty, args.settle_s)
    if args.json:
        print(json.dumps([asdict(r) for r in rows]))
    print(table(rows))
    print(f"guest 256 MiB writing {args.dirty:g} MiB/s; link 120 MB/s; load average before "
          f"{load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}; {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
