"""The guest's workload generator, compiled and run on the host over a pty (no QEMU needed).

The same C file runs as the guest's program; here its control channel is a pty instead of ttyS1.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from consolidator.agent.guest.build import WORKLOAD_SOURCE
from consolidator.agent.qemu.guestctl import parse_fields


class Generator:
    """A running workload generator and its control pty."""

    def __init__(self, binary: Path, *params: str) -> None:
        self._master, self._slave = pty.openpty()  # keep the slave open: the child opens it by name
        self.proc = subprocess.Popen([str(binary), f"wl.ctl={os.ttyname(self._slave)}", *params],
                                     stdout=subprocess.DEVNULL)
        try:
            assert self.ask("ping", "pong") == "pong"
        except BaseException:
            self.stop()
            raise

    def ask(self, line: str, expect: str, timeout_s: float = 10.0) -> str:
        os.write(self._master, line.encode() + b"\n")
        buf, deadline = b"", time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if select.select([self._master], [], [], 0.1)[0]:
                buf += os.read(self._master, 4096)
                for text in buf.decode(errors="replace").splitlines():
                    if text.strip().startswith(expect):
                        return text.strip()
        raise AssertionError(f"no {expect!r} answer to {line!r}; got {buf!r}")

    def fields(self, line: str, expect: str) -> dict[str, str]:
        return parse_fields(self.ask(line, expect))

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        os.close(self._master)
        os.close(self._slave)


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed (scripts/setup.d/20-qemu.sh installs it)")
    out = tmp_path_factory.mktemp("wl") / "workload"
    subprocess.run(["gcc", "-O2", "-Wall", "-Werror", "-o", str(out), str(WORKLOAD_SOURCE), "-lm"], check=True)
    return out


@pytest.fixture
def generator(binary: Path) -> Iterator[Generator]:
    gen = Generator(binary, "wl.wws_mib=16", "wl.seed=7")
    yield gen
    gen.stop()


def test_check_passes_after_writes_and_finds_every_scribbled_page(generator: Generator) -> None:
    generator.ask("set load=0 dirty=40", "ok")
    time.sleep(0.5)
    generator.ask("set load=0 dirty=0", "ok")
    assert int(generator.fields("stats", "stats")["written"]) > 1000
    assert generator.fields("check", "check") == {"bad": "0", "pages": "4096"}
    assert generator.ask("scribble n=5", "scribbled") == "scribbled n=5"
    assert generator.fields("check", "check")["bad"] == "5"


def test_write_rate_and_cpu_load_follow_the_settings(binary: Path) -> None:
    # short tasks (2 ms): a 3 s sample of a Poisson queue at 50 % is then within ±0.1 of 0.5
    generator = Generator(binary, "wl.wws_mib=16", "wl.task_ms=2")
    try:
        _check_rates(generator)
    finally:
        generator.stop()


def _check_rates(generator: Generator) -> None:
    generator.ask("set load=0.5 dirty=20", "ok")
    before = generator.fields("stats", "stats")
    time.sleep(3.0)
    after = generator.fields("stats", "stats")
    elapsed = float(after["uptime_s"]) - float(before["uptime_s"])
    mib_s = (int(after["written"]) - int(before["written"])) / 256 / elapsed
    busy = (float(after["busy_s"]) - float(before["busy_s"])) / elapsed
    assert 10 < mib_s < 24, mib_s  # 20 MiB/s asked; a loaded host may fall behind, never ahead
    assert 0.3 < busy < 0.7, busy  # Poisson tasks at 50 % utilisation
    assert int(after["tasks"]) > int(before["tasks"])


def test_unknown_commands_get_an_error_line(generator: Generator) -> None:
    assert generator.ask("format c:", "error").startswith("error")
    assert generator.ask("ping", "pong") == "pong"  # still answering
