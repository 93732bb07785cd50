"""The migrations build exactly the schema the models describe, on every database."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import delete, text

from obfleet.store.base import Base
from obfleet.store.db import Database
from obfleet.store.migrate import current_revision, head_revision, upgrade
from obfleet.store.models.credentials import Credential


def test_migrated_schema_matches_models(database):
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []
    assert current_revision(database) == head_revision()


def test_a_deleted_rows_id_is_not_handed_out_again(database):
    """A FAILED task names its host or cluster by id: retried after that row was deleted, it
    must not find a newer row under the same id (SQLite reuses the highest id otherwise)."""

    def add(name: str) -> int:
        with database.transaction() as session:
            row = Credential(
                name=name,
                target_type="HOST",
                auth_type="PASSWORD",
                username="admin",
                secret_encrypted="x",
            )
            session.add(row)
            session.flush()
            return row.id

    add("first")
    deleted = add("second")
    with database.transaction() as session:
        session.execute(delete(Credential).where(Credential.id == deleted))
    assert add("third") > deleted


def test_sqlite_tables_rebuilt_for_autoincrement_keep_their_rows(tmp_path):
    """0006 rebuilds SQLite tables (drop, rename a copy): rows, ids and the rows of child tables
    survive, although dropping a parent with foreign keys on would cascade into its children."""
    db = Database(f"sqlite:///{tmp_path / 'metadb.sqlite'}")
    upgrade(db, "0005")
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO iam_user (id, username, password_hash, enabled, create_time, "
                "update_time) VALUES (7, 'ops', 'h', 1, '2026-01-01', '2026-01-01')"
            )
        )
        conn.execute(text("INSERT INTO iam_user_role (user_id, role) VALUES (7, 'ADMIN')"))
    upgrade(db)
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT id, username FROM iam_user")).all() == [(7, "ops")]
        roles = conn.execute(text("SELECT user_id, role FROM iam_user_role")).all()
        assert roles == [(7, "ADMIN")]
        sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'iam_user'")).scalar()
        assert "AUTOINCREMENT" in sql
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    db.dispose()


def test_a_sqlite_migration_leaving_a_dangling_reference_is_rolled_back(tmp_path):
    """Foreign keys are off while SQLite migrates: references are checked before the commit."""
    db = Database(f"sqlite:///{tmp_path / 'metadb.sqlite'}")
    upgrade(db, "0005")
    with db.engine.connect() as conn:
        raw = conn.connection.driver_connection
        raw.execute("PRAGMA foreign_keys=OFF")
        raw.execute("INSERT INTO iam_user_role (user_id, role) VALUES (99, 'ADMIN')")
        raw.execute("PRAGMA foreign_keys=ON")
    with pytest.raises(RuntimeError, match="reference nothing"):
        upgrade(db)
    assert current_revision(db) == "0005"
    db.dispose()


def test_recorded_ob_clusters_no_longer_read_running(tmp_path):
    """0009: obfleet never connected to a recorded cluster; RUNNING becomes UNAVAILABLE."""
    db = Database(f"sqlite:///{tmp_path / 'metadb.sqlite'}")
    upgrade(db, "0008")
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO ob_cluster (id, name, ob_cluster_id, type, status, root_servers, "
                "create_time, update_time) VALUES (1, 'ob', 1, 'PRIMARY', 'RUNNING', '[]', "
                "'2026-01-01', '2026-01-01')"
            )
        )
    upgrade(db)
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM ob_cluster")).scalar() == "UNAVAILABLE"
    db.dispose()
