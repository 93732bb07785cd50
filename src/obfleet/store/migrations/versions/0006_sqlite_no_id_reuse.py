"""SQLite: never hand a deleted row's id out again (AUTOINCREMENT)

Revision ID: 0006
Revises: 0005

Without AUTOINCREMENT, SQLite gives a new row the highest id in use plus one, so the id of a
deleted last row comes back, and a FAILED task that names it would, retried, act on the new
row. SQLite cannot add AUTOINCREMENT to a table: each one is rebuilt, rows and ids kept.
PostgreSQL and MySQL-compatible servers never reuse an id, and are left as they are.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The tables whose rows get deleted (store.base.NO_ID_REUSE), parents before children.
TABLES = (
    "credential",
    "iam_user",
    "iam_access_key",
    "software_package",
    "host",
    "ob_cluster",
    "obproxy_cluster",
    "obproxy_link",
    "obproxy_server",
    "configserver_registration",
)


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in TABLES:
        with op.batch_alter_table(
            name, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass
