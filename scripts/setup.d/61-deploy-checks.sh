#!/usr/bin/env bash
# docs/deploy.md is tested (tests/dashboard/test_deploy_guide.py): `systemd-analyze verify` checks its unit
# files, `openssl` runs its certificate commands and `curl` its API calls. Idempotent and quiet; returns at once when installed.
set -euo pipefail
need=()
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v curl >/dev/null 2>&1 || need+=(curl)
if ((${#need[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
