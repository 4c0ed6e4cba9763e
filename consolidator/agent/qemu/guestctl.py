"""Client of the workload generator's control channel (the guest's 2nd serial port, a unix socket).

One command per connection; the answer is the first line starting with the expected word, so stale
output the guest wrote while nobody listened (e.g. its "ready" line) is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from consolidator.agent.hypervisor import DriverError


@dataclass(frozen=True, slots=True)
class GuestStats:
    """The workload generator's counters (cumulative since its start; they travel with the VM)."""

    pages: int
    pages_written: int
    tasks: int  # issued (arrived)
    busy_s: float  # work served, seconds of the VM's CPU (its quota = 1 s per s)
    uptime_s: float
    memfree_kib: int  # guest's MemFree: RAM it never touched is (nearly all) of it
    tasks_done: int = 0
    tasks_queued: int = 0
    tasks_dropped: int = 0  # arrivals that found the queue full (not work-conserving; 0 normally)
    backlog_s: float = 0.0  # work waiting in the queue, seconds of the VM's CPU
    delay_sum_s: float = 0.0  # sum over finished tasks of completion - arrival - task work
    delay_max_s: float = 0.0
    delay_hist: dict[int, int] = field(default_factory=dict)  # finished tasks per delay bin


DELAY_BINS_PER_OCTAVE = 4  # the generator's histogram: bin 0 < 1 ms, bin k in [2^((k-1)/4), 2^(k/4)) ms


def delay_bin_upper_s(k: int) -> float:
    """Upper edge of delay histogram bin ``k`` (seconds)."""
    return float(0.001 * 2.0 ** (k / DELAY_BINS_PER_OCTAVE))


def parse_fields(line: str) -> dict[str, str]:
    return dict(word.split("=", 1) for word in line.split()[1:] if "=" in word)


async def guest_command(ctl: Path, line: str, expect: str, timeout_s: float = 10.0) -> str:
    """Send one command line and return the guest's answer line (raises DriverError on timeout)."""

    async def exchange() -> str:
        reader, writer = await asyncio.open_unix_connection(str(ctl))
        try:
            writer.write(line.encode() + b"\n")
            await writer.drain()
            while True:
                raw = await reader.readline()
                if not raw:
                    raise DriverError(f"guest control {ctl}: closed before answering {line!r}")
                text = raw.decode(errors="replace").strip()
                if text.startswith(expect):
                    return text
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    try:
        return await asyncio.wait_for(exchange(), timeout_s)
    except TimeoutError as exc:
        raise DriverError(f"guest control {ctl}: no answer to {line!r} within {timeout_s} s") from exc
    except OSError as exc:
        raise DriverError(f"guest control {ctl}: {exc}") from exc


async def wait_ready(ctl: Path, timeout_s: float) -> None:
    """Ping until the workload generator answers (the guest has booted)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            await guest_command(ctl, "ping", "pong", timeout_s=1.0)
            return
        except DriverError:
            if loop.time() > deadline:
                raise DriverError(f"guest behind {ctl} did not answer within {timeout_s} s") from None
            await asyncio.sleep(0.2)


async def set_load(ctl: Path, load: float, dirty_mib_s: float) -> None:
    await guest_command(ctl, f"set load={load:.6f} dirty={dirty_mib_s:.6f}", "ok")


async def check(ctl: Path, timeout_s: float = 60.0) -> int:
    """Number of pages of the working set that lost their last write."""
    answer = parse_fields(await guest_command(ctl, "check", "check", timeout_s))
    return int(answer["bad"])


def parse_stats(line: str) -> GuestStats:
    f = parse_fields(line)
    return GuestStats(int(f["pages"]), int(f["written"]), int(f["tasks"]), float(f["busy_s"]),
                      float(f["uptime_s"]), int(f["memfree_kib"]), int(f["done"]), int(f["queued"]),
                      int(f["dropped"]), float(f["backlog_s"]), float(f["delay_sum_s"]), float(f["delay_max_s"]),
                      parse_histogram(line))


def parse_histogram(line: str) -> dict[int, int]:
    """``hist done=N b=K:C,...`` -> {bin: count}."""
    bins = parse_fields(line).get("b", "")
    return {int(k): int(c) for k, c in (item.split(":") for item in bins.split(",") if item)}


async def stats(ctl: Path) -> GuestStats:
    return parse_stats(await guest_command(ctl, "stats", "stats"))


async def delay_histogram(ctl: Path) -> dict[int, int]:
    """Finished tasks per delay bin (cumulative since the generator started)."""
    return parse_histogram(await guest_command(ctl, "hist", "hist"))
