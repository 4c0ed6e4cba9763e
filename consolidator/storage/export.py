"""CSV export of a run database: one ``<table>.csv`` per table, header row, rows in insertion order."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select

from consolidator.storage import schema
from consolidator.storage.engine import StoreError
from consolidator.storage.store import RunStore

EXPORTABLE = tuple(name for name in schema.ALL_TABLES)


def export_csv(store: RunStore, out_dir: Path, tables: Sequence[str] | None = None) -> dict[str, int]:
    """Write the chosen tables (all by default) as CSV into ``out_dir``; returns rows written per table."""
    chosen = list(tables) if tables else list(EXPORTABLE)
    unknown = [t for t in chosen if t not in schema.ALL_TABLES]
    if unknown:
        raise StoreError(f"no table {unknown[0]!r} (tables: {', '.join(EXPORTABLE)})", field="--table")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the output folder: {exc.strerror}", source=str(out_dir)) from exc
    written: dict[str, int] = {}
    with store.transaction() as conn:
        for name in chosen:
            table = schema.ALL_TABLES[name]
            order = table.c.id if "id" in table.c else table.c[next(iter(table.c.keys()))]
            result = conn.execution_options(yield_per=5000).execute(select(table).order_by(order))
            written[name] = _write(out_dir / f"{name}.csv", list(table.c.keys()), result)
    return written


def _write(path: Path, header: list[str], rows: object) -> int:
    count = 0
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:  # type: ignore[attr-defined]
            writer.writerow(["" if v is None else v for v in row])
            count += 1
    return count
