"""Run storage: every sample, power reading and event of a run, on SQLite (default) or PostgreSQL.

``open_store(url_or_path)`` returns a ``RunStore`` (a ``SampleSink``) with its schema brought up to
date by Alembic. See docs/storage.md for the schema and the guarantees.
"""

from __future__ import annotations

from pathlib import Path

from consolidator.storage.engine import StoreError, make_engine, parse_target, upgrade_schema
from consolidator.storage.store import ResumeState, RunStore

__all__ = ["ResumeState", "RunStore", "StoreError", "open_store"]


def open_store(url_or_path: str | Path, *, batch_rows: int = 50_000) -> RunStore:
    """Open (creating if needed) a run database: a path or ``sqlite:///…`` → SQLite, ``postgresql://…``.

    Raises ``StoreError`` (a UserError) naming the file or URL when it is corrupt, locked, or does
    not answer.
    """
    target = parse_target(url_or_path)
    engine = make_engine(target)
    try:
        upgrade_schema(engine, target.display)
        return RunStore(engine, target, batch_rows=batch_rows)
    except BaseException:
        engine.dispose()
        raise
