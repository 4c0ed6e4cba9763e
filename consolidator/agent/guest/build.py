"""Builds the test guest: Debian's cloud kernel + a busybox initramfs running our workload generator.

The result is cached under ``$XDG_CACHE_HOME/consolidator/guest/<hash of inputs>`` and rebuilt only
when an input changes (kernel package version, busybox binary, workload source, init script, gcc).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from consolidator.agent.guest import cpio

log = logging.getLogger(__name__)

KERNEL_META_PACKAGE = "linux-image-cloud-amd64"
BUSYBOX = Path("/bin/busybox")
WORKLOAD_SOURCE = Path(__file__).with_name("workload.c")
BUILD_FORMAT = "1"  # bump when the image layout changes

INIT_SCRIPT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
echo "consolidator guest: $(uname -r), starting workload"
/bin/workload
echo "consolidator guest: workload exited with $?"
poweroff -f
"""


class GuestBuildError(RuntimeError):
    """The guest could not be built; the message names the step and the tool's output."""


@dataclass(frozen=True, slots=True)
class GuestImage:
    """A built guest: boot it with ``-kernel kernel_path -initrd initrd_path``."""

    kernel_path: Path
    initrd_path: Path
    kernel_version: str
    key: str


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "consolidator" / "guest"


def _run(argv: list[str], cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise GuestBuildError(f"{argv[0]} not found (run scripts/setup.d/20-qemu.sh)") from exc
    if done.returncode != 0:
        raise GuestBuildError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return done.stdout


def _kernel_package() -> tuple[str, str]:
    """The concrete kernel package the meta package points at, and its candidate version."""
    deps = _run(["apt-cache", "depends", KERNEL_META_PACKAGE])
    names = [ln.split(":", 1)[1].strip() for ln in deps.splitlines() if ln.strip().startswith("Depends:")]
    names = [n for n in names if n.startswith("linux-image-")]
    if not names:
        raise GuestBuildError(f"apt-cache knows no {KERNEL_META_PACKAGE}; run 'apt-get update' first")
    show = _run(["apt-cache", "show", "--no-all-versions", names[0]])
    version = next((ln.split(":", 1)[1].strip() for ln in show.splitlines() if ln.startswith("Version:")), "")
    return names[0], version


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def input_key(kernel_pkg: str, kernel_version: str) -> str:
    """Hash of everything the image is made from."""
    if not BUSYBOX.exists():
        raise GuestBuildError(f"{BUSYBOX} missing: install busybox-static (scripts/setup.d/20-qemu.sh)")
    gcc = _run(["gcc", "--version"]).splitlines()[0]
    parts = [BUILD_FORMAT, kernel_pkg, kernel_version, _sha256(BUSYBOX.read_bytes()),
             _sha256(WORKLOAD_SOURCE.read_bytes()), _sha256(INIT_SCRIPT.encode()), gcc]
    return _sha256("\n".join(parts).encode())[:20]


def _extract_kernel(work: Path, kernel_pkg: str) -> tuple[Path, str]:
    _run(["apt-get", "download", "-q", kernel_pkg], cwd=work)
    debs = sorted(work.glob(f"{kernel_pkg}_*.deb"))
    if not debs:
        raise GuestBuildError(f"apt-get download {kernel_pkg} produced no .deb")
    root = work / "kernel"
    _run(["dpkg-deb", "-x", str(debs[0]), str(root)])
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise GuestBuildError(f"{debs[0].name} holds no boot/vmlinuz-*")
    return kernels[0], kernels[0].name.removeprefix("vmlinuz-")


def _build_initramfs(work: Path, out: Path) -> None:
    workload = work / "workload"
    _run(["gcc", "-O2", "-static", "-Wall", "-o", str(workload), str(WORKLOAD_SOURCE), "-lm"])
    archive = cpio.Archive()
    for d in ("bin", "dev", "proc", "sys", "tmp"):
        archive.add_dir(d)
    archive.add_char_device("dev/console", major=5, minor=1)
    archive.add_file("init", INIT_SCRIPT.encode(), mode=0o755)
    archive.add_file("bin/busybox", BUSYBOX.read_bytes(), mode=0o755)
    archive.add_file("bin/workload", workload.read_bytes(), mode=0o755)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        gz.write(archive.finish())
    out.write_bytes(buf.getvalue())


def _load(folder: Path) -> GuestImage | None:
    manifest = folder / "manifest.json"
    if not manifest.exists():
        return None
    meta = json.loads(manifest.read_text())
    return GuestImage(folder / "vmlinuz", folder / "initrd.img", meta["kernel_version"], meta["key"])


def build_guest(cache: Path | None = None, force: bool = False) -> GuestImage:
    """Return the cached guest for the current inputs, building it first if needed."""
    cache = cache or cache_root()
    kernel_pkg, kernel_version = _kernel_package()
    key = input_key(kernel_pkg, kernel_version)
    folder = cache / key
    if not force and (image := _load(folder)) is not None:
        log.info("guest %s cached at %s", key, folder)
        return image
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".build-") as tmp:
        work = Path(tmp)
        staged = work / "image"
        staged.mkdir()
        vmlinuz, kver = _extract_kernel(work, kernel_pkg)
        shutil.copyfile(vmlinuz, staged / "vmlinuz")
        _build_initramfs(work, staged / "initrd.img")
        meta = {"key": key, "kernel_package": kernel_pkg, "package_version": kernel_version,
                "kernel_version": kver, "busybox": str(BUSYBOX), "workload": WORKLOAD_SOURCE.name}
        (staged / "manifest.json").write_text(json.dumps(meta, indent=2))
        if folder.exists():
            shutil.rmtree(folder)
        try:
            os.rename(staged, folder)
        except OSError:  # a concurrent build finished first: keep theirs
            log.info("guest %s was built concurrently", key)
    image = _load(folder)
    if image is None:
        raise GuestBuildError(f"guest build left no manifest in {folder}")
    log.info("guest %s built at %s", key, folder)
    return image
