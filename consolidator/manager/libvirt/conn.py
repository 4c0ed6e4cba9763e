"""Connections to libvirtd hosts and the event thread that delivers their domain events.

libvirt dispatches events (lifecycle, job completed, migration iteration) and keep-alives from one
event loop per process: ``virEventRegisterDefaultImpl`` may be called only once, before the first
connection, so ``ensure_event_loop`` registers it once and runs it in a daemon thread. Callbacks run
in that thread: they must only record and hand over, never call back into libvirt.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import libvirt

log = logging.getLogger(__name__)

_loop_lock = threading.Lock()
_loop_thread: threading.Thread | None = None  # process-wide, like libvirt's own event loop


def ensure_event_loop() -> None:
    """Register libvirt's default event implementation and run it (once per process)."""
    global _loop_thread
    with _loop_lock:
        if _loop_thread is not None:
            return
        libvirt.virEventRegisterDefaultImpl()
        # errors come back as exceptions; libvirt's default handler would also print each to stderr
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

        def run() -> None:
            while True:
                if libvirt.virEventRunDefaultImpl() < 0:
                    log.warning("libvirt event loop iteration failed")
                    time.sleep(0.1)

        _loop_thread = threading.Thread(target=run, name="libvirt-events", daemon=True)
        _loop_thread.start()


class MarkKind(enum.Enum):
    """What a domain event says about a migration (lifecycle event type and detail, simplified)."""

    STOPPED_FOR_MOVE = "stopped_for_move"  # source paused for switch-over (precopy) or postcopy
    RUNNING_AT_DST = "running_at_dst"  # destination resumed the guest (postcopy: pages still coming)
    POSTCOPY_FAILED = "postcopy_failed"  # either side: postcopy broke, the guest waits for recovery
    LEFT_SOURCE = "left_source"  # the source domain stopped because it migrated
    INCOMING = "incoming"  # destination: the domain was started to receive a migration
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class DomainMark:
    host: str
    vm: str
    kind: MarkKind
    wall_s: float
    event: int  # libvirt's lifecycle event type and detail, for the record
    detail: int


def classify(event: int, detail: int) -> MarkKind:
    """Map a lifecycle (event, detail) pair to what it means for a migration."""
    if event == libvirt.VIR_DOMAIN_EVENT_SUSPENDED:
        if detail in (libvirt.VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED, libvirt.VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY):
            return MarkKind.STOPPED_FOR_MOVE
        if detail == libvirt.VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY_FAILED:
            return MarkKind.POSTCOPY_FAILED
    if event == libvirt.VIR_DOMAIN_EVENT_RESUMED:
        if detail in (libvirt.VIR_DOMAIN_EVENT_RESUMED_MIGRATED, libvirt.VIR_DOMAIN_EVENT_RESUMED_POSTCOPY):
            return MarkKind.RUNNING_AT_DST
        if detail == libvirt.VIR_DOMAIN_EVENT_RESUMED_POSTCOPY_FAILED:
            return MarkKind.POSTCOPY_FAILED
    if event == libvirt.VIR_DOMAIN_EVENT_STOPPED and detail == libvirt.VIR_DOMAIN_EVENT_STOPPED_MIGRATED:
        return MarkKind.LEFT_SOURCE
    if event == libvirt.VIR_DOMAIN_EVENT_STARTED and detail == libvirt.VIR_DOMAIN_EVENT_STARTED_MIGRATED:
        return MarkKind.INCOMING
    return MarkKind.OTHER


@dataclass(frozen=True, slots=True)
class EventSinks:
    """Where a host's events go (called in the libvirt event thread)."""

    mark: Callable[[DomainMark], None]
    job_completed: Callable[[str, str, dict[str, Any]], None]  # host, vm, stats
    iteration: Callable[[str, str, int], None]  # host, vm, pass number


class HostLink:
    """One host's connection with its event callbacks; reopened after the host comes back."""

    def __init__(self, name: str, uri: str, sinks: EventSinks, keepalive_s: int = 5) -> None:
        self.name, self.uri = name, uri
        self._sinks = sinks
        self._keepalive_s = keepalive_s
        self._conn: libvirt.virConnect | None = None
        self._callbacks: list[int] = []
        self._lock = threading.Lock()
        self._close_pending = False  # close() came while an open was waiting for the host

    @property
    def conn(self) -> libvirt.virConnect:
        with self._lock:
            if self._conn is None or not self._conn.isAlive():
                self._open_locked()
            if self._conn is None:
                raise libvirt.libvirtError(f"connection to {self.name} closed while it was being opened")
            return self._conn

    def is_open(self) -> bool:
        """Without the lock (an open in progress may hold it for long): a local check, no request."""
        conn = self._conn
        return conn is not None and conn.isAlive() == 1

    def open(self) -> libvirt.virConnect:
        return self.conn

    def _open_locked(self) -> None:
        ensure_event_loop()
        self._drop_locked()
        conn = libvirt.open(self.uri)
        try:
            conn.setKeepAlive(self._keepalive_s, 3)
            self._callbacks = [
                conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle, None),
                conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, self._on_job, None),
                conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION,
                                            self._on_iteration, None),
            ]
        except libvirt.libvirtError:
            conn.close()
            raise
        self._conn = conn
        log.info("connected to %s (%s)", self.name, self.uri)
        if self._close_pending:
            self._close_pending = False
            self._drop_locked()

    def _drop_locked(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        for cb in self._callbacks:
            try:
                conn.domainEventDeregisterAny(cb)
            except libvirt.libvirtError:
                pass
        self._callbacks = []
        try:
            conn.close()
        except libvirt.libvirtError:
            pass

    def close(self) -> None:
        """Drop the connection. Never waits for a host that does not answer: an open still waiting for
        one (a frozen or sleeping libvirtd) drops what it gets when it returns."""
        if not self._lock.acquire(blocking=False):
            self._close_pending = True
            return
        try:
            self._drop_locked()
        finally:
            self._lock.release()

    # --- callbacks: in the event thread; record and hand over only -------------------------------

    def _on_lifecycle(self, _conn: Any, dom: Any, event: int, detail: int, _opaque: Any) -> None:
        mark = DomainMark(self.name, dom.name(), classify(event, detail), time.time(), event, detail)
        log.debug("%s: %s event %d detail %d -> %s", self.name, mark.vm, event, detail, mark.kind.value)
        self._sinks.mark(mark)

    def _on_job(self, _conn: Any, dom: Any, params: dict[str, Any], _opaque: Any) -> None:
        self._sinks.job_completed(self.name, dom.name(), dict(params))

    def _on_iteration(self, _conn: Any, dom: Any, iteration: int, _opaque: Any) -> None:
        self._sinks.iteration(self.name, dom.name(), iteration)
