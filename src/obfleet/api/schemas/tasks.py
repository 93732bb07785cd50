"""Tasks in OCP's JSON shapes: WrappedTaskInstance, BasicTaskInstance, SubtaskInstance, logs.

Where OCP's tables and samples disagree the samples win: `parallelIdx`, `downstreams`,
`context` as an object. `creator` takes the two forms the samples show: `{id, name}` in the
task API's answers (TaskOut), the creator's name in the answer of an OBProxy or host operation
that starts a task (StartedTaskOut, OCP's TaskInstance).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Self

from pydantic import Field
from sqlalchemy import Row
from sqlalchemy.orm import Session

from obfleet.api.rowmemo import EncodedRows, page_rows
from obfleet.api.schema import ApiModel, OcpTime, WireRow
from obfleet.engine.context import TaskContextData
from obfleet.engine.reads import (
    SUBTASK_SUMMARIES_OF,
    Edges,
    TaskRows,
    subtask_summaries_of,
    task_summaries,
)
from obfleet.store.models.tasks import SubtaskInstance as Sub
from obfleet.store.models.tasks import TaskInstance as Task

NODE_TYPE = "JAVA_TASK"  # the only node type OCP knows; kept for its clients


class NamedRef(ApiModel):
    id: int | None = None
    name: str | None = None

    @classmethod
    def known(cls, ref_id: int | None, name: str | None) -> NamedRef | None:
        """None when neither is known (a task on no OB cluster, on no tenant)."""
        return None if ref_id is None and name is None else cls(id=ref_id, name=name)


class TaskContextOut(ApiModel):
    string_map: dict[str, str]
    list_map: dict[str, list[str]]
    parallel_idx: int
    parallel: bool

    @classmethod
    def of(cls, context: dict[str, Any] | None, parallel_idx: int = -1) -> TaskContextOut:
        data = TaskContextData.from_json(context)
        return cls(
            string_map=data.string_map,
            list_map=data.list_map,
            parallel_idx=parallel_idx,
            parallel=parallel_idx >= 0,
        )


class SubtaskOut(ApiModel):
    """OCP's SubtaskInstance."""

    id: int
    name: str
    description: str
    class_name: str
    series_id: int
    timeout: int
    status: str
    operation: str
    executor: str | None
    run_time: int
    node_type: str = NODE_TYPE
    parallel_idx: int
    branch_label: str | None = Field(
        description="Extension: what the subtask's parallel branch acts on, as its flow named "
        "it (a host's address; also a one-host task's subtasks outside branches); null when "
        "the flow named none."
    )
    upstreams: list[int]
    downstreams: list[int]
    prohibit_rollback: bool
    context: TaskContextOut
    create_time: OcpTime
    start_time: OcpTime | None
    finish_time: OcpTime | None

    @classmethod
    def of(cls, sub: Sub, edges: Edges, context: dict[str, Any] | None) -> SubtaskOut:
        return cls(
            id=sub.id,
            name=sub.name,
            description=sub.description,
            class_name=sub.class_name,
            series_id=sub.series_id,
            timeout=sub.timeout,
            status=sub.status,
            operation=sub.operation,
            executor=sub.executor,
            run_time=sub.run_time,
            parallel_idx=sub.parallel_idx,
            branch_label=sub.branch_label,
            upstreams=edges.upstreams.get(sub.id, []),
            downstreams=edges.downstreams.get(sub.id, []),
            prohibit_rollback=sub.prohibit_rollback,
            context=TaskContextOut.of(context, sub.parallel_idx),
            create_time=sub.create_time,
            start_time=sub.start_time,
            finish_time=sub.finish_time,
        )

    @classmethod
    def load(cls, session: Session, task: Task, sub: Sub) -> SubtaskOut:
        return cls.of(sub, Edges.of_subtask(session, sub.id), task.context)


class _TaskFields(ApiModel):
    """A task's fields; each subclass says which form of `creator` it answers."""

    id: int
    name: str
    task_definition_id: int
    type: str
    status: str
    operation: str
    creator: NamedRef | str
    executor: str | None
    prohibit_rollback: bool
    cluster_id: int | None
    tenant_id: int | None
    host_id: int | None
    cluster: NamedRef | None
    tenant: NamedRef | None
    context: TaskContextOut
    create_time: OcpTime
    start_time: OcpTime | None
    finish_time: OcpTime | None
    subtasks: list[SubtaskOut]

    @classmethod
    def of(cls, rows: TaskRows, creator: NamedRef | str) -> Self:
        task = rows.task
        return cls(
            id=task.id,
            name=task.name,
            task_definition_id=task.task_definition_id,
            type=task.type,
            status=task.status,
            operation=task.operation,
            creator=creator,
            executor=task.executor,
            prohibit_rollback=task.prohibit_rollback,
            cluster_id=task.cluster_id,
            tenant_id=task.tenant_id,
            host_id=task.host_id,
            cluster=NamedRef.known(task.cluster_id, task.cluster_name),
            tenant=NamedRef.known(task.tenant_id, task.tenant_name),
            context=TaskContextOut.of(task.context),
            create_time=task.create_time,
            start_time=task.start_time,
            finish_time=task.finish_time,
            subtasks=[SubtaskOut.of(s, rows.edges, task.context) for s in rows.subtasks],
        )


