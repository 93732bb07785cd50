"""Reading a task as it stands: its row, its subtasks, their edges, a subtask's log.

The engine gives rows; how a task is shown (OCP's JSON shapes) is the API's business
(`obfleet.api.schemas.tasks`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Select, or_, select
from sqlalchemy.orm import Session

from obfleet.errors import ApiError, ErrorCode
from obfleet.store.base import as_stored
from obfleet.store.models.tasks import SubtaskDependency as Edge
from obfleet.store.models.tasks import SubtaskInstance as Sub
from obfleet.store.models.tasks import SubtaskLog
from obfleet.store.models.tasks import TaskInstance as Task
from obfleet.store.rows import RowsOfIds


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


# What a task list shows of each task and of its subtasks: plain Core columns, read as rows
# rather than objects (a page of 2,000 tasks would otherwise spend its time building objects
# and reading every context).
TASK = Task.__table__.c
SUB = Sub.__table__.c
TASK_SUMMARY = (
    TASK.id,
    TASK.name,
    TASK.type,
    TASK.status,
    TASK.operation,
    TASK.creator_id,
    TASK.creator,
    TASK.cluster_id,
    TASK.cluster_name,
    TASK.tenant_id,
    TASK.tenant_name,
    TASK.host_id,
    # Times as stored: a list only shows them, and SQLAlchemy's processing of each into an
    # aware datetime cost more than the rest of reading the row.
    as_stored(TASK.create_time),
    as_stored(TASK.start_time),
    as_stored(TASK.finish_time),
    # Not shown: bumped by every change to the task or its subtasks, it says whether a page's
    # task still shows as it did without reading its subtasks (api/rowmemo.py).
    TASK.version,
)
SUBTASK_SUMMARY = (SUB.task_id, SUB.id, SUB.name, SUB.description, SUB.status, SUB.operation)


def task_summaries() -> Select[*tuple[Any, ...]]:
    """The tasks' TASK_SUMMARY columns, to filter, order and page."""
    return select(*TASK_SUMMARY)


# Made once: building it anew per page cost about as much as running it.
SUBTASK_SUMMARIES_OF = RowsOfIds(
    # Each task's subtasks in id order; by task first, as the task_id index reads them (by
    # id alone, SQLite sorted the page's subtasks anew).
    select(*SUBTASK_SUMMARY).order_by(SUB.task_id, SUB.id),
    SUB.task_id,
)


def subtask_summaries_of(session: Session, task_ids: Sequence[int]) -> Sequence[Row[Any]]:
    """The SUBTASK_SUMMARY rows of some tasks (and maybe of others: pick by task id, the first
    column), by task, each task's in id order."""
    return SUBTASK_SUMMARIES_OF.rows(session, task_ids)


@dataclass(frozen=True)
class TaskRows:
    """One task with its subtasks (by id) and the edges between them."""

    task: Task
    subtasks: list[Sub]
    edges: Edges

    @classmethod
    def load(cls, session: Session, task_id: int) -> TaskRows:
        task = find_task(session, task_id)
        return cls(
            task, subtasks_of(session, [task_id])[task_id], Edges.of_tasks(session, [task_id])
        )


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
