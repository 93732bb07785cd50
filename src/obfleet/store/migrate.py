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


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(db: Database, revision: str = "head") -> None:
    if revision == "head" and current_revision(db) == head_revision():
        return  # up to date: nothing for Alembic to do, and loading its scripts costs ~0.1 s
    engine = db.engine.execution_options(obfleet_write=True)
    with engine.connect() as conn, _sqlite_foreign_keys_off(conn), conn.begin():
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
        _refuse_dangling_references(conn)


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
