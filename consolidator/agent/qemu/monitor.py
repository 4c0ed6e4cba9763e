"""A thin layer over ``qemu.qmp.QMPClient``: commands that raise DriverError, and an event log.

Every QMP event is kept with QEMU's own timestamp (host wall clock), so downtime can be taken as
source STOP -> destination RESUME across two processes (QMP's ``downtime`` field is unreliable,
DESIGN §5).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qemu.qmp import EventListener, QMPClient, QMPError

from consolidator.agent.hypervisor import DriverError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class QmpEvent:
    name: str
    timestamp_s: float  # QEMU's wall-clock stamp of the event
    data: dict[str, Any] = field(default_factory=dict)


class Monitor:
    """One QMP connection to one QEMU process, with every event it has seen."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.events: list[QmpEvent] = []
        self._client = QMPClient(name)
        self._listener = EventListener()
        self._pump: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def connect(self, socket: Path, timeout_s: float = 10.0) -> None:
        """Connect, retrying while QEMU creates its socket."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            try:
                await self._client.connect(str(socket))
                break
            except QMPError as exc:
                if loop.time() > deadline:
                    raise DriverError(f"QMP {socket}: cannot connect: {exc}") from exc
                await asyncio.sleep(0.05)
        self._client.register_listener(self._listener)
        self._pump = asyncio.create_task(self._collect(), name=f"qmp-events-{self.name}")

    async def _collect(self) -> None:
        async for msg in self._listener:
            stamp: dict[str, Any] = dict(msg.get("timestamp", {}))  # type: ignore[call-overload]
            data: dict[str, Any] = dict(msg.get("data", {}))  # type: ignore[call-overload]
            ts = float(stamp.get("seconds", 0)) + float(stamp.get("microseconds", 0)) * 1e-6
            self.events.append(QmpEvent(str(msg["event"]), ts, data))
            self._changed.set()

    async def execute(self, cmd: str, args: dict[str, Any] | None = None, timeout_s: float | None = None) -> Any:
        """One QMP command. ``timeout_s``: give up waiting (a QEMU whose main loop is blocked, e.g. a
        postcopy destination under TCG whose vCPU waits for a missing page with the big lock held)."""
        try:
            return await asyncio.wait_for(self._client.execute(cmd, args), timeout_s)
        except QMPError as exc:
            raise DriverError(f"QMP {self.name}: {cmd} failed: {exc}") from exc
        except TimeoutError as exc:
            raise DriverError(f"QMP {self.name}: {cmd}: no answer within {timeout_s} s") from exc

    def last(self, name: str, since_s: float = 0.0, **match: Any) -> QmpEvent | None:
        """The latest event called ``name`` stamped at or after ``since_s`` whose data matches."""
        for ev in reversed(self.events):
            fits = all(ev.data.get(k) == v for k, v in match.items())
            if ev.name == name and ev.timestamp_s >= since_s and fits:
                return ev
        return None

    async def wait_event(self, name: str, timeout_s: float, since_s: float = 0.0, **match: Any) -> QmpEvent:
        async def waiter() -> QmpEvent:
            while (ev := self.last(name, since_s, **match)) is None:
                self._changed.clear()
                await self._changed.wait()
            return ev

        try:
            return await asyncio.wait_for(waiter(), timeout_s)
        except TimeoutError as exc:
            raise DriverError(f"QMP {self.name}: no {name} {match or ''} within {timeout_s} s") from exc

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pump
        with contextlib.suppress(Exception):
            self._client.remove_listener(self._listener)
        with contextlib.suppress(Exception):
            await self._client.disconnect()
