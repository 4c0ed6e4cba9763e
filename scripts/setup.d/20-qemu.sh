#!/usr/bin/env bash
# QEMU area: QEMU 10 from bookworm-backports (7.2's TCG loses dirty pages in precopy, DESIGN §5),
# the tools to build the guest (busybox-static, gcc and the static libc) and to shape links (iproute2).
# Idempotent and quiet; returns at once when everything is already installed.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

qemu_major() {
    qemu-system-x86_64 --version 2>/dev/null | sed -n 's/^QEMU emulator version \([0-9]*\).*/\1/p'
}

need=()
for pkg in busybox-static gcc libc6-dev iproute2; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need+=("$pkg")
done
major="$(qemu_major || true)"
# `consolidator guest build` fetches the cloud kernel with apt-get download: it needs package lists
kernel_known() { apt-cache policy linux-image-cloud-amd64 2>/dev/null | grep -q 'Candidate: [0-9]'; }
if [[ ${#need[@]} -eq 0 && -n "$major" && "$major" -ge 8 ]]; then
    kernel_known || apt-get -o DPkg::Lock::Timeout=600 update -qq
    exit 0
fi

# Backports suite on the same mirror(s) as the existing Debian sources, just another suite.
list=/etc/apt/sources.list.d/consolidator-backports.sources
if [[ ! -f "$list" ]]; then
    uris="$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | grep -m1 -E 'debian/?$' | sed 's/^URIs:[[:space:]]*//')"
    if [[ -z "$uris" ]]; then
        uris="$(grep -h -E '^deb[[:space:]]' /etc/apt/sources.list 2>/dev/null \
            | awk '$3 == "bookworm" {print $2; exit}')"
    fi
    uris="${uris:-http://deb.debian.org/debian}"
    cat >"$list" <<EOF
Types: deb
URIs: $uris
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
fi

apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
if [[ -z "$major" || "$major" -lt 8 ]]; then
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends -t bookworm-backports qemu-system-x86 >/dev/null
fi
qemu-system-x86_64 --version | head -n1
