"""Storage fixtures: a private PostgreSQL server per test session (Debian's postgresql package)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from consolidator.storage.pgtemp import PostgresUnavailable, TempPostgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[TempPostgres]:
    """A real PostgreSQL on 127.0.0.1 with password auth, started once (scripts/setup.d/30-services.sh)."""
    try:
        pg = TempPostgres()
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL server not installed: {exc}")
    pg.start()
    yield pg
    pg.stop()


@pytest.fixture()
def postgres_url(postgres_server: TempPostgres) -> Iterator[str]:
    """The server's URL with every table dropped after the test (each test starts from an empty database)."""
    yield postgres_server.url
    from sqlalchemy import create_engine, text

    engine = create_engine(postgres_server.url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
