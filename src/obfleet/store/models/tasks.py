"""The task engine's tables: tasks, their subtasks and dependency edges, logs, live engine nodes.

Status and operation are OCP's two separate axes; `action` is the engine's own note of which
method a subtask runs next (execute or rollback), since the shown operation may be RETRY, SKIP
or CANCEL while the subtask is still on the execute or the rollback side of the task.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from obfleet.store.base import Base, BigId, UTCDateTime
from obfleet.timefmt import utcnow


class TaskInstance(Base):
    __tablename__ = "task_instance"
    __mapper_args__ = {"eager_defaults": False}  # noqa: RUF012 (SQLAlchemy reads it once)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    type: Mapped[str] = mapped_column(String(16), default="MANUAL")
    status: Mapped[str] = mapped_column(String(16), index=True)
    operation: Mapped[str] = mapped_column(String(16))
    task_definition_id: Mapped[int] = mapped_column(BigInteger, default=-1)
    creator: Mapped[str] = mapped_column(String(64))
    creator_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # The address of the engine node that last advanced the task.
    executor: Mapped[str | None] = mapped_column(String(128), default=None)
    prohibit_rollback: Mapped[bool] = mapped_column(Boolean, default=False)
    # {"stringMap": {str: str}, "listMap": {str: [str]}}, shared by every subtask of the task.
    context: Mapped[dict[str, Any]] = mapped_column(JSON)
    # What the task is about, for the list's filters and its cluster/tenant objects.
    cluster_id: Mapped[int | None] = mapped_column(BigInteger, default=None, index=True)
    cluster_name: Mapped[str | None] = mapped_column(String(128), default=None)
    tenant_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    tenant_name: Mapped[str | None] = mapped_column(String(128), default=None)
    host_id: Mapped[int | None] = mapped_column(BigInteger, default=None, index=True)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    start_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    finish_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Bumped by every transaction that changes the task or any of its subtasks (all of them
    # lock the task row), so a task's view built once serves every read of the same version.
    # Deferred, and not fetched back after an INSERT: only the task views read it, by itself.
    version: Mapped[int] = mapped_column(Integer, server_default="0", deferred=True)


class SubtaskInstance(Base):
    __tablename__ = "subtask_instance"
    __table_args__ = (Index("ix_subtask_instance_status_lease", "status", "lease_until"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("task_instance.id", ondelete="CASCADE"), index=True
    )
    series_id: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(String(255))
    class_name: Mapped[str] = mapped_column(String(255))
    timeout: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    operation: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16), default="EXECUTE")
    parallel_idx: Mapped[int] = mapped_column(Integer, default=-1)
    # What the flow named this subtask's parallel branch (a host's address), for whoever draws
    # the branches; None outside a branch or when the flow named none.
    branch_label: Mapped[str | None] = mapped_column(String(255), default=None)
    prohibit_rollback: Mapped[bool] = mapped_column(Boolean, default=False)
    executor: Mapped[str | None] = mapped_column(String(128), default=None)
    run_time: Mapped[int] = mapped_column(Integer, default=0)
    # The lease: which engine node runs the current attempt, until when. `attempt` is the
    # fencing token: every write the runner makes names it, so a reclaimed run writes nothing.
    owner: Mapped[str | None] = mapped_column(String(128), default=None, index=True)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    start_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    finish_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class SubtaskDependency(Base):
    """One DAG edge: `downstream_id` may run once `upstream_id` is SUCCESSFUL."""

    __tablename__ = "subtask_dependency"

    upstream_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("subtask_instance.id", ondelete="CASCADE"), primary_key=True
    )
    downstream_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("subtask_instance.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    task_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("task_instance.id", ondelete="CASCADE"), index=True
    )


class TaskTarget(Base):
    """Something a task acts on, named when it is submitted: a host, an obproxy's host and SQL
    port, an OBProxy cluster, an obproxy. "Does a running task act on X" is one indexed query
    (engine/targets.py) instead of a read of every task's context."""

    __tablename__ = "task_target"
    __table_args__ = (Index("ix_task_target_kind_key", "kind", "key"),)

    task_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("task_instance.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)


class SubtaskLog(Base):
    """Append-only log lines of a subtask; an execution starts with an OCP-style header line."""

    __tablename__ = "subtask_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subtask_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("subtask_instance.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    line: Mapped[str] = mapped_column(Text)


class EngineNode(Base):
    """A live engine process: replicas register here and renew their heartbeat."""

    __tablename__ = "engine_node"

    node_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    address: Mapped[str] = mapped_column(String(128))
    pid: Mapped[int] = mapped_column(Integer)
    start_time: Mapped[datetime] = mapped_column(UTCDateTime())
    heartbeat_time: Mapped[datetime] = mapped_column(UTCDateTime())
