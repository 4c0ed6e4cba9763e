"""Lifecycle of an emulator subprocess: wait until it answers, stop it (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self


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


class EmulatedBmc:
    """What every emulated BMC has: a private folder, a watts file its power reading serves, and one
    subprocess started until it answers and stopped with its folder removed. Subclasses say how to
    start (``start``, through ``_launch``) and how to tell it answers (``_answers``)."""

    def __init__(self, username: str, password: str, folder_prefix: str, watts: float | None) -> None:
        self.username = username
        self.password = password
        self.dir = Path(tempfile.mkdtemp(prefix=folder_prefix))
        self._proc: subprocess.Popen[bytes] | None = None
        if watts is not None:
            self.set_watts(watts)

    def set_watts(self, watts: float) -> None:
        """What the next power reading returns (written atomically)."""
        tmp = self.dir / "watts.tmp"
        tmp.write_text(f"{watts}\n")
        tmp.replace(self.dir / "watts")

    def start(self, timeout_s: float = 10.0) -> Self:
        raise NotImplementedError

    def _answers(self) -> bool:
        raise NotImplementedError

    def _launch(self, argv: list[str], log_name: str, what: str, timeout_s: float) -> Self:
        """Start ``argv`` (stderr to ``log_name`` in the folder) and wait until it answers, else stop it."""
        with open(self.dir / log_name, "wb") as log:
            self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_until_ready(self._proc, self._answers, self.dir / log_name, what, timeout_s)
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and remove the folder."""
        stop_process(self._proc)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
