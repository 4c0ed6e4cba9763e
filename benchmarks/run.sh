#!/usr/bin/env bash
# All benchmarks, one after the other; each prints its figures and the machine it ran on.
#   bash benchmarks/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
for bench in bench_sim bench_planetlab bench_store bench_power bench_qemu bench_libvirt; do
    echo "== $bench"
    python3 "benchmarks/$bench.py"
    echo
done
