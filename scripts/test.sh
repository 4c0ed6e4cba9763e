#!/usr/bin/env bash
# The README's test command: installs what the tests need on a fresh Debian 12 machine (as root),
# then runs the whole suite. Each scripts/setup.d/*.sh installs one area's system packages.
set -euo pipefail
cd "$(dirname "$0")/.."
for step in scripts/setup.d/*.sh; do
    echo "== setup: $step"
    bash "$step"
done
python3 -m pytest "$@"
