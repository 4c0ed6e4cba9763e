"""Literature mode: PlanetLab traces under CloudSim 3.0.3's model (and a realistic variant), fast.

Importing this package points numba's on-disk cache at a folder keyed by a hash of the engine's
sources: numba checks only a function's own file when reusing compiled code, and the engine's
functions call each other across files.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def _cache_dir() -> Path:
    here = Path(__file__).resolve().parent
    sources = sorted(here.glob("*.py")) + sorted((here.parent / "policies" / "literature").glob("*.py"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:16]
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "consolidator" / "numba" / digest


def _configure_numba_cache() -> None:
    try:
        import numba.core.config as numba_config
    except ImportError:  # pragma: no cover - numba is a dependency; without it the engine runs slowly
        return
    if getattr(numba_config, "CACHE_DIR", ""):
        return
    folder = _cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # pragma: no cover
        log.warning("numba cache folder %s not writable (%s): compiling without the shared cache", folder, exc)
        return
    setattr(numba_config, "CACHE_DIR", str(folder))  # noqa: B010 - not typed in numba's stubs
    _prune_old(folder)


def _prune_old(current: Path, keep_days: float = 7.0) -> None:
    """Remove caches of other engine versions untouched for ``keep_days`` (each is a few MB)."""
    import shutil
    import time

    limit = time.time() - keep_days * 86400
    for other in current.parent.iterdir():
        try:
            if other != current and other.is_dir() and other.stat().st_mtime < limit:
                shutil.rmtree(other, ignore_errors=True)
        except OSError:  # pragma: no cover - a concurrent prune
            continue


_configure_numba_cache()
