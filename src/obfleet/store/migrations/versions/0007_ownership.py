"""ownership in the schema: task_target, and the task holding each obproxy row

Revision ID: 0007
Revises: 0006

What callers used to reconstruct by reading tasks' JSON contexts is kept in columns from now
on: `task_target` (what each task acts on), and on `obproxy_server` the task that holds the row
(`task_id`, NULL when settled), how it came to be (`origin`) and whether its install proved the
install path its own (`install_checked`). Existing metadbs are backfilled here, once, from the
contexts of the tasks that can still run (RUNNING, and FAILED ones a person may retry) with the
same rules the readers used; this is the last place that reads them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UNFINISHED = ("RUNNING", "FAILED")
SETTLED = ("RUNNING", "UNAVAILABLE")
INSTALL_TASK = "Install obproxy"
TAKE_OVER_TASK = "Take over obproxy"
PORT_TASKS = (INSTALL_TASK, TAKE_OVER_TASK)
CHECK_STEP = "Check if process not exist"
KEPT_ID = "obproxy_server_id"  # batchAdd and take-over; a create's branch i: obproxy_server_id_i

tasks = sa.table(
    "task_instance",
    sa.column("id", sa.BigInteger),
    sa.column("name", sa.String),
    sa.column("status", sa.String),
    sa.column("host_id", sa.BigInteger),
    sa.column("context", sa.JSON),
)
subtasks = sa.table(
    "subtask_instance",
    sa.column("task_id", sa.BigInteger),
    sa.column("name", sa.String),
    sa.column("parallel_idx", sa.Integer),
    sa.column("status", sa.String),
)
servers = sa.table(
    "obproxy_server",
    sa.column("id", sa.BigInteger),
    sa.column("cluster_id", sa.BigInteger),
    sa.column("host_id", sa.BigInteger),
    sa.column("sql_port", sa.Integer),
    sa.column("install_path", sa.String),
    sa.column("version", sa.String),
    sa.column("status", sa.String),
    sa.column("task_id", sa.BigInteger),
    sa.column("origin", sa.String),
    sa.column("install_checked", sa.Boolean),
)
targets = sa.table(
    "task_target",
    sa.column("task_id", sa.BigInteger),
    sa.column("kind", sa.String),
    sa.column("key", sa.String),
)


def upgrade() -> None:
    op.create_table(
        "task_target",
        sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["task_instance.id"],
            name=op.f("fk_task_target_task_id_task_instance"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("task_id", "kind", "key", name=op.f("pk_task_target")),
    )
    op.create_index("ix_task_target_kind_key", "task_target", ["kind", "key"], unique=False)
    op.add_column("obproxy_server", sa.Column("task_id", sa.BigInteger(), nullable=True))
    op.add_column(
        "obproxy_server",
        sa.Column("origin", sa.String(length=16), nullable=False, server_default="INSTALL"),
    )
    op.add_column(
        "obproxy_server",
        sa.Column("install_checked", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index(op.f("ix_obproxy_server_task_id"), "obproxy_server", ["task_id"], unique=False)
    _backfill(op.get_bind())


def downgrade() -> None:
    op.drop_index(op.f("ix_obproxy_server_task_id"), table_name="obproxy_server")
    with op.batch_alter_table("obproxy_server") as batch:
        batch.drop_column("install_checked")
        batch.drop_column("origin")
        batch.drop_column("task_id")
    op.drop_index("ix_task_target_kind_key", table_name="task_target")
    op.drop_table("task_target")


# --- the backfill: the old readers' rules, applied once ------------------------------------------


def _maps(context: Any) -> tuple[dict[str, str], dict[str, list[str]]]:
    context = context or {}
    return context.get("stringMap") or {}, context.get("listMap") or {}


def _hosts(strings: dict[str, str], lists: dict[str, list[str]]) -> list[str]:
    one = strings.get("host_id")
    return [*([one] if one else []), *lists.get("host_ids", [])]


def _kept_ids(strings: dict[str, str]) -> list[str]:
    return [v for k, v in strings.items() if k == KEPT_ID or k.startswith(f"{KEPT_ID}_")]


def _targets_of(
    name: str, host_id: int | None, strings: dict[str, str], lists: dict[str, list[str]]
) -> Iterator[tuple[str, str]]:
    hosts = _hosts(strings, lists)
    for host in [*([str(host_id)] if host_id is not None else []), *hosts]:
        yield "host", host
    if strings.get("obproxy_cluster_id"):
        yield "obproxy_cluster", strings["obproxy_cluster_id"]
    for obproxy in [*lists.get("obproxy_server_ids", []), *_kept_ids(strings)]:
        yield "obproxy", obproxy
    if name in PORT_TASKS and strings.get("sql_port"):
        for host in hosts:
            yield "obproxy_port", f"{host}:{strings['sql_port']}"


def _install_branch(strings: dict[str, str], lists: dict[str, list[str]], row: Any) -> int | None:
    """The parallelIdx of `row`'s branch in an install task's context (-1: a one-host task),
    None when the task is not the row's install."""
    for key, value in strings.items():
        if value == str(row.id) and key.startswith(f"{KEPT_ID}_"):
            return int(key.rpartition("_")[2])
    if strings.get(KEPT_ID) == str(row.id):
        return -1
    same = (
        strings.get("obproxy_cluster_id") == str(row.cluster_id)
        and strings.get("sql_port") == str(row.sql_port)
        and strings.get("install_path") == row.install_path
    )
    if not same:
        return None
    if strings.get("host_id") == str(row.host_id):
        return -1
    hosts = lists.get("host_ids", [])
    return hosts.index(str(row.host_id)) if str(row.host_id) in hosts else None


