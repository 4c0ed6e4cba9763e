"""Alembic environment: run programmatically by consolidator.storage.engine on the open connection."""

from __future__ import annotations

from alembic import context

from consolidator.storage.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # the `alembic` command line, for writing new revisions
    raise RuntimeError("run migrations through consolidator.storage.open_store (it passes a connection)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite's ALTER TABLE is limited
)
with context.begin_transaction():
    context.run_migrations()
