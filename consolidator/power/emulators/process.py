"""Lifecycle of an emulator subprocess: wait until it answers, stop it (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def wait_until_ready(proc: subprocess.Popen[bytes], ready: Callable[[], bool], log: Path, what: str,
                     timeout_s: float) -> None:
    """Poll ``ready()`` until it is true; raise if the process exits or the time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text()[-800:]}")
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer within {timeout_s:g} s")


def stop_process(proc: subprocess.Popen[bytes] | None, grace_s: float = 5.0) -> None:
    """Terminate ``proc`` and reap it; kill it if it does not exit within ``grace_s``."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
