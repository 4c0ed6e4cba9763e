"""Retention for long runs: fold old per-second samples into per-bucket rollups, drop old rollups.

Buckets are aligned to multiples of ``bucket_s`` and the cut-off is rounded down to a bucket
boundary, so a bucket is never split between two calls. Everything happens in one transaction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import Connection, Table, case, delete, func, insert, literal, select

from consolidator.domain.errors import UserError
from consolidator.storage import schema
from consolidator.storage.store import RunStore


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Keep raw samples for ``raw_keep_s``, then ``bucket_s`` rollups for ``rollup_keep_s`` (None: forever)."""

    raw_keep_s: float = 3600.0
    bucket_s: float = 60.0
    rollup_keep_s: float | None = None

    def __post_init__(self) -> None:
        if not (self.raw_keep_s >= 0 and self.bucket_s > 0):
            raise UserError("raw_keep_s must be >= 0 and bucket_s > 0", field="retention")
        if self.rollup_keep_s is not None and self.rollup_keep_s < self.raw_keep_s:
            raise UserError("rollup_keep_s must be >= raw_keep_s", field="retention.rollup_keep_s")


@dataclass(frozen=True, slots=True)
class RetentionResult:
    raw_rows_folded: int
    rollup_rows_added: int
    rollup_rows_dropped: int


def apply_retention(store: RunStore, now_s: float, policy: RetentionPolicy) -> RetentionResult:
    """Downsample samples older than ``now_s - raw_keep_s`` and drop rollups past ``rollup_keep_s``."""
    cutoff = math.floor((now_s - policy.raw_keep_s) / policy.bucket_s) * policy.bucket_s
    folded = added = dropped = 0
    with store.transaction() as conn:
        for raw, fold in ((schema.host_samples, _fold_hosts), (schema.vm_samples, _fold_vms),
                          (schema.power_samples, _fold_power)):
            n_raw = conn.execute(select(func.count()).select_from(raw).where(raw.c.t_s < cutoff)).scalar_one()
            if n_raw:
                added += fold(conn, cutoff, policy.bucket_s)
                conn.execute(delete(raw).where(raw.c.t_s < cutoff))
                folded += n_raw
        if policy.rollup_keep_s is not None:
            limit = now_s - policy.rollup_keep_s
            for table in schema.ROLLUP_TABLES.values():
                dropped += conn.execute(delete(table).where(table.c.t_s + table.c.bucket_s <= limit)).rowcount
    return RetentionResult(folded, added, dropped)


def _bucket(table: Table, bucket_s: float):  # type: ignore[no-untyped-def]
    return (func.floor(table.c.t_s / bucket_s) * bucket_s).label("bucket")


def _fold(conn: Connection, target: Table, cols: list[str], query) -> int:  # type: ignore[no-untyped-def]
    """INSERT … SELECT the buckets; returns rows added (counted: drivers disagree on rowcount here)."""
    before = conn.execute(select(func.count()).select_from(target)).scalar_one()
    conn.execute(insert(target).from_select(cols, query))
    return int(conn.execute(select(func.count()).select_from(target)).scalar_one() - before)


def _fold_hosts(conn: Connection, cutoff: float, bucket_s: float) -> int:
    t = schema.host_samples
    b = _bucket(t, bucket_s)
    q = (select(b, literal(bucket_s), t.c.host, func.count(), func.avg(t.c.cpu_load), func.max(t.c.cpu_load),
                func.avg(t.c.mem_used_mib), func.avg(t.c.watts), func.avg(t.c.net_bytes_per_s),
                func.avg(t.c.disk_bytes_per_s))
         .where(t.c.t_s < cutoff).group_by(b, t.c.host))
    cols = ["t_s", "bucket_s", "host", "n", "cpu_load_avg", "cpu_load_max", "mem_used_mib_avg", "watts_avg",
            "net_bytes_per_s_avg", "disk_bytes_per_s_avg"]
    return _fold(conn, schema.host_rollups, cols, q)


def _fold_vms(conn: Connection, cutoff: float, bucket_s: float) -> int:
    t = schema.vm_samples
    b = _bucket(t, bucket_s)
    # A VM that migrated inside a bucket ran on two hosts; the rollup keeps max(host) by name.
    q = (select(b, literal(bucket_s), t.c.vm, func.max(t.c.host), func.count(), func.avg(t.c.cpu_load),
                func.max(t.c.cpu_load), func.avg(t.c.dirty_bytes_per_s))
         .where(t.c.t_s < cutoff).group_by(b, t.c.vm))
    cols = ["t_s", "bucket_s", "vm", "host", "n", "cpu_load_avg", "cpu_load_max", "dirty_bytes_per_s_avg"]
    return _fold(conn, schema.vm_rollups, cols, q)


def _fold_power(conn: Connection, cutoff: float, bucket_s: float) -> int:
    t = schema.power_samples
    b = _bucket(t, bucket_s)
    failed = func.sum(case((t.c.watts.is_(None), 1), else_=0))
    q = (select(b, literal(bucket_s), t.c.node, t.c.meter, func.count(), func.avg(t.c.watts),
                func.max(t.c.watts), failed)
         .where(t.c.t_s < cutoff).group_by(b, t.c.node, t.c.meter))
    cols = ["t_s", "bucket_s", "node", "meter", "n", "watts_avg", "watts_max", "errors"]
    return _fold(conn, schema.power_rollups, cols, q)
