#!/usr/bin/env bash
# Storage and power test peers (issue 4): PostgreSQL server (private clusters started by the tests),
# OpenIPMI's ipmi_sim + ipmitool + sdrcomp (IPMI BMC on loopback), gcc and libopenipmi-dev (our ipmi_sim
# power plugin). sushy-emulator, pyghmi and wakeonlan come from PyPI via pyproject.toml.
set -euo pipefail
need=()
for pkg in postgresql openipmi ipmitool libopenipmi-dev gcc; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need+=("$pkg")
done
if ((${#need[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's postgresql package starts a system cluster; our tests start private ones and need none.
