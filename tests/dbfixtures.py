"""The metadb under test, chosen by OBFLEET_TEST_DATABASE_URL.

Unset: a fresh SQLite file per test, copied from one migrated at the start of the run. A
PostgreSQL or MySQL-compatible server URL: one fresh database per test run (created here,
dropped at the end), migrated once, and brought back to "just migrated" before every test by
deleting every row and putting back the rows the migrations wrote (with ids counting from 1
again). Running the migrations for every test cost ~0.5 s of DDL a test on PostgreSQL; a test
that changes the schema gets it rebuilt.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, MetaData, create_engine, inspect, text
from sqlalchemy.engine import make_url

from obfleet.store.db import Database, normalize_url
from obfleet.store.migrate import upgrade

SERVER_URL = os.environ.get("OBFLEET_TEST_DATABASE_URL", "")


def _admin_engine(url: str):  # type: ignore[no-untyped-def]
    return create_engine(normalize_url(url), isolation_level="AUTOCOMMIT")


def _create_run_database(server_url: str, suffix: str = "") -> str:
    url = make_url(normalize_url(server_url))
    name = f"obfleet_test_{os.getpid()}{suffix}"
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


@contextmanager
def empty_server_database(suffix: str) -> Iterator[str]:
    """A database of its own on the server under test, empty (not migrated), dropped after."""
    assert SERVER_URL, "a PostgreSQL or MySQL-compatible server is needed"
    url = _create_run_database(SERVER_URL, suffix)
    try:
        yield url
    finally:
        _drop_run_database(SERVER_URL, url)


def migrated_to(url: str, revision: str) -> Database:
    """The test's metadb emptied, then migrated only up to `revision`: a metadb as an older
    obfleet left it, for a test of the migrations after it."""
    if SERVER_URL:
        empty_database(url)
    else:
        Database(url).engine.dispose()
        open(normalize_url(url).removeprefix("sqlite:///"), "wb").close()
    db = Database(url)
    upgrade(db, revision)
    return db


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


def _auto_increments(conn: Connection) -> dict[str, int]:
    """Each MySQL-compatible table's next auto-increment id."""
    if conn.dialect.name != "mysql":
        return {}
    if not getattr(conn.dialect, "is_mariadb", False):
        conn.execute(text("SET SESSION information_schema_stats_expiry = 0"))  # MySQL 8 caches
    rows = conn.execute(
        text(
            "SELECT table_name, auto_increment FROM information_schema.tables "
            "WHERE table_schema = DATABASE() AND auto_increment IS NOT NULL"
        )
    )
    return {name: int(value) for name, value in rows}


def _moved_counters(conn: Connection, seed: dict[str, int]) -> list[str]:
    """The tables whose next auto-increment id is no longer the one the migrations left."""
    return [name for name, value in _auto_increments(conn).items() if seed.get(name) != value]


class MigratedDatabase:
    """A server database kept at "just migrated": its schema and the migrations' own rows."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(normalize_url(url))
        self._migrate()

    def _migrate(self) -> None:
        empty_database(self.url)
        db = Database(self.url)
        upgrade(db)
        db.dispose()
        self.metadata = MetaData()
        self.metadata.reflect(self.engine)
        with self.engine.connect() as conn:
            self.seed = {
                name: [dict(row._mapping) for row in conn.execute(table.select())]
                for name, table in self.metadata.tables.items()
            }
            self.seed_counters = _auto_increments(conn)

    def _schema_intact(self) -> bool:
        with self.engine.connect() as conn:
            names = set(inspect(conn).get_table_names())
            if names != set(self.metadata.tables):
                return False
            version = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        return version == [(v["version_num"],) for v in self.seed["alembic_version"]]

    def reset(self) -> None:
        if not self._schema_intact():
            self._migrate()
            return
        postgres = self.engine.dialect.name == "postgresql"
        with self.engine.begin() as conn:
            # Foreign keys off for this transaction: rows go in any order.
            conn.execute(
                text(
                    "SET LOCAL session_replication_role = replica"
                    if postgres
                    else "SET FOREIGN_KEY_CHECKS = 0"
                )
            )
            # ALTER TABLE is DDL and slow on MariaDB (~5 ms a table): only the counters a test
            # moved are put back.
            moved = [] if postgres else _moved_counters(conn, self.seed_counters)
            for table in self.metadata.tables.values():
                conn.execute(table.delete())
            for name in moved:
                conn.execute(text(f"ALTER TABLE `{name}` AUTO_INCREMENT = 1"))
            if postgres:
                sequences = conn.execute(
                    text(
                        "SELECT sequence_name FROM information_schema.sequences "
                        "WHERE sequence_schema = current_schema()"
                    )
                ).scalars()
                for sequence in list(sequences):
                    conn.execute(text(f'ALTER SEQUENCE "{sequence}" RESTART WITH 1'))
            for name, rows in self.seed.items():
                if rows:
                    conn.execute(self.metadata.tables[name].insert(), rows)
            if not postgres:
                conn.execute(text("SET FOREIGN_KEY_CHECKS = 1"))

    def dispose(self) -> None:
        self.engine.dispose()


@pytest.fixture(scope="session")
def server_database() -> Iterator[MigratedDatabase | None]:
    if not SERVER_URL:
        yield None
        return
    run_url = _create_run_database(SERVER_URL)
    migrated = MigratedDatabase(run_url)
    yield migrated
    migrated.dispose()
    _drop_run_database(SERVER_URL, run_url)


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite metadb migrated once per run, copied for each test that wants one."""
    path = tmp_path_factory.mktemp("template") / "metadb.sqlite"
    db = Database(f"sqlite:///{path}")
    upgrade(db)
    db.dispose()  # the last connection closed: the WAL is folded in, the file stands alone
    return path


@pytest.fixture
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, server_database: MigratedDatabase | None
) -> str:
    if server_database is None:
        path = tmp_path / "metadb.sqlite"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), path)
        return f"sqlite:///{path}"
    server_database.reset()
    return server_database.url


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    upgrade(db)
    yield db
    db.dispose()
