"""Sample-ingestion benchmark of the run store (``consolidator bench store``, benchmarks/bench_store.py).

Writes ``seconds`` ticks of ``hosts`` host samples and ``vms`` VM samples, flushing once per tick as
the Load Monitor does at a 1 s period, and reports samples stored per second of wall time
(sample objects are built beforehand: the monitor has them already).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from consolidator.domain.samples import HostSample, VmSample
from consolidator.storage import open_store
from consolidator.storage.pgtemp import PostgresUnavailable, temp_postgres


def _ticks(seconds: int, hosts: int, vms: int) -> list[tuple[list[HostSample], list[VmSample]]]:
    out = []
    for t in range(seconds):
        hs = [HostSample(float(t), f"pm{h}", 0.5 + h % 7 / 10, 1024.0, 60.0) for h in range(hosts)]
        vs = [VmSample(float(t), f"vm{v}", f"pm{v % hosts}", (v % 10) / 10, 1e6 * (v % 5)) for v in range(vms)]
        out.append((hs, vs))
    return out


def ingest_rate(url: str, seconds: int = 200, hosts: int = 100, vms: int = 1000) -> tuple[float, float]:
    """(samples per wall second, per CPU second of this process) into ``url``, flushing every tick.

    On a shared machine the wall rate falls with other load; the CPU rate shows what the store
    itself costs (for PostgreSQL it leaves out the server's own CPU).
    """
    ticks = _ticks(seconds, hosts, vms)
    with open_store(url) as store:
        cpu, start = time.process_time(), time.perf_counter()
        for hs, vs in ticks:
            store.write_host_samples(hs)
            store.write_vm_samples(vs)
            store.flush()
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    n = seconds * (hosts + vms)
    return n / elapsed, n / max(cpu, 1e-9)


def bench_store(seconds: int = 200, postgres_url: str | None = None) -> dict[str, float | None]:
    """SQLite (temp file) and PostgreSQL (``postgres_url``, or a private temp server) ingestion rates."""
    with tempfile.TemporaryDirectory(prefix="consolidator-bench-") as tmp:
        sqlite_rate, sqlite_cpu_rate = ingest_rate(str(Path(tmp) / "bench.sqlite"), seconds)
    pg: tuple[float, float] | tuple[None, None]
    if postgres_url is not None:
        pg = ingest_rate(postgres_url, seconds)
    else:
        try:
            with temp_postgres() as server:
                pg = ingest_rate(server.url, seconds)
        except PostgresUnavailable:
            pg = (None, None)
    return {"sqlite_samples_per_s": sqlite_rate, "postgres_samples_per_s": pg[0],
            "sqlite_samples_per_cpu_s": sqlite_cpu_rate, "postgres_client_samples_per_cpu_s": pg[1],
            "samples_per_flush": 1100.0, "seconds": float(seconds)}
