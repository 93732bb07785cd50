"""The metadb under test, chosen by OBFLEET_TEST_DATABASE_URL.

Unset: a fresh SQLite file per test. A PostgreSQL or MySQL-compatible server URL: one fresh
database per test run (created here, dropped at the end), emptied before every test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from obfleet.store.db import Database, normalize_url
from obfleet.store.migrate import upgrade

SERVER_URL = os.environ.get("OBFLEET_TEST_DATABASE_URL", "")


def _admin_engine(url: str):  # type: ignore[no-untyped-def]
    return create_engine(normalize_url(url), isolation_level="AUTOCOMMIT")


def _create_run_database(server_url: str) -> str:
    url = make_url(normalize_url(server_url))
    name = f"obfleet_test_{os.getpid()}"
    engine = _admin_engine(server_url)
    with engine.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def _drop_run_database(server_url: str, run_url: str) -> None:
    name = make_url(run_url).database
    engine = _admin_engine(server_url)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                )
            )
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
    engine.dispose()


def empty_database(url: str) -> None:
    """Drop every table (alembic's version table too) so migrations run from scratch."""
    engine = create_engine(normalize_url(url))
    with engine.begin() as conn:
        names = inspect(conn).get_table_names()
        if engine.dialect.name == "postgresql":
            for name in names:
                conn.execute(text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))
        else:
            conn.execute(text("SET FOREIGN_KEY_CHECKS = 0"))
            for name in names:
                conn.execute(text(f"DROP TABLE IF EXISTS `{name}`"))
            conn.execute(text("SET FOREIGN_KEY_CHECKS = 1"))
    engine.dispose()


@pytest.fixture(scope="session")
def server_database_url() -> Iterator[str | None]:
    if not SERVER_URL:
        yield None
        return
    run_url = _create_run_database(SERVER_URL)
    yield run_url
    _drop_run_database(SERVER_URL, run_url)


@pytest.fixture
def database_url(tmp_path: Path, server_database_url: str | None) -> str:
    if server_database_url is None:
        return f"sqlite:///{tmp_path / 'metadb.sqlite'}"
    empty_database(server_database_url)
    return server_database_url


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    upgrade(db)
    yield db
    db.dispose()
