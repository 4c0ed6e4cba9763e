"""The compiler of the literature policies and their engine: numba's ``njit`` when installed, else identity.

The policy functions are plain Python over NumPy arrays (pure: no I/O, no clock, no global state);
numba compiles them so the CloudSim-compatible engine and the planner can call them in tight loops.
Without numba they still run, only slowly, which keeps the table-driven tests independent of the
compiler.

Importing this module sets up numba once, before any function is decorated:

- **On-disk cache keyed by the sources.** numba checks only a function's own file before reusing
  compiled code, and these functions call each other across files; so the cache lives in a folder
  named by a hash of every numba-compiled source (``~/.cache/consolidator/numba/<hash>``, or under
  ``$NUMBA_CACHE_DIR`` when set, which numba reads itself).
- **Lean start.** Loading cached code makes numba import all its typing registries; two of them
  import large optional libraries that this code never uses: BLAS support imports ``scipy.linalg``
  (≈ 0.3 s) and cffi support imports ``cffi`` and ``pycparser`` (≈ 0.2 s). Those two imports are
  refused while the registries load (numba then compiles without ``np.dot``/``np.linalg`` and cffi
  types, which nothing here uses) and allowed again at once, so other code can still import them.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

_PACKAGE = Path(__file__).resolve().parents[2]
# Every folder whose modules hold numba-compiled functions (models: power.spec_watts): one hash covers them all.
_COMPILED_SOURCES = ("policies/literature", "literature", "models")
_UNUSED_BY_COMPILED_CODE = ("scipy.linalg", "cffi")


def cache_dir() -> Path:
    """``~/.cache/consolidator/numba/<hash of the compiled sources>``."""
    sources = sorted(p for folder in _COMPILED_SOURCES for p in (_PACKAGE / folder).glob("*.py"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:16]
    return Path.home() / ".cache" / "consolidator" / "numba" / digest


def _configure(config: Any) -> None:
    if getattr(config, "CACHE_DIR", ""):
        return  # NUMBA_CACHE_DIR given: numba's own choice
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # pragma: no cover - read-only home
        log.warning("numba cache folder %s not writable (%s): compiling without the shared cache", folder, exc)
        return
    setattr(config, "CACHE_DIR", str(folder))  # noqa: B010 - not typed in numba's stubs


def _load_registries_lean() -> None:
    from numba.core.registry import cpu_target

    refused = [name for name in _UNUSED_BY_COMPILED_CODE if name not in sys.modules]
    for name in refused:
        sys.modules[name] = None  # type: ignore[assignment] # import machinery: "not installed"
    try:
        cpu_target.typing_context.refresh()
        cpu_target.target_context.refresh()
    finally:
        for name in refused:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


try:  # pragma: no cover - exercised by whichever environment runs
    import numba.core.config as _numba_config
    from numba import njit as _njit

    _configure(_numba_config)
    _load_registries_lean()

    def jit(func: F) -> F:
        """Compile ``func`` in nopython mode, cached on disk (see the module's docstring)."""
        return cast(F, _njit(cache=True, nogil=True)(func))

    def jit_inline(func: F) -> F:
        """Compile and inline at every call site: for tiny helpers on hot paths, where a call that
        passes array tuples costs more than the work (reference counting of every array)."""
        return cast(F, _njit(cache=True, nogil=True, inline="always")(func))

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover

    def jit(func: F) -> F:
        return func

    jit_inline = jit

    HAVE_NUMBA = False
