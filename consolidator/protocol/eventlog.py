"""The agent's event stream: numbered events kept in a bounded buffer, read by long-poll.

With a ``path`` every event is also appended to a JSON-lines file, and a new log (a restarted
agent) continues from it: numbers keep growing across restarts, so a reader that remembers where
it stopped (the manager's forwarder) neither misses events nor sees old numbers reused.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from consolidator.protocol.schemas import EventKind, EventView

log = logging.getLogger(__name__)

KEEP_EVENTS = 10_000


class EventLog:
    """Append-only, sequence-numbered events; readers wait for ``seq > after`` (long-poll)."""

    def __init__(self, host: str, keep: int = KEEP_EVENTS, path: Path | None = None) -> None:
        self._host = host
        self._keep = keep
        self._events: deque[EventView] = deque(maxlen=keep)
        self._next_seq = 1
        self._changed = asyncio.Condition()
        self._path = path
        self._lines = 0
        if path is not None:
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            lines = path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return
        for line in lines:
            try:
                event = EventView.model_validate_json(line)
            except ValidationError:  # a line cut short by a kill: skip it, keep the rest
                log.warning("skipping an unreadable line of %s", path)
                continue
            self._events.append(event)
            self._next_seq = max(self._next_seq, event.seq + 1)
        self._lines = len(lines)
        log.info("event log %s: continuing at seq %d", path, self._next_seq)

    def _persist(self, event: EventView) -> None:
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        if self._lines >= 2 * self._keep:  # compact: keep only what the buffer keeps
            tmp = self._path.with_suffix(".tmp")
            tmp.write_text("".join(e.model_dump_json() + "\n" for e in self._events))
            tmp.replace(self._path)
            self._lines = len(self._events)
        else:
            with self._path.open("a") as out:
                out.write(event.model_dump_json() + "\n")
            self._lines += 1

    async def append(self, kind: EventKind, **fields: Any) -> EventView:
        async with self._changed:
            event = EventView(seq=self._next_seq, t_wall_s=time.time(), kind=kind, host=self._host, **fields)
            self._next_seq += 1
            self._events.append(event)
            self._persist(event)
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
