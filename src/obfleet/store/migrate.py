"""Running Alembic migrations against the metadb, without an alembic.ini."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from obfleet.store.db import Database

MIGRATIONS = Path(__file__).with_name("migrations")
# The advisory lock replicas take to migrate: PostgreSQL's is a 64-bit number (here the bytes of
# "obfleet" read as one), MySQL's a name; held a session at a time, waited for by the rest.
MIGRATION_LOCK_ID = int.from_bytes(b"obfleet", "big")
MIGRATION_LOCK_NAME = "obfleet.migrations"
MIGRATION_LOCK_WAIT_S = 600


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(db: Database, revision: str = "head") -> None:
    if revision == "head" and current_revision(db) == head_revision():
        return  # up to date: nothing for Alembic to do, and loading its scripts costs ~0.1 s
    engine = db.engine.execution_options(obfleet_write=True)
    with (
        engine.connect() as conn,
        _sqlite_foreign_keys_off(conn),
        _migration_lock(conn),
        conn.begin(),
    ):
        config = alembic_config()
        config.attributes["connection"] = conn
        # Alembic reads the current revision here, under the lock: a replica that waited finds
        # the schema its peer just migrated, and has nothing left to do.
        command.upgrade(config, revision)
        _refuse_dangling_references(conn)


@contextmanager
def _migration_lock(conn: Connection) -> Iterator[None]:
    """One migrating replica at a time: replicas started together on an empty metadb would
    otherwise all create the same tables (and all but one fail). The lock is the server's own,
    held by this connection's session, so a replica that dies while migrating releases it.
    SQLite needs none: its migrations' BEGIN IMMEDIATE already excludes every other writer."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK_ID})")
        conn.commit()  # the lock outlives this transaction; the migrations begin their own
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_ID})")
            conn.commit()
    elif dialect == "mysql":
        got = conn.exec_driver_sql(
            f"SELECT GET_LOCK('{MIGRATION_LOCK_NAME}', {MIGRATION_LOCK_WAIT_S})"
        ).scalar()
        conn.commit()
        if got != 1:
            raise RuntimeError(
                f"another replica has held the migration lock for {MIGRATION_LOCK_WAIT_S} s "
                f"(GET_LOCK('{MIGRATION_LOCK_NAME}')): is a migration stuck?"
            )
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SELECT RELEASE_LOCK('{MIGRATION_LOCK_NAME}')")
            conn.commit()
    else:
        yield


@contextmanager
def _sqlite_foreign_keys_off(conn: Connection) -> Iterator[None]:
    """SQLite rebuilds a table to alter it (drop, then rename a copy), and a parent table
    dropped with foreign keys on takes its children's rows along (ON DELETE CASCADE) or
    fails. The pragma is a no-op inside a transaction: this runs before the migrations'
    own transaction begins."""
    if conn.dialect.name != "sqlite":
        yield
        return
    raw = conn.connection.driver_connection
    assert raw is not None
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        raw.execute("PRAGMA foreign_keys=ON")


def _refuse_dangling_references(conn: Connection) -> None:
    """With SQLite's foreign keys off, check every reference before the migrations commit."""
    if conn.dialect.name != "sqlite":
        return
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        raise RuntimeError(f"the migrations left rows that reference nothing: {broken}")


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@functools.cache
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
