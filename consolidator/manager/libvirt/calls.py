"""Blocking work for the libvirt engine: a call in a thread of its own, and a configured command."""

from __future__ import annotations

import asyncio
import subprocess
import threading
from typing import Any


def in_own_thread(fn: Any, name: str) -> asyncio.Future[Any]:
    """``fn()`` in a daemon thread of its own, not asyncio's shared pool: a connection attempt to a
    host that never answers (a frozen libvirtd) must not take one of the pool's few workers for good —
    with a few such hosts the pool ran dry and every other host's calls waited behind them."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Any] = loop.create_future()
    fut.add_done_callback(lambda f: f.cancelled() or f.exception())  # an attempt nobody awaits any more

    def settle(result: Any, exc: BaseException | None) -> None:
        if fut.done():
            return
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(result)

    def run() -> None:
        result, error = None, None
        try:
            result = fn()
        except Exception as exc:  # handed to the awaiting coroutine
            error = exc
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    threading.Thread(target=run, name=name, daemon=True).start()
    return fut


def run_command(argv: tuple[str, ...], what: str, timeout_s: float = 60.0) -> None:
    """Run a configured command (an argv list, no shell); raise with its stderr if it fails."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"{what} command {argv[0]}: {exc}") from exc
    if done.returncode != 0:
        raise RuntimeError(f"{what} command {argv[0]} exited {done.returncode}: {done.stderr.strip()[:200]}")