def _creator(task: Task | Row[Any]) -> NamedRef:
    return NamedRef(id=task.creator_id, name=task.creator)


class TaskOut(_TaskFields):
    """OCP's WrappedTaskInstance (with the appendix's fields as well): the task API's answer."""

    creator: NamedRef

    @classmethod
    def load(cls, session: Session, task_id: int) -> TaskOut:
        rows = TaskRows.load(session, task_id)
        return cls.of(rows, _creator(rows.task))


class StartedTaskOut(_TaskFields):
    """OCP's TaskInstance, as the OBProxy and host pages answer the task an operation started:
    the same fields, `creator` the creator's name."""

    creator: str

    @classmethod
    def load(cls, session: Session, task_id: int) -> StartedTaskOut:
        rows = TaskRows.load(session, task_id)
        return cls.of(rows, rows.task.creator)


class BasicSubtaskOut(ApiModel):
    id: int
    name: str
    description: str
    status: str
    operation: str


class BasicTaskOut(ApiModel):
    """OCP's BasicTaskInstance, an item of the task list."""

    id: int
    name: str
    type: str
    status: str
    operation: str
    creator: NamedRef
    cluster: NamedRef | None
    tenant: NamedRef | None
    host_id: int | None
    create_time: OcpTime
    start_time: OcpTime | None
    finish_time: OcpTime | None
    subtasks: list[BasicSubtaskOut]

    @classmethod
    def wire(cls, task: Row[Any], subtasks: list[dict[str, Any]]) -> dict[str, Any]:
        """`task`: a row of task_summaries(); `subtasks`: its subtasks' wire forms."""
        wire = BASIC_TASK_WIRE.dump(task)
        creator_id, creator, cluster_id, cluster_name, tenant_id, tenant_name = _REFS(task)
        wire["creator"] = {"id": creator_id, "name": creator}
        wire["cluster"] = _known(cluster_id, cluster_name)
        wire["tenant"] = _known(tenant_id, tenant_name)
        wire["subtasks"] = subtasks
        return wire

    @classmethod
    def page(
        cls, session: Session, tasks: Sequence[Row[Any]], kept: EncodedRows | None
    ) -> list[Any]:
        """A page of task_summaries() rows. With `kept`, a task whose row (its version with
        it) is the one its kept JSON was built from is not built again, nor are its subtasks
        read: the version stands for them. The others' subtasks are loaded in one query."""

        def build(positions: Sequence[int]) -> list[dict[str, Any]]:
            built = [tasks[position] for position in positions]
            subtasks = _subtasks(session, list(map(_ID, built)))
            return [cls.wire(t, subtasks.get(_ID(t)) or []) for t in built]

        return page_rows(kept, session, [(_ID(t), tuple(t)) for t in tasks], build)


def _subtasks(session: Session, task_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The tasks' subtasks' wire forms by task id, read after the tasks' rows (so never older
    than their versions), written as they come (one list per task, not a list of rows and
    then another of dicts)."""
    subtasks: dict[int, list[dict[str, Any]]] = defaultdict(list)
    dump = BASIC_SUBTASK_WIRE.dump
    for row in subtask_summaries_of(session, task_ids):
        subtasks[row[0]].append(dump(row))
    return subtasks


BASIC_TASK_WIRE = WireRow(
    BasicTaskOut,
    task_summaries().selected_columns.keys(),
    skip={"creator", "cluster", "tenant", "subtasks"},
)
BASIC_SUBTASK_WIRE = WireRow(BasicSubtaskOut, SUBTASK_SUMMARIES_OF.selected_columns.keys())
# The row's values the wire form nests, by position (a Row's attributes cost ten times more).
_REFS = BASIC_TASK_WIRE.columns(
    "creator_id", "creator", "cluster_id", "cluster_name", "tenant_id", "tenant_name"
)
_ID = BASIC_TASK_WIRE.columns("id")


def _known(ref_id: int | None, name: str | None) -> dict[str, Any] | None:
    """NamedRef.known's wire form."""
    return None if ref_id is None and name is None else {"id": ref_id, "name": name}


class LogOut(ApiModel):
    log: str
