"""One live migration through libvirt: precopy, postcopy or hybrid, with a timeout and postcopy recovery.

``virDomainMigrateToURI3(dconnuri, params, LIVE | PEER2PEER [| POSTCOPY])`` blocks until the move ends,
so it runs in a worker thread; a controller thread acts on the source's migration-iteration events
(postcopy: switch at the first pass; hybrid: after ``hybrid_precopy_rounds`` passes), on the timeout
(``abortJob`` or ``migrateStartPostCopy``) and on a cancel request. Lifecycle events give the wall-clock
marks of the pause at the source and the resume at the destination (downtime, DESIGN §5); the
job-completed event gives libvirt's own statistics. A postcopy that breaks (the link drops) leaves the
guest paused at both ends; the job retries with ``VIR_MIGRATE_POSTCOPY_RESUME`` — except towards a
libvirt known to crash on it (``RESUME_CRASHES``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import libvirt

from consolidator.domain.types import MigrationMethod, MigrationOutcome
from consolidator.manager.libvirt.conn import DomainMark, HostLink, MarkKind
from consolidator.protocol.migration import MigrationOptions, OnTimeout

log = logging.getLogger(__name__)

MIB = 1024 * 1024
STATS_WAIT_S = 5.0  # how long a finished move waits for the job-completed event's statistics
# libvirt versions whose destination daemon crashes on VIR_MIGRATE_POSTCOPY_RESUME (docs/libvirt.md):
# qemuMigrationDstPrepareResume hands qemuProcessIncomingDefNew a NULL fd pointer, which it dereferences.
# 11.3.x is the only version tried here; others are attempted.
RESUME_CRASHES = range(11_003_000, 11_004_000)


def resume_is_safe(dst_libvirt_version: int) -> bool:
    """Whether a postcopy recovery may be asked of a destination libvirtd of this version (0: unknown)."""
    return dst_libvirt_version not in RESUME_CRASHES


@dataclass(frozen=True, slots=True)
class LibvirtSettings:
    """What only a libvirt move has (the rest is the run's ``MigrationOptions``)."""

    tls: bool = False  # VIR_MIGRATE_TLS: QEMU's migration stream in TLS (hosts need migrate certificates)
    recovery_attempts: int = 3  # postcopy recovery tries (VIR_MIGRATE_POSTCOPY_RESUME)
    recovery_wait_s: float = 2.0  # before each try: the link may need time to come back


def uses_postcopy(method: MigrationMethod, options: MigrationOptions) -> bool:
    return method in (MigrationMethod.POSTCOPY, MigrationMethod.HYBRID) or options.on_timeout is OnTimeout.POSTCOPY


def migration_flags(method: MigrationMethod, options: MigrationOptions, settings: LibvirtSettings,
                    persistent: bool) -> int:
    """The virDomainMigrateFlags for one move. Raises ValueError for a combination libvirt lacks."""
    flags = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
    if persistent:  # a defined domain stays defined: on the destination, not on both
        flags |= libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
    if settings.tls:
        flags |= libvirt.VIR_MIGRATE_TLS
    if uses_postcopy(method, options):
        # libvirt has no flag for postcopy-preempt: it turns QEMU's capability on by itself whenever
        # both QEMU offer it (libvirt 11.3 with QEMU 10 does; docs/libvirt.md)
        flags |= libvirt.VIR_MIGRATE_POSTCOPY
    return int(flags)


def migration_params(options: MigrationOptions, method: MigrationMethod, migrate_uri: str | None) -> dict[str, Any]:
    """Typed parameters: data address and bandwidth caps (libvirt takes MiB/s)."""
    params: dict[str, Any] = {}
    if migrate_uri:
        params[libvirt.VIR_MIGRATE_PARAM_URI] = migrate_uri
    if options.max_bandwidth_bytes_per_s:
        mib_s = max(1, int(options.max_bandwidth_bytes_per_s / MIB))
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = mib_s
        if uses_postcopy(method, options):
            params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH_POSTCOPY] = mib_s
    return params


