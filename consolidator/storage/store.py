"""The run store: the Load Monitor's SampleSink on SQLite or PostgreSQL, plus the queries on it.

Writes are buffered and committed in one transaction per ``flush()`` (or when a buffer reaches
``batch_rows``): a sample is *stored* once flush returns, and a process that dies afterwards loses
nothing stored. The latest sample of every host and VM is kept in memory for the planner and is
reloaded from the database when a store is reopened (a management-node restart resumes from it).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, Table, func, select

from consolidator.domain.events import Event, HostPowerChanged
from consolidator.domain.samples import HostSample, PowerSample, VmSample
from consolidator.domain.types import PowerState
from consolidator.storage import records, schema
from consolidator.storage.engine import StoreError, Target, translate_errors

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ResumeState:
    """What a restarted management node needs: where the run stopped and the last known values."""

    last_t_s: float | None
    hosts: dict[str, HostSample]
    vms: dict[str, VmSample]
    power_states: dict[str, PowerState]
    meta: dict[str, str] = field(default_factory=dict)


class RunStore:
    """One run's database. Implements ``consolidator.control.ports.SampleSink``; use as a context manager."""

    def __init__(self, engine: Engine, target: Target, *, batch_rows: int = 50_000) -> None:
        self._engine = engine
        self.target = target
        self.batch_rows = batch_rows
        self._host_buf: list[HostSample] = []
        self._vm_buf: list[VmSample] = []
        self._power_buf: list[PowerSample] = []
        self._event_buf: list[Event] = []
        self._latest_host: dict[str, HostSample] = {}
        self._latest_vm: dict[str, VmSample] = {}
        with self._errors():
            self._conn: Connection = engine.connect()
        self._closed = False
        self._load_latest()

    # -- SampleSink -------------------------------------------------------------------------------
    def write_host_samples(self, samples: Sequence[HostSample]) -> None:
        """Buffer host samples (stored at the next flush) and update the in-memory latest values."""
        self._host_buf.extend(samples)
        latest = self._latest_host
        for s in samples:
            latest[s.host] = s
        if len(self._host_buf) >= self.batch_rows:
            self.flush()

    def write_vm_samples(self, samples: Sequence[VmSample]) -> None:
        self._vm_buf.extend(samples)
        latest = self._latest_vm
        for s in samples:
            latest[s.vm] = s
        if len(self._vm_buf) >= self.batch_rows:
            self.flush()

    def write_power_samples(self, samples: Sequence[PowerSample]) -> None:
        """Buffer meter readings from the Power Monitor (failed readings included, with their error)."""
        self._power_buf.extend(samples)
        if len(self._power_buf) >= self.batch_rows:
            self.flush()

    def write_event(self, event: Event) -> None:
        self._event_buf.append(event)

    def flush(self) -> None:
        """Commit every buffered row in one transaction; on failure the buffers are kept for a retry."""
        if self._closed or not (self._host_buf or self._vm_buf or self._power_buf or self._event_buf):
            return
        conn = self._conn
        with self._errors():
            if not conn.in_transaction():
                conn.begin()  # COPY goes through the driver: make SQLAlchemy's commit cover it
            try:
                _insert(conn, schema.host_samples, records.HOST_COLUMNS, map(records.host_row, self._host_buf))
                _insert(conn, schema.vm_samples, records.VM_COLUMNS, map(records.vm_row, self._vm_buf))
                _insert(conn, schema.power_samples, records.POWER_COLUMNS,
                        map(records.power_row, self._power_buf))
                if self._event_buf:
                    conn.execute(schema.events.insert(), [records.encode_event(e) for e in self._event_buf])
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
        self._host_buf.clear()
        self._vm_buf.clear()
        self._power_buf.clear()
        self._event_buf.clear()

    # -- lifecycle --------------------------------------------------------------------------------
    def close(self) -> None:
        """Flush and release the database. Safe to call twice."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            self._conn.close()
            self._engine.dispose()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def dialect(self) -> str:
        return self.target.dialect

    # -- latest values (memory) -------------------------------------------------------------------
    def latest_host(self, host: str) -> HostSample | None:
        return self._latest_host.get(host)

    def latest_vm(self, vm: str) -> VmSample | None:
        return self._latest_vm.get(vm)

    def latest_hosts(self) -> dict[str, HostSample]:
        return dict(self._latest_host)

    def latest_vms(self) -> dict[str, VmSample]:
        return dict(self._latest_vm)

    # -- queries (database; buffered rows are flushed first) --------------------------------------
    def host_window(self, host: str, start_s: float, end_s: float) -> list[HostSample]:
        """Samples of ``host`` with start_s <= t_s <= end_s, oldest first."""
        t = schema.host_samples
        q = select(t).where(t.c.host == host, t.c.t_s >= start_s, t.c.t_s <= end_s).order_by(t.c.t_s, t.c.id)
        return [records.host_from_row(r) for r in self._query(q)]

    def vm_window(self, vm: str, start_s: float, end_s: float) -> list[VmSample]:
        t = schema.vm_samples
        q = select(t).where(t.c.vm == vm, t.c.t_s >= start_s, t.c.t_s <= end_s).order_by(t.c.t_s, t.c.id)
        return [records.vm_from_row(r) for r in self._query(q)]

    def power_window(self, node: str, start_s: float, end_s: float) -> list[PowerSample]:
        t = schema.power_samples
        q = select(t).where(t.c.node == node, t.c.t_s >= start_s, t.c.t_s <= end_s).order_by(t.c.t_s, t.c.id)
        return [records.power_from_row(r) for r in self._query(q)]

    def host_average(self, host: str, start_s: float, end_s: float) -> float | None:
        """Mean CPU load of ``host`` over the window (the paper's 10 s average), None without samples."""
        t = schema.host_samples
        q = select(func.avg(t.c.cpu_load)).where(t.c.host == host, t.c.t_s >= start_s, t.c.t_s <= end_s)
        value = self._query(q)[0][0]
        return None if value is None else float(value)

    def events(self, start_s: float | None = None, end_s: float | None = None) -> list[Event]:
        """Stored events, oldest first, as typed domain events."""
        t = schema.events
        q = select(t.c.kind, t.c.payload).order_by(t.c.t_s, t.c.id)
        if start_s is not None:
            q = q.where(t.c.t_s >= start_s)
        if end_s is not None:
            q = q.where(t.c.t_s <= end_s)
        return [records.decode_event(r.kind, r.payload) for r in self._query(q)]

    def count(self, table: str) -> int:
        """Rows stored in ``table`` (buffered rows are flushed first)."""
        if table not in schema.ALL_TABLES:
            raise StoreError(f"no table {table!r} (tables: {', '.join(sorted(schema.ALL_TABLES))})")
        return int(self._query(select(func.count()).select_from(schema.ALL_TABLES[table]))[0][0])

    def set_meta(self, key: str, value: str) -> None:
        """Record run metadata (seed, scenario, ...) at once, committed."""
        self.flush()
        t = schema.run_meta
        with self._errors():
            self._conn.execute(t.delete().where(t.c.key == key))
            self._conn.execute(t.insert().values(key=key, value=value))
            self._conn.commit()

    def meta(self) -> dict[str, str]:
        return {r.key: r.value for r in self._query(select(schema.run_meta))}

    def resume_state(self) -> ResumeState:
        """Where a restarted manager picks up: last sample time, latest values, host power states."""
        last = [self._query(select(func.max(t.c.t_s)))[0][0]
                for t in (schema.host_samples, schema.vm_samples, schema.power_samples)]
        known = [v for v in last if v is not None]
        power: dict[str, PowerState] = {}
        for ev in self.events():
            if isinstance(ev, HostPowerChanged):
                power[ev.host] = ev.state
        return ResumeState(max(known) if known else None, self.latest_hosts(), self.latest_vms(),
                           power, self.meta())

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Flush, then run the block in one transaction on the store's connection (errors translated)."""
        self.flush()
        with self._errors():
            if self._conn.in_transaction():
                self._conn.commit()
            with self._conn.begin():
                yield self._conn

    # -- internals --------------------------------------------------------------------------------
    def _query(self, q: Any) -> list[Any]:
        self.flush()
        with self._errors():
            rows = list(self._conn.execute(q))
            self._conn.commit()  # end the read transaction so WAL checkpoints are not held back
        return rows

    def _errors(self) -> Any:
        return translate_errors(self.target.display)

    def _load_latest(self) -> None:
        """Fill the in-memory latest values from the database (a reopened store resumes from them)."""
        h, v = schema.host_samples, schema.vm_samples
        last_h = select(func.max(h.c.id)).group_by(h.c.host).scalar_subquery()
        last_v = select(func.max(v.c.id)).group_by(v.c.vm).scalar_subquery()
        for row in self._query(select(h).where(h.c.id.in_(last_h))):
            self._latest_host[row.host] = records.host_from_row(row)
        for row in self._query(select(v).where(v.c.id.in_(last_v))):
            self._latest_vm[row.vm] = records.vm_from_row(row)


def _insert(conn: Connection, table: Table, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> None:
    """Batched insert: SQLite's executemany, or PostgreSQL's COPY (several times faster than INSERT)."""
    rows = list(rows)
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        _copy_rows(conn, table, columns, rows)
        return
    marks = ", ".join("?" for _ in columns)
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})", rows)


def _copy_rows(conn: Connection, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    raw: Any = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        write: Callable[[tuple[Any, ...]], None] = copy.write_row
        for row in rows:
            write(row)
