"""Initial run database: samples, power readings, events, run metadata and rollups.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id() -> sa.Column[int]:
    return sa.Column("id", RowId, primary_key=True, autoincrement=True)


def upgrade() -> None:
    op.create_table(
        "host_samples", _id(),
        sa.Column("t_s", sa.Float, nullable=False),
        sa.Column("host", sa.String(128), nullable=False),
        sa.Column("cpu_load", sa.Float, nullable=False),
        sa.Column("mem_used_mib", sa.Float, nullable=False, server_default="0"),
        sa.Column("watts", sa.Float, nullable=True),
        sa.Column("net_bytes_per_s", sa.Float, nullable=False, server_default="0"),
        sa.Column("disk_bytes_per_s", sa.Float, nullable=False, server_default="0"),
    )
    op.create_index("ix_host_samples_host_t", "host_samples", ["host", "t_s"])
    op.create_table(
        "vm_samples", _id(),
        sa.Column("t_s", sa.Float, nullable=False),
        sa.Column("vm", sa.String(128), nullable=False),
        sa.Column("host", sa.String(128), nullable=False),
        sa.Column("cpu_load", sa.Float, nullable=False),
        sa.Column("dirty_bytes_per_s", sa.Float, nullable=True),
    )
    op.create_index("ix_vm_samples_vm_t", "vm_samples", ["vm", "t_s"])
    op.create_table(
        "power_samples", _id(),
        sa.Column("t_s", sa.Float, nullable=False),
        sa.Column("node", sa.String(128), nullable=False),
        sa.Column("meter", sa.String(32), nullable=False),
        sa.Column("watts", sa.Float, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_power_samples_node_t", "power_samples", ["node", "t_s"])
    op.create_table(
        "events", _id(),
        sa.Column("t_s", sa.Float, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("host", sa.String(128), nullable=True),
        sa.Column("vm", sa.String(128), nullable=True),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_index("ix_events_t", "events", ["t_s"])
    op.create_table(
        "run_meta",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    _create_rollups()


def _create_rollups() -> None:
    op.create_table(
        "host_rollups", _id(),
        sa.Column("t_s", sa.Float, nullable=False),
        sa.Column("bucket_s", sa.Float, nullable=False),
        sa.Column("host", sa.String(128), nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("cpu_load_avg", sa.Float, nullable=False),
        sa.Column("cpu_load_max", sa.Float, nullable=False),
        sa.Column("mem_used_mib_avg", sa.Float, nullable=False),
        sa.Column("watts_avg", sa.Float, nullable=True),
        sa.Column("net_bytes_per_s_avg", sa.Float, nullable=False),
        sa.Column("disk_bytes_per_s_avg", sa.Float, nullable=False),
    )
    op.create_index("ix_host_rollups_host_t", "host_rollups", ["host", "t_s"])
    op.create_table(
        "vm_rollups", _id(),
        sa.Column("t_s", sa.Float, nullable=False),
        sa.Column("bucket_s", sa.Float, nullable=False),
        sa.Column("vm", sa.String(128), nullable=False),
        sa.Column("host", sa.String(128), nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("cpu_load_avg", sa.Float, nullable=False),
        sa.Column("cpu_load_max", sa.Float, nullable=False),
        sa.Column("dirty_bytes_per_s_avg", sa.Float, nullable=True),
    )
    op.create_index("ix_vm_rollups_vm_t", "vm_rollups", ["vm", "t_s"])
    op.create_table(
        "power_rollups", _id(),
        sa.Column("t_s", sa.Float, nullable=False),
        sa.Column("bucket_s", sa.Float, nullable=False),
        sa.Column("node", sa.String(128), nullable=False),
        sa.Column("meter", sa.String(32), nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("watts_avg", sa.Float, nullable=True),
        sa.Column("watts_max", sa.Float, nullable=True),
        sa.Column("errors", sa.Integer, nullable=False),
    )
    op.create_index("ix_power_rollups_node_t", "power_rollups", ["node", "t_s"])


def downgrade() -> None:
    for name in ("power_rollups", "vm_rollups", "host_rollups", "run_meta", "events",
                 "power_samples", "vm_samples", "host_samples"):
        op.drop_table(name)
