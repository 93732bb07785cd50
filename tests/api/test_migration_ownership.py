"""Migration 0007 backfills what was read out of task contexts before it: each unfinished
task's targets, and each obproxy row's holder, origin and install check. The metadb is written
at 0006 as the code of that revision wrote it: tasks with its context keys, rows without
owners."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import JSON, MetaData, insert, select, type_coerce

from obfleet.engine.targets import running_tasks_on
from obfleet.errors import ApiError
from obfleet.records import targets
from obfleet.services import hosts as host_service
from obfleet.store.db import Database
from obfleet.store.migrate import upgrade
from obfleet.store.models.obproxy import ObproxyServer
from obfleet.store.models.tasks import TaskInstance, TaskTarget
from obfleet.timefmt import utcnow
from tests.dbfixtures import migrated_to

HOME = "/home/admin/obproxy-4.2.3.0"


@pytest.fixture
def old_metadb(database_url: str) -> Database:
    """An empty metadb migrated to 0006 only."""
    return migrated_to(database_url, "0006")


def _task(db: Database, name: str, status: str, context: dict[str, Any], **kw: Any) -> int:
    with db.transaction() as session:
        task = TaskInstance(
            name=name, status=status, operation="EXECUTE", creator="admin", context=context, **kw
        )
        session.add(task)
        session.flush()
        return task.id


def _check_step(db: Database, task_id: int, parallel_idx: int, status: str) -> None:
    _insert(
        db,
        "subtask_instance",
        task_id=task_id,
        series_id=parallel_idx + 2,
        name="Check if process not exist",
        description="",
        class_name="obfleet.flows.install_obproxy.CheckProcessNotExist",
        timeout=300,
        status=status,
        operation="EXECUTE",
        action="EXECUTE",
        parallel_idx=parallel_idx,
        prohibit_rollback=False,
        run_time=0,
        attempt=0,
    )


def _insert(db: Database, table_name: str, **values: Any) -> int:
    """A row as 0006's code wrote it, into the table as 0006 has it (reflected: today's models
    have columns the old schema lacks)."""
    tables = MetaData()
    tables.reflect(db.engine, only=[table_name])
    table = tables.tables[table_name]
    now = utcnow().replace(tzinfo=None)
    stamps = {name: now for name in ("create_time", "update_time") if name in table.c}
    with db.engine.begin() as conn:
        result = conn.execute(insert(table).values(**stamps, **values))
        return int(result.inserted_primary_key[0])


def _obproxy(db: Database, host_id: int, port: int, status: str, version: str | None) -> int:
    """A row as 0006's code recorded one (the table has no owner columns yet)."""
    return _insert(
        db,
        "obproxy_server",
        cluster_id=1,
        host_id=host_id,
        ip=f"198.18.0.{host_id}",
        sql_port=port,
        exporter_port=port + 1,
        install_path=HOME if port == 2883 else f"{HOME}-{port}",
        version=version,
        status=status,
        operate_status="NORMAL" if status == "RUNNING" else "OPERATING",
        parameter_version=0,
    )


def _fleet(db: Database) -> None:
    credential = _insert(
        db,
        "credential",
        name="ssh",
        target_type="HOST",
        auth_type="PASSWORD",
        username="root",
        secret_encrypted="x",
    )
    for i in (1, 2, 3):
        _insert(
            db,
            "host",
            name=f"h{i}",
            inner_ip_address=f"198.18.0.{i}",
            ssh_port=22,
            credential_id=credential,
            kind="DEDICATED_PHYSICAL_MACHINE",
            status="ONLINE",
            idc_name="default",
            type_name="default",
        )
    _insert(
        db,
        "obproxy_cluster",
        name="pc",
        work_mode="CONFIG_URL",
        parameter_version=1,
        # JSON as 0006 typed it on each server (MariaDB reflects it as LONGTEXT).
        startup_parameters=type_coerce([], JSON),
        parameters=type_coerce([], JSON),
    )


def test_unfinished_tasks_and_their_rows_get_their_owners(old_metadb: Database) -> None:
    db = old_metadb
    _fleet(db)
    creating = _obproxy(db, 1, 2883, "CREATING", None)  # its install passed its check
    deleting = _obproxy(db, 3, 2883, "DELETING", "4.2.3.0-3")
    taken = _obproxy(db, 3, 2893, "RUNNING", "4.2.3.0-3")
    # A cluster create's install, RUNNING: branch 0 recorded its row, branch 1 not yet.
    install = _task(
        db,
        "Install obproxy",
        "RUNNING",
        {
            "stringMap": {
                "obproxy_cluster_id": "1",
                "sql_port": "2883",
                "install_path": HOME,
                "obproxy_server_id_0": str(creating),
            },
            "listMap": {"host_ids": ["1", "2"]},
        },
    )
    _check_step(db, install, 0, "SUCCESSFUL")
    _check_step(db, install, 1, "READY")
    # A delete that FAILED, waiting for a person.
    offline = _task(
        db,
        "Offline obproxy",
        "FAILED",
        {
            "stringMap": {"obproxy_cluster_id": "1"},
            "listMap": {"obproxy_server_ids": [str(deleting)], "host_ids": ["3"]},
        },
    )
    _task(
        db,
        "Take over obproxy",
        "SUCCESSFUL",
        {
            "stringMap": {
                "obproxy_cluster_id": "1",
                "host_id": "3",
                "sql_port": "2893",
                "obproxy_server_id": str(taken),
            },
            "listMap": {},
        },
        host_id=3,
    )
    prepare = _task(
        db, "Prepare host", "RUNNING", {"stringMap": {"host_id": "2"}, "listMap": {}}, host_id=2
    )

    upgrade(db)

    with db.session() as session:
        owners = {
            row.id: (row.task_id, row.origin, row.install_checked)
            for row in session.scalars(select(ObproxyServer))
        }
        assert owners == {
            creating: (install, "INSTALL", True),
            deleting: (offline, "INSTALL", True),
            taken: (None, "TAKE_OVER", False),
        }
        by_task: dict[int, list[tuple[str, str]]] = {}
        for task_id, kind, key in session.execute(
            select(TaskTarget.task_id, TaskTarget.kind, TaskTarget.key)
        ):
            by_task.setdefault(task_id, []).append((kind, key))
        by_task = {task_id: sorted(found) for task_id, found in by_task.items()}
        assert by_task == {
            install: sorted(
                [
                    ("host", "1"),
                    ("host", "2"),
                    ("obproxy", str(creating)),
                    ("obproxy_cluster", "1"),
                    ("obproxy_port", "1:2883"),
                    ("obproxy_port", "2:2883"),
                ]
            ),
            offline: sorted([("host", "3"), ("obproxy", str(deleting)), ("obproxy_cluster", "1")]),
            prepare: [("host", "2")],
        }
        on_hosts = running_tasks_on(session, targets.HOST, [1, 2, 3])
        assert [(t.task_id, t.key) for t in on_hosts] == [
            (install, "1"),
            (install, "2"),
            (prepare, "2"),
        ]
        port = running_tasks_on(session, targets.OBPROXY_PORT, ["2:2883"])
        assert [t.task_id for t in port] == [install]
        assert running_tasks_on(session, targets.OBPROXY, [deleting]) == []  # FAILED

    # What the services decide from it: host 3 (only a FAILED task on it) could go, host 2
    # not, naming both tasks on it.
    with db.transaction() as session, pytest.raises(ApiError) as refused:
        host_service.delete(session, [2])
    assert f"{install} (Install obproxy, RUNNING)" in refused.value.message
    assert f"{prepare} (Prepare host, RUNNING)" in refused.value.message
    db.dispose()
