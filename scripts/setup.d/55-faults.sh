#!/usr/bin/env bash
# Fault-injection run (issue 11, docs/faults.md): iptables drops a lab host's Wake-on-LAN packets
# inside its own network namespace (fault kind drop_wol). Idempotent and quiet.
set -euo pipefail
if dpkg-query -W -f='${Status}' iptables 2>/dev/null | grep -q "ok installed"; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends iptables >/dev/null
