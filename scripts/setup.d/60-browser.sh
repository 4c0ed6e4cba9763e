#!/usr/bin/env bash
# Dashboard tests (issue 9): Debian's Chromium, driven headless by Playwright's Python package
# (pyproject.toml, dev extra) with executable_path=/usr/bin/chromium; Playwright downloads no browser.
# Idempotent and quiet; returns at once when the browser is installed.
set -euo pipefail
if dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "ok installed"; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
chromium --version
