"""The run database's tables (SQLAlchemy Core). Alembic revisions under ``migrations/`` create them.

Times are seconds since the run started (``t_s``); CPU in cores; power in watts. Raw samples are
kept per second; ``downsample`` (retention.py) folds old raw rows into the ``*_rollups`` tables.
Any change here needs a new Alembic revision (tests/storage checks that they agree).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# SQLite only makes INTEGER PRIMARY KEY an alias of the rowid (cheap appends); PostgreSQL wants BIGINT.
RowId = BigInteger().with_variant(Integer(), "sqlite")

host_samples = Table(
    "host_samples",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("t_s", Float, nullable=False),
    Column("host", String(128), nullable=False),
    Column("cpu_load", Float, nullable=False),
    Column("mem_used_mib", Float, nullable=False, server_default="0"),
    Column("watts", Float, nullable=True),
    Column("net_bytes_per_s", Float, nullable=False, server_default="0"),
    Column("disk_bytes_per_s", Float, nullable=False, server_default="0"),
    Index("ix_host_samples_host_t", "host", "t_s"),
)

vm_samples = Table(
    "vm_samples",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("t_s", Float, nullable=False),
    Column("vm", String(128), nullable=False),
    Column("host", String(128), nullable=False),
    Column("cpu_load", Float, nullable=False),
    Column("dirty_bytes_per_s", Float, nullable=True),
    Index("ix_vm_samples_vm_t", "vm", "t_s"),
)

# One row per meter reading. ``watts`` is NULL and ``error`` says why when a meter failed.
power_samples = Table(
    "power_samples",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("t_s", Float, nullable=False),
    Column("node", String(128), nullable=False),
    Column("meter", String(32), nullable=False),
    Column("watts", Float, nullable=True),
    Column("error", Text, nullable=True),
    Index("ix_power_samples_node_t", "node", "t_s"),
)

# Domain events (consolidator.domain.events) as JSON, with the columns one filters on.
events = Table(
    "events",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("t_s", Float, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("host", String(128), nullable=True),
    Column("vm", String(128), nullable=True),
    Column("payload", Text, nullable=False),
    Index("ix_events_t", "t_s"),
)

# Free-form run metadata (seed, scenario, policy...): what a restarted manager needs to resume.
run_meta = Table(
    "run_meta",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("value", Text, nullable=False),
)

host_rollups = Table(
    "host_rollups",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("t_s", Float, nullable=False),  # bucket start
    Column("bucket_s", Float, nullable=False),
    Column("host", String(128), nullable=False),
    Column("n", Integer, nullable=False),
    Column("cpu_load_avg", Float, nullable=False),
    Column("cpu_load_max", Float, nullable=False),
    Column("mem_used_mib_avg", Float, nullable=False),
    Column("watts_avg", Float, nullable=True),
    Column("net_bytes_per_s_avg", Float, nullable=False),
    Column("disk_bytes_per_s_avg", Float, nullable=False),
    Index("ix_host_rollups_host_t", "host", "t_s"),
)

vm_rollups = Table(
    "vm_rollups",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("t_s", Float, nullable=False),
    Column("bucket_s", Float, nullable=False),
    Column("vm", String(128), nullable=False),
    Column("host", String(128), nullable=False),  # the host of the bucket's last sample
    Column("n", Integer, nullable=False),
    Column("cpu_load_avg", Float, nullable=False),
    Column("cpu_load_max", Float, nullable=False),
    Column("dirty_bytes_per_s_avg", Float, nullable=True),
    Index("ix_vm_rollups_vm_t", "vm", "t_s"),
)

power_rollups = Table(
    "power_rollups",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("t_s", Float, nullable=False),
    Column("bucket_s", Float, nullable=False),
    Column("node", String(128), nullable=False),
    Column("meter", String(32), nullable=False),
    Column("n", Integer, nullable=False),
    Column("watts_avg", Float, nullable=True),
    Column("watts_max", Float, nullable=True),
    Column("errors", Integer, nullable=False),
    Index("ix_power_rollups_node_t", "node", "t_s"),
)

SAMPLE_TABLES = {"host_samples": host_samples, "vm_samples": vm_samples, "power_samples": power_samples}
ROLLUP_TABLES = {"host_rollups": host_rollups, "vm_rollups": vm_rollups, "power_rollups": power_rollups}
ALL_TABLES = {t.name: t for t in metadata.sorted_tables}
