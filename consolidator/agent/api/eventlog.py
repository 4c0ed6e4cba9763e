"""The agent's event stream: numbered events kept in a bounded buffer, read by long-poll."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from consolidator.agent.api.schemas import EventKind, EventView

KEEP_EVENTS = 10_000


class EventLog:
    """Append-only, sequence-numbered events; readers wait for ``seq > after`` (long-poll)."""

    def __init__(self, host: str, keep: int = KEEP_EVENTS) -> None:
        self._host = host
        self._events: deque[EventView] = deque(maxlen=keep)
        self._next_seq = 1
        self._changed = asyncio.Condition()

    async def append(self, kind: EventKind, **fields: Any) -> EventView:
        async with self._changed:
            event = EventView(seq=self._next_seq, t_wall_s=time.time(), kind=kind, host=self._host, **fields)
            self._next_seq += 1
            self._events.append(event)
            self._changed.notify_all()
        return event

    def since(self, after: int) -> list[EventView]:
        return [event for event in self._events if event.seq > after]

    @property
    def next_seq(self) -> int:
        return self._next_seq

    async def wait(self, after: int, timeout_s: float) -> list[EventView]:
        """Events newer than ``after``; waits up to ``timeout_s`` for the first one to arrive."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: self._next_seq - 1 > after), timeout_s)
            except TimeoutError:
                pass
        return self.since(after)
