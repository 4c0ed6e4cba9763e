"""Client of the workload generator's control channel (the guest's 2nd serial port, a unix socket).

One command per connection; the answer is the first line starting with the expected word, so stale
output the guest wrote while nobody listened (e.g. its "ready" line) is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

from consolidator.agent.hypervisor import DriverError


@dataclass(frozen=True, slots=True)
class GuestStats:
    pages: int
    pages_written: int
    tasks: int
    busy_s: float
    uptime_s: float
    memfree_kib: int  # guest's MemFree: RAM it never touched is (nearly all) of it


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


async def stats(ctl: Path) -> GuestStats:
    f = parse_fields(await guest_command(ctl, "stats", "stats"))
    return GuestStats(int(f["pages"]), int(f["written"]), int(f["tasks"]), float(f["busy_s"]),
                      float(f["uptime_s"]), int(f["memfree_kib"]))
