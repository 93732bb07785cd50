"""Tasks in OCP's JSON shapes: WrappedTaskInstance, BasicTaskInstance, SubtaskInstance, logs.

Where OCP's tables and samples disagree the samples win: `parallelIdx`, `downstreams`,
`creator` as `{id, name}`, `context` as an object.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from obfleet.engine.context import TaskContextData
from obfleet.errors import ApiError, ErrorCode
from obfleet.store.models.tasks import SubtaskDependency as Edge
from obfleet.store.models.tasks import SubtaskInstance as Sub
from obfleet.store.models.tasks import SubtaskLog
from obfleet.store.models.tasks import TaskInstance as Task
from obfleet.timefmt import iso

NODE_TYPE = "JAVA_TASK"  # the only node type OCP knows; kept for its clients


def context_view(context: dict[str, Any] | None, parallel_idx: int = -1) -> dict[str, Any]:
    data = TaskContextData.from_json(context)
    return {
        "stringMap": data.string_map,
        "listMap": data.list_map,
        "parallelIdx": parallel_idx,
        "parallel": parallel_idx >= 0,
    }


def _creator(task: Task) -> dict[str, Any]:
    return {"id": task.creator_id, "name": task.creator}


def _cluster(task: Task) -> dict[str, Any] | None:
    if task.cluster_id is None and task.cluster_name is None:
        return None
    return {"id": task.cluster_id, "name": task.cluster_name}


def _tenant(task: Task) -> dict[str, Any] | None:
    if task.tenant_id is None and task.tenant_name is None:
        return None
    return {"id": task.tenant_id, "name": task.tenant_name}


class Edges:
    """Upstream and downstream ids of every subtask of some tasks."""

    def __init__(self, rows: Iterable[Any]) -> None:
        self.upstreams: dict[int, list[int]] = defaultdict(list)
        self.downstreams: dict[int, list[int]] = defaultdict(list)
        for row in rows:
            self.upstreams[row.downstream_id].append(row.upstream_id)
            self.downstreams[row.upstream_id].append(row.downstream_id)

    @classmethod
    def of_tasks(cls, session: Session, task_ids: Sequence[int]) -> Edges:
        return cls(
            session.execute(
                select(Edge.upstream_id, Edge.downstream_id)
                .where(Edge.task_id.in_(task_ids))
                .order_by(Edge.upstream_id, Edge.downstream_id)
            )
        )

    @classmethod
    def of_subtask(cls, session: Session, subtask_id: int) -> Edges:
        return cls(
            session.execute(
                select(Edge.upstream_id, Edge.downstream_id)
                .where(or_(Edge.upstream_id == subtask_id, Edge.downstream_id == subtask_id))
                .order_by(Edge.upstream_id, Edge.downstream_id)
            )
        )


def subtask_view(sub: Sub, edges: Edges, context: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": sub.id,
        "name": sub.name,
        "description": sub.description,
        "className": sub.class_name,
        "seriesId": sub.series_id,
        "timeout": sub.timeout,
        "status": sub.status,
        "operation": sub.operation,
        "executor": sub.executor,
        "runTime": sub.run_time,
        "nodeType": NODE_TYPE,
        "parallelIdx": sub.parallel_idx,
        "upstreams": edges.upstreams.get(sub.id, []),
        "downstreams": edges.downstreams.get(sub.id, []),
        "prohibitRollback": sub.prohibit_rollback,
        "context": context_view(context, sub.parallel_idx),
        "createTime": iso(sub.create_time),
        "startTime": iso(sub.start_time),
        "finishTime": iso(sub.finish_time),
    }


def task_view(task: Task, subtasks: Sequence[Sub], edges: Edges) -> dict[str, Any]:
    """OCP's WrappedTaskInstance (with the appendix's fields as well)."""
    return {
        "id": task.id,
        "name": task.name,
        "taskDefinitionId": task.task_definition_id,
        "type": task.type,
        "status": task.status,
        "operation": task.operation,
        "creator": _creator(task),
        "executor": task.executor,
        "prohibitRollback": task.prohibit_rollback,
        "clusterId": task.cluster_id,
        "tenantId": task.tenant_id,
        "hostId": task.host_id,
        "cluster": _cluster(task),
        "tenant": _tenant(task),
        "context": context_view(task.context),
        "createTime": iso(task.create_time),
        "startTime": iso(task.start_time),
        "finishTime": iso(task.finish_time),
        "subtasks": [subtask_view(s, edges, task.context) for s in subtasks],
    }


def basic_task_view(task: Task, subtasks: Sequence[Sub]) -> dict[str, Any]:
    """OCP's BasicTaskInstance, an item of the task list."""
    return {
        "id": task.id,
        "name": task.name,
        "type": task.type,
        "status": task.status,
        "operation": task.operation,
        "creator": _creator(task),
        "cluster": _cluster(task),
        "tenant": _tenant(task),
        "hostId": task.host_id,
        "createTime": iso(task.create_time),
        "startTime": iso(task.start_time),
        "finishTime": iso(task.finish_time),
        "subtasks": [
            {
                "id": s.id,
                "name": s.name,
                "description": s.description,
                "status": s.status,
                "operation": s.operation,
            }
            for s in subtasks
        ],
    }


def find_task(session: Session, task_id: int) -> Task:
    task = session.get(Task, task_id)
    if task is None:
        raise ApiError(ErrorCode.TASK_NOT_FOUND, task_id)
    return task


def subtasks_of(session: Session, task_ids: Sequence[int]) -> dict[int, list[Sub]]:
    grouped: dict[int, list[Sub]] = defaultdict(list)
    for sub in session.scalars(select(Sub).where(Sub.task_id.in_(task_ids)).order_by(Sub.id)):
        grouped[sub.task_id].append(sub)
    return grouped


def load_task_view(session: Session, task_id: int) -> dict[str, Any]:
    task = find_task(session, task_id)
    return task_view(
        task, subtasks_of(session, [task_id])[task_id], Edges.of_tasks(session, [task_id])
    )


def basic_task_views(session: Session, tasks: Sequence[Task]) -> list[dict[str, Any]]:
    subtasks = subtasks_of(session, [t.id for t in tasks])
    return [basic_task_view(t, subtasks[t.id]) for t in tasks]


def load_subtask_view(session: Session, task: Task, sub: Sub) -> dict[str, Any]:
    return subtask_view(sub, Edges.of_subtask(session, sub.id), task.context)


def find_subtask(session: Session, task_id: int, subtask_id: int) -> tuple[Task, Sub]:
    task = find_task(session, task_id)
    sub = session.scalar(select(Sub).where(Sub.id == subtask_id, Sub.task_id == task_id))
    if sub is None:
        raise ApiError(ErrorCode.TASK_NOT_FOUND, f"subtask {subtask_id} of the {task.id}")
    return task, sub


def subtask_log(session: Session, task_id: int, subtask_id: int) -> str:
    """Every execution's header and lines, oldest first, one per line (OCP's `{log}`)."""
    find_subtask(session, task_id, subtask_id)
    lines = session.scalars(
        select(SubtaskLog.line).where(SubtaskLog.subtask_id == subtask_id).order_by(SubtaskLog.id)
    ).all()
    return "".join(f"{line}\n" for line in lines)
