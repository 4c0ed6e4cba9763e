"""The compiler decorator of the literature policies: numba's ``njit`` when installed, else identity.

The policy functions are plain Python over NumPy arrays (pure: no I/O, no clock, no global state);
numba compiles them so the CloudSim-compatible engine can call them in tight loops. Without numba they
still run, only slowly, which keeps the table-driven tests independent of the compiler.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Any])

try:  # pragma: no cover - exercised by whichever environment runs
    from numba import njit as _njit

    def jit(func: F) -> F:
        """Compile ``func`` in nopython mode, cached on disk next to its module."""
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
