"""Run-store ingestion benchmark (issue 4 target: >= 100,000 samples/s into SQLite, batched).

    python3 benchmarks/bench_store.py [--seconds 200] [--postgres-url URL] [--json]

Writes ticks of 100 host + 1,000 VM samples, one flush (one transaction) per tick as the Load
Monitor does at a 1 s period, into a fresh SQLite file and into PostgreSQL (a private temporary
server from Debian's postgresql package unless --postgres-url is given). Same code as
`consolidator bench store`.
"""

from __future__ import annotations

import argparse
import json

from consolidator.storage.bench import bench_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=200)
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = bench_store(args.seconds, args.postgres_url)
    if args.json:
        print(json.dumps(figures))
        return
    print(f"{args.seconds} ticks x 1,100 samples, one transaction per tick")
    for key in ("sqlite_samples_per_s", "postgres_samples_per_s", "sqlite_samples_per_cpu_s",
                "postgres_client_samples_per_cpu_s"):
        value = figures[key]
        print(f"  {key}: {'n/a (no PostgreSQL server)' if value is None else f'{value:,.0f}'}")
    print("  target: sqlite >= 100,000 samples/s")


if __name__ == "__main__":
    main()
