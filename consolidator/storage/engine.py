"""Opening a run database: URL or path -> SQLAlchemy engine, SQLite tuning, Alembic upgrade, clear errors.

A plain path or ``sqlite:///path`` opens SQLite (WAL, one file per run); ``postgresql://...`` opens
PostgreSQL through psycopg 3. Every database error is turned into ``StoreError`` naming the file or
the URL (password hidden), so the CLI prints one line instead of a driver traceback.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy.exc
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from consolidator.domain.errors import UserError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 2.0  # how long a write waits for another process's lock before "locked"
PG_CONNECT_TIMEOUT_S = 5  # a PostgreSQL URL that does not answer fails after this


class StoreError(UserError):
    """The run database cannot be opened or written: corrupt, locked, unreachable, wrong password."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where a store lives: the SQLAlchemy URL and the name to show a person (no password)."""

    url: str
    display: str
    dialect: str  # "sqlite" or "postgresql"


def parse_target(url_or_path: str | Path) -> Target:
    """Map a path, ``sqlite:///…``, ``:memory:`` or ``postgresql://…`` onto a Target."""
    text = str(url_or_path)
    if text in (":memory:", "sqlite://", "sqlite:///:memory:"):
        return Target("sqlite://", ":memory:", "sqlite")
    if text.startswith("sqlite:///"):
        path = Path(text.removeprefix("sqlite:///"))
        return Target(f"sqlite:///{path}", str(path), "sqlite")
    if text.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        url = make_url(text.replace("postgres://", "postgresql://", 1)).set(drivername="postgresql+psycopg")
        shown = url.set(drivername="postgresql").render_as_string()  # password as ***
        return Target(url.render_as_string(hide_password=False), shown, "postgresql")
    if "://" in text:
        raise StoreError("unsupported database URL (use a path, sqlite:/// or postgresql://)", source=text)
    return Target(f"sqlite:///{Path(text)}", text, "sqlite")


def _tune_sqlite(dbapi_conn: object, _record: object) -> None:
    """WAL lets readers (reports) run beside the writer; NORMAL sync is durable at each commit in WAL."""
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    # Checkpoint the WAL every ~40 MB instead of 4 MB and cache 64 MB of pages: with a flush per
    # second the index pages are then rewritten far less often (about 2x the ingest rate here).
    cur.execute("PRAGMA wal_autocheckpoint=10000")
    cur.execute("PRAGMA cache_size=-65536")
    cur.close()
    # SQLite lacks floor() unless built with math functions; downsampling needs it.
    dbapi_conn.create_function("floor", 1, math.floor, deterministic=True)  # type: ignore[attr-defined]


def make_engine(target: Target) -> Engine:
    """Create the engine for a Target (no connection is made yet)."""
    if target.dialect == "sqlite":
        if target.display == ":memory:":
            engine = create_engine(target.url, poolclass=StaticPool,
                                   connect_args={"check_same_thread": False})
        else:
            path = Path(target.display)
            if not path.parent.exists():
                raise StoreError("folder does not exist", source=str(path))
            engine = create_engine(target.url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        event.listen(engine, "connect", _tune_sqlite)
        return engine
    return create_engine(target.url, connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S},
                         pool_pre_ping=True)


def describe_db_error(exc: BaseException) -> str:
    """One line for a database failure: the driver's message, with known causes named."""
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(str(orig).split())
    lowered = text.lower()
    if "file is not a database" in lowered or "malformed" in lowered:
        return f"not a valid SQLite database (corrupt?): {text}"
    if "database is locked" in lowered:
        return f"locked by another process (waited {SQLITE_BUSY_TIMEOUT_S:g} s): {text}"
    if "password authentication failed" in lowered:
        return f"wrong PostgreSQL user or password: {text}"
    if "connection" in lowered and ("refused" in lowered or "timeout" in lowered or "failed" in lowered):
        return f"PostgreSQL did not answer: {text}"
    return text


@contextlib.contextmanager
def translate_errors(display: str) -> Iterator[None]:
    """Re-raise database and file errors as StoreError naming ``display``."""
    try:
        yield
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise StoreError(describe_db_error(exc), source=display) from exc
    except OSError as exc:
        raise StoreError(str(exc), source=display) from exc


def alembic_config() -> Config:
    """An Alembic config for our bundled migrations (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    """The newest schema revision this code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def upgrade_schema(engine: Engine, display: str) -> str:
    """Bring the database to the newest schema revision; returns the revision it is now at."""
    head = head_revision()
    with translate_errors(display), engine.begin() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        if current == head:
            return head
        known = {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
        if current is not None and current not in known:
            raise StoreError(f"schema revision {current!r} is newer than this program ({head})",
                             source=display)
        log.info("upgrading %s schema %s -> %s", display, current, head)
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return head
