"""DAG bookkeeping shared by the runner and the operations: promotion and a task's status.

All of it runs inside a write transaction that already holds the task row locks
(`lock_tasks`), so two nodes finishing subtasks of one task never both miss each other's work.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Update, bindparam, func, select, update
from sqlalchemy.orm import Session

from obfleet.engine.states import ACTIVE, Action, Operation, SubtaskStatus, TaskStatus
from obfleet.store.models.tasks import SubtaskDependency as Edge
from obfleet.store.models.tasks import SubtaskInstance as Sub
from obfleet.store.models.tasks import TaskInstance as Task


def lock_tasks(session: Session, task_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Lock task rows in id order (a fixed order cannot deadlock); returns their contexts."""
    ids = sorted(set(task_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(Task.id, Task.context).where(Task.id.in_(ids)).order_by(Task.id).with_for_update()
    ).all()
    return {row.id: row.context for row in rows}


def promote_neighbours(session: Session, finished: Mapping[Action, Collection[int]]) -> int:
    """Make READY what the newly SUCCESSFUL subtasks unblocked; returns how many.

    Executing runs downstream: a subtask waits for all its upstreams. Rolling back runs
    upstream: a subtask's rollback waits until none of its downstreams has one left to finish.
    """
    promoted = 0
    if finished.get(Action.EXECUTE):
        promoted += promote_execute(
            session,
            session.scalars(
                select(Edge.downstream_id)
                .join(Sub, Sub.id == Edge.downstream_id)
                .where(
                    Edge.upstream_id.in_(finished[Action.EXECUTE]),
                    Sub.status == SubtaskStatus.PENDING,
                    Sub.action == Action.EXECUTE,
                )
            ).all(),
        )
    if finished.get(Action.ROLLBACK):
        promoted += promote_rollback(
            session,
            session.scalars(
                select(Edge.upstream_id)
                .join(Sub, Sub.id == Edge.upstream_id)
                .where(
                    Edge.downstream_id.in_(finished[Action.ROLLBACK]),
                    Sub.status == SubtaskStatus.PENDING,
                    Sub.action == Action.ROLLBACK,
                )
            ).all(),
        )
    return promoted


def promote_execute(session: Session, candidates: Collection[int]) -> int:
    if not candidates:
        return 0
    blocked = set(
        session.scalars(
            select(Edge.downstream_id)
            .join(Sub, Sub.id == Edge.upstream_id)
            .where(Edge.downstream_id.in_(candidates), Sub.status != SubtaskStatus.SUCCESSFUL)
        ).all()
    )
    return _make_ready(session, set(candidates) - blocked)


def promote_rollback(session: Session, candidates: Collection[int]) -> int:
    if not candidates:
        return 0
    blocked = set(
        session.scalars(
            select(Edge.upstream_id)
            .join(Sub, Sub.id == Edge.downstream_id)
            .where(
                Edge.upstream_id.in_(candidates),
                Sub.action == Action.ROLLBACK,
                Sub.status != SubtaskStatus.SUCCESSFUL,
            )
        ).all()
    )
    return _make_ready(session, set(candidates) - blocked)


def rows_updated(session: Session, statement: Update) -> int:
    """Run an UPDATE and say how many rows matched (conditional updates decide by it)."""
    return cast(CursorResult[Any], session.execute(statement)).rowcount


def _make_ready(session: Session, ids: Collection[int]) -> int:
    if not ids:
        return 0
    return rows_updated(
        session,
        update(Sub)
        .where(Sub.id.in_(sorted(ids)), Sub.status == SubtaskStatus.PENDING)
        .values(status=SubtaskStatus.READY),
    )


def derive_status(rolling_back: bool, counts: Mapping[tuple[str, str], int]) -> TaskStatus:
    """A task's status from its subtasks' (status, action) counts.

    Done when nothing is left to reach SUCCESSFUL: every subtask when executing, every
    subtask with a rollback when rolling back (never-run subtasks stay PENDING then). Still
    RUNNING while anything can run; FAILED when something failed and nothing else can run.
    """

    def outstanding(status: str, action: str) -> bool:
        if status == SubtaskStatus.SUCCESSFUL:
            return False
        return action == Action.ROLLBACK if rolling_back else True

    if not any(n for (status, action), n in counts.items() if outstanding(status, action)):
        return TaskStatus.SUCCESSFUL
    if any(n for (status, _), n in counts.items() if status in ACTIVE):
        return TaskStatus.RUNNING
    return TaskStatus.FAILED


# Every task's operation and its subtasks' (status, action) counts, in one grouped query.
_SUBTASK_COUNTS = (
    select(Sub.task_id, Task.operation, Sub.status, Sub.action, func.count().label("n"))
    .join(Task, Task.id == Sub.task_id)
    .where(Sub.task_id.in_(bindparam("task_ids", expanding=True)))
    .group_by(Sub.task_id, Task.operation, Sub.status, Sub.action)
)


def settle_tasks(
    session: Session, task_ids: Collection[int], now: datetime, executor: str | None = None
) -> dict[int, TaskStatus]:
    """Recompute and store the tasks' statuses (their rows locked by the caller), bumping their
    versions: one query for all their counts, one UPDATE per resulting status."""
    ids = sorted(set(task_ids))
    if not ids:
        return {}
    operations: dict[int, str] = {}
    counts: dict[int, dict[tuple[str, str], int]] = defaultdict(dict)
    for row in session.execute(_SUBTASK_COUNTS, {"task_ids": ids}):
        operations[row.task_id] = row.operation
        counts[row.task_id][(row.status, row.action)] = row.n
    statuses = {
        task_id: derive_status(operations.get(task_id) == Operation.ROLLBACK, counts[task_id])
        for task_id in ids
    }
    for status in TaskStatus:
        group = [task_id for task_id, settled in statuses.items() if settled == status]
        if not group:
            continue
        values: dict[str, Any] = {
            "status": status,
            "finish_time": None if status == TaskStatus.RUNNING else now,
            "version": Task.version + 1,
        }
        if executor is not None:
            values["executor"] = executor
        session.execute(update(Task).where(Task.id.in_(group)).values(**values))
    return statuses


def settle_task(
    session: Session, task_id: int, now: datetime, executor: str | None = None
) -> TaskStatus:
    """Recompute and store one task's status (its row locked by the caller)."""
    return settle_tasks(session, [task_id], now, executor)[task_id]


def touch_tasks(session: Session, task_ids: Collection[int]) -> None:
    """Bump the versions of tasks whose subtasks changed without a change of their status."""
    if task_ids:
        session.execute(
            update(Task).where(Task.id.in_(sorted(task_ids))).values(version=Task.version + 1)
        )