@dataclass(frozen=True, slots=True)
class MoveResult:
    outcome: MigrationOutcome
    total_s: float  # the migrate call's wall time (destination start included)
    downtime_s: float | None  # source pause -> destination resume, from lifecycle events
    libvirt_downtime_s: float | None  # libvirt's own figure (job statistics)
    bytes_sent: int
    rounds: int
    switched_to_postcopy: bool
    recoveries: int
    detail: str
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MoveRequest:
    vm: str
    method: MigrationMethod
    peer_uri: str  # the destination libvirtd as the source libvirtd reaches it (peer to peer)
    migrate_uri: str | None  # where QEMU's data goes, e.g. tcp://10.0.0.2 (None: libvirt picks)
    options: MigrationOptions
    settings: LibvirtSettings
    dst_libvirt_version: int = 0  # the destination libvirtd's (virConnectGetLibVersion; 0: unknown)


class MigrationJob:
    """Runs one move (``run`` in a worker thread); the cluster feeds it the hosts' events."""

    def __init__(self, request: MoveRequest, src: HostLink, dst_name: str) -> None:
        self.request = request
        self.src, self.dst_name = src, dst_name
        self._cond = threading.Condition()
        self._iteration = 0
        self._marks: list[DomainMark] = []
        self._stats: dict[str, Any] | None = None
        self._cancel = False
        self._aborted = False  # we asked libvirt to abort the job (cancel, or precopy timeout)
        self._done = False
        self.switched_s: float | None = None
        self.started_wall_s = 0.0

    # --- fed from the event thread ---------------------------------------------------------------

    def on_mark(self, mark: DomainMark) -> None:
        with self._cond:
            self._marks.append(mark)
            self._cond.notify_all()

    def on_iteration(self, iteration: int) -> None:
        with self._cond:
            self._iteration = max(self._iteration, iteration)
            self._cond.notify_all()

    def on_job_completed(self, stats: dict[str, Any]) -> None:
        with self._cond:
            self._stats = stats
            self._cond.notify_all()

    def stop_wall_s(self) -> float | None:
        """When the source paused the guest for the move (lifecycle event), if it did."""
        with self._cond:
            return next((m.wall_s for m in self._marks
                         if m.host == self.src.name and m.kind is MarkKind.STOPPED_FOR_MOVE), None)

    def cancel(self) -> None:
        with self._cond:
            self._cancel = True
            self._cond.notify_all()

    # --- the move --------------------------------------------------------------------------------

    def run(self) -> MoveResult:
        req = self.request
        dom = self.src.conn.lookupByName(req.vm)
        flags = migration_flags(req.method, req.options, req.settings, bool(dom.isPersistent()))
        params = migration_params(req.options, req.method, req.migrate_uri)
        dom.migrateSetMaxDowntime(max(1, int(req.options.downtime_limit_s * 1000)))
        self.started_wall_s = time.time()
        controller = threading.Thread(target=self._control, args=(dom,), name=f"migrate-ctl-{req.vm}", daemon=True)
        controller.start()
        error: libvirt.libvirtError | None = None
        recoveries = 0
        try:
            dom.migrateToURI3(req.peer_uri, params, flags)
        except libvirt.libvirtError as exc:
            error = exc
        if error is not None and self.switched_s is not None:
            error, recoveries = self._recover(dom, params, flags, error)
        ended = time.time()
        with self._cond:
            self._done = True
            self._cond.notify_all()
        controller.join(5.0)
        return self._result(error, ended, recoveries)

    def _control(self, dom: libvirt.virDomain) -> None:
        """Switch to postcopy at the right pass, act on the timeout and on cancel, until the move ends."""
        req = self.request
        switch_at = {MigrationMethod.POSTCOPY: 1, MigrationMethod.HYBRID: req.options.hybrid_precopy_rounds + 1}
        deadline = self.started_wall_s + req.options.timeout_s
        while True:
            with self._cond:
                self._cond.wait(timeout=max(0.0, min(0.5, deadline - time.time())))
                if self._done:
                    return
                iteration, cancel = self._iteration, self._cancel
            try:
                if cancel:
                    self._cancel = False
                    self._aborted = True
                    dom.abortJob()
                elif self.switched_s is None and req.method in switch_at and iteration >= switch_at[req.method]:
                    self._switch(dom, f"pass {iteration}")
                elif self.switched_s is None and time.time() >= deadline:
                    if req.options.on_timeout is OnTimeout.POSTCOPY:
                        self._switch(dom, f"timeout {req.options.timeout_s} s")
                    else:
                        log.info("%s: precopy did not converge in %s s, cancelling", req.vm, req.options.timeout_s)
                        self._aborted = True
                        dom.abortJob()
                        deadline = float("inf")
            except libvirt.libvirtError as exc:  # the move may have ended meanwhile
                log.debug("%s: migration control: %s", req.vm, exc)

    def _switch(self, dom: libvirt.virDomain, why: str) -> None:
        log.info("%s: switching to postcopy (%s)", self.request.vm, why)
        dom.migrateStartPostCopy(0)
        self.switched_s = time.time()

    def _recover(self, dom: libvirt.virDomain, params: dict[str, Any], flags: int,
                 error: libvirt.libvirtError) -> tuple[libvirt.libvirtError | None, int]:
        """A postcopy that failed after the switch: resume it over a new connection, a few times."""
        s = self.request.settings
        if not resume_is_safe(self.request.dst_libvirt_version):
            log.warning("%s: postcopy failed (%s); no recovery: libvirt %d crashes on VIR_MIGRATE_POSTCOPY_RESUME "
                        "(docs/libvirt.md)", self.request.vm, error, self.request.dst_libvirt_version)
            return error, 0
        for attempt in range(1, s.recovery_attempts + 1):
            log.warning("%s: postcopy failed (%s); recovery %d/%d", self.request.vm, error, attempt,
                        s.recovery_attempts)
            time.sleep(s.recovery_wait_s)
            try:
                dom.migrateToURI3(self.request.peer_uri, params, flags | libvirt.VIR_MIGRATE_POSTCOPY_RESUME)
                return None, attempt
            except libvirt.libvirtError as exc:
                error = exc
        return error, s.recovery_attempts

    def _result(self, error: libvirt.libvirtError | None, ended: float, recoveries: int) -> MoveResult:
        with self._cond:
            if error is None and self._stats is None:
                self._cond.wait_for(lambda: self._stats is not None, STATS_WAIT_S)
            stats = dict(self._stats or {})
            marks = list(self._marks)
        stop = next((m.wall_s for m in marks if m.host == self.src.name and m.kind is MarkKind.STOPPED_FOR_MOVE), None)
        resume = next((m.wall_s for m in marks if m.host == self.dst_name and m.kind is MarkKind.RUNNING_AT_DST
                       and (stop is None or m.wall_s >= stop)), None)
        downtime = resume - stop if error is None and stop is not None and resume is not None else None
        if error is None:
            outcome, detail = MigrationOutcome.COMPLETED, "completed"
            if recoveries:
                detail = f"completed after {recoveries} postcopy recovery attempt(s)"
        elif self.switched_s is None and (self._aborted or error.get_error_code() == libvirt.VIR_ERR_OPERATION_ABORTED):
            # after our abortJob libvirt may report the torn stream instead ("Channel error: Input/output
            # error", "Broken pipe", both seen in CI): a precopy we aborted is cancelled, the guest stays put
            outcome, detail = MigrationOutcome.CANCELLED, str(error)
        else:
            outcome, detail = MigrationOutcome.FAILED, str(error)
        lv_down = stats.get("downtime")
        return MoveResult(
            outcome=outcome, total_s=ended - self.started_wall_s, downtime_s=downtime,
            libvirt_downtime_s=None if lv_down is None else lv_down / 1000.0,
            bytes_sent=int(stats.get("data_processed", stats.get("memory_processed", 0))),
            rounds=int(stats.get("memory_iteration", 0)), switched_to_postcopy=self.switched_s is not None,
            recoveries=recoveries, detail=detail, stats=stats,
        )
