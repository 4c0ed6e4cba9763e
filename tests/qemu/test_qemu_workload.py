"""The guest's workload generator, compiled and run on the host over a pty (no QEMU needed).

The same C file runs as the guest's program; here its control channel is a pty instead of ttyS1.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from consolidator.agent.guest.build import WORKLOAD_SOURCE
from consolidator.agent.qemu.guestctl import (
    GuestStats,
    delay_bin_upper_s,
    parse_fields,
    parse_histogram,
    parse_stats,
)


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
    # short tasks (2 ms): 750 arrivals in 3 s, so their count is within ±20 % of 250/s
    generator = Generator(binary, "wl.wws_mib=16", "wl.task_ms=2")
    try:
        _check_rates(generator)
    finally:
        generator.stop()


def _check_rates(generator: Generator) -> None:
    """Arrivals follow the load by wall time; the work served is real CPU, so on a busy host (other
    jobs on the two cores) it may fall behind the load, never ahead; the writes follow the work."""
    generator.ask("set load=0.5 dirty=20", "ok")
    before = _stats(generator)
    time.sleep(3.0)
    after = _stats(generator)
    elapsed = after.uptime_s - before.uptime_s
    work_s = after.busy_s - before.busy_s
    assert 200 < (after.tasks - before.tasks) / elapsed < 300  # Poisson arrivals at 0.5 / 2 ms
    assert 0.05 < work_s / elapsed < 0.65, work_s / elapsed  # at most the load (and Poisson noise)
    mib = (after.pages_written - before.pages_written) / 256
    assert mib / work_s == pytest.approx(20 / 0.5, rel=0.1)  # dirty / load MiB per second of work
    assert after.tasks == after.tasks_done + after.tasks_queued + after.tasks_dropped


def test_unknown_commands_get_an_error_line(generator: Generator) -> None:
    assert generator.ask("format c:", "error").startswith("error")
    assert generator.ask("ping", "pong") == "pong"  # still answering


def _stats(generator: Generator) -> GuestStats:
    return parse_stats(generator.ask("stats", "stats"))


def _drained(generator: Generator, timeout_s: float = 20.0) -> GuestStats:
    """Stats once the queue is empty (the host's other jobs decide how fast it drains)."""
    deadline = time.monotonic() + timeout_s
    while (stats := _stats(generator)).tasks_queued > 0:
        assert time.monotonic() < deadline, stats
        time.sleep(0.2)
    return stats


def test_tasks_that_cannot_run_wait_in_the_queue_and_are_all_done_later(binary: Path) -> None:
    """Work conservation: a generator stopped for 1 s (its "vCPU" does not run) queues the tasks that
    arrive meanwhile and serves them afterwards; at every read issued = done + queued (+ dropped)."""
    generator = Generator(binary, "wl.wws_mib=16", "wl.task_ms=5", "wl.seed=3")
    try:
        generator.ask("set load=0.5 dirty=0", "ok")
        time.sleep(0.5)
        os.kill(generator.proc.pid, signal.SIGSTOP)
        time.sleep(1.0)
        os.kill(generator.proc.pid, signal.SIGCONT)
        time.sleep(0.05)
        during = _stats(generator)  # the arrivals of the stop are in, most still waiting
        generator.ask("set load=0 dirty=0", "ok")
        after = _drained(generator)
        hist = parse_histogram(generator.ask("hist", "hist"))
    finally:
        generator.stop()
    for s in (during, after):
        assert s.tasks == s.tasks_done + s.tasks_queued + s.tasks_dropped, s
    assert during.tasks_queued > 20 and during.backlog_s > 0.1, during  # ≈ 100 tasks of 5 ms arrived
    assert after.tasks_queued == 0 and after.backlog_s == 0 and after.tasks_dropped == 0, after
    assert after.tasks_done == after.tasks > during.tasks_done
    # the work that waited was served afterwards (tasks of exponential size, mean 5 ms)
    assert after.busy_s - during.busy_s >= during.backlog_s - 1e-3
    assert after.busy_s == pytest.approx(after.tasks_done * 0.005, rel=0.3)
    # the first task of the stop waited at least the stop (more on a busy host, never more than it ran)
    assert 0.8 < after.delay_max_s < after.uptime_s, after
    assert sum(hist.values()) == after.tasks_done
    worst_bin = max(hist)
    assert delay_bin_upper_s(worst_bin - 1) <= after.delay_max_s <= delay_bin_upper_s(worst_bin) + 1e-9
    assert after.delay_sum_s / after.tasks_done > 0.05  # the stop's tasks pull the mean up


def test_a_starved_guest_writes_less_its_writes_follow_the_work_served(binary: Path) -> None:
    """With load > 0 the tasks write the pages: stopped, the generator writes nothing and owes nothing."""
    generator = Generator(binary, "wl.wws_mib=16", "wl.task_ms=2")
    try:
        generator.ask("set load=0.5 dirty=20", "ok")
        before = _stats(generator)
        os.kill(generator.proc.pid, signal.SIGSTOP)
        time.sleep(1.0)
        os.kill(generator.proc.pid, signal.SIGCONT)
        time.sleep(0.5)
        generator.ask("set load=0 dirty=0", "ok")
        after = _drained(generator)  # the backlog drains, and writes as it is served
    finally:
        generator.stop()
    assert after.tasks_queued == 0
    mib_per_work_s = (after.pages_written - before.pages_written) / 256 / (after.busy_s - before.busy_s)
    assert mib_per_work_s == pytest.approx(20 / 0.5, rel=0.1)  # dirty / load MiB per second of work
    assert after.pages_written - before.pages_written > 256 * 20 * 0.5  # the stop's work wrote too
