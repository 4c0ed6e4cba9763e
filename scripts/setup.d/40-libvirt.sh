#!/usr/bin/env bash
# libvirt engine (issue 12): libvirt 11 from bookworm-backports (libvirtd and its QEMU driver; QEMU 10
# comes from 20-qemu.sh) and the libvirt-python binding, built by pip against libvirt-dev (the
# pyenv/venv Python of CI cannot use Debian's python3-libvirt). Tests start private libvirtd daemons
# in their own namespaces; the system daemon is not needed and is stopped if the install started it.
# Idempotent and quiet; returns at once when everything is installed.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
BINDING='libvirt-python>=10.0'  # keep in step with pyproject.toml [project.optional-dependencies] libvirt

libvirt_major() { libvirtd --version 2>/dev/null | sed -n 's/^libvirtd (libvirt) \([0-9]*\).*/\1/p'; }
binding_ok() { python3 -c 'import libvirt' 2>/dev/null; }

major="$(libvirt_major || true)"
if [[ -n "$major" && "$major" -ge 10 ]] && dpkg-query -W -f='${Status}' libvirt-dev 2>/dev/null | grep -q "ok installed"; then
    binding_ok || python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "$BINDING"
    exit 0
fi

# 20-qemu.sh added the bookworm-backports suite (same mirror); libvirt 11 comes from there
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends -t bookworm-backports \
    libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients libvirt-dev pkg-config gcc >/dev/null
# without systemd the package's init script may have started the system daemon: tests use their own
if command -v service >/dev/null 2>&1; then
    service libvirtd stop >/dev/null 2>&1 || true
fi
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "$BINDING"
libvirtd --version