def _install_checked(conn: sa.Connection, installs: Sequence[Any], row: Any) -> bool:
    """Whether the newest install task of `row` passed its check of the host."""
    for task in installs:
        strings, lists = _maps(task.context)
        branch = _install_branch(strings, lists, row)
        if branch is None:
            continue
        status = conn.scalar(
            sa.select(subtasks.c.status).where(
                subtasks.c.task_id == task.id,
                subtasks.c.name == CHECK_STEP,
                subtasks.c.parallel_idx == branch,
            )
        )
        if status is not None:
            return bool(status == "SUCCESSFUL")
    return False


def _holder(unfinished: Sequence[Any], row: Any) -> int | None:
    """The newest unfinished task naming the row: by id, or (an install or take-over that
    knew no id yet) by its cluster, host and SQL port."""
    for task in unfinished:
        strings, lists = _maps(task.context)
        if strings.get("obproxy_cluster_id") != str(row.cluster_id):
            continue
        if str(row.id) in [*lists.get("obproxy_server_ids", []), *_kept_ids(strings)]:
            return int(task.id)
        port = f"{row.host_id}:{row.sql_port}"
        if (task.name in PORT_TASKS) and port in {
            f"{h}:{strings.get('sql_port')}" for h in _hosts(strings, lists)
        }:
            return int(task.id)
    return None


def _backfill(conn: sa.Connection) -> None:
    unfinished = conn.execute(
        sa.select(tasks).where(tasks.c.status.in_(UNFINISHED)).order_by(tasks.c.id.desc())
    ).all()
    rows = []
    for task in unfinished:
        strings, lists = _maps(task.context)
        found = dict.fromkeys(_targets_of(task.name, task.host_id, strings, lists))
        rows += [{"task_id": task.id, "kind": kind, "key": key} for kind, key in found]
    if rows:
        conn.execute(sa.insert(targets), rows)

    taken_over: dict[str, int] = defaultdict(int)
    for task in conn.execute(sa.select(tasks).where(tasks.c.name == TAKE_OVER_TASK)):
        for obproxy in _kept_ids(_maps(task.context)[0]):
            taken_over[obproxy] += 1
    installs = conn.execute(
        sa.select(tasks).where(tasks.c.name == INSTALL_TASK).order_by(tasks.c.id.desc())
    ).all()
    for row in conn.execute(sa.select(servers)).all():
        taken = str(row.id) in taken_over
        values: dict[str, Any] = {
            "origin": "TAKE_OVER" if taken else "INSTALL",
            "install_checked": (not taken)
            and (row.version is not None or _install_checked(conn, installs, row)),
            "task_id": None if row.status in SETTLED else _holder(unfinished, row),
        }
        conn.execute(sa.update(servers).where(servers.c.id == row.id).values(**values))
