"""DAG bookkeeping shared by the runner and the operations: promotion and a task's status.

All of it runs inside a write transaction that already holds the task row locks
(`lock_tasks`), so two nodes finishing subtasks of one task never both miss each other's work.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    Column,
    ColumnElement,
    CursorResult,
    Executable,
    Exists,
    Select,
    Table,
    Update,
    bindparam,
    case,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from obfleet.engine.reads import SUB, TASK
from obfleet.engine.states import ACTIVE, Action, Operation, SubtaskStatus, TaskStatus
from obfleet.store.models.tasks import SubtaskDependency as Edge
from obfleet.store.models.tasks import SubtaskInstance as Sub
from obfleet.store.models.tasks import TaskInstance as Task

# The engine's statements name tables, not ORM entities, and are built once with an expanding
# `ids` parameter: building a statement, its cache key and the ORM's bookkeeping around it each
# cost more than SQLite took to run it. They bypass the session's objects: a caller holding
# some (the operations) expires them after (operations._changed).
SUBTASKS = cast(Table, Sub.__table__)
TASKS = cast(Table, Task.__table__)
EDGES = cast(Table, Edge.__table__)
EDGE = EDGES.c
IDS: BindParameter[list[int]] = bindparam("ids", expanding=True)

LOCK = select(TASK.id, TASK.context).where(TASK.id.in_(IDS)).order_by(TASK.id).with_for_update()
LOCK_ONLY = select(TASK.id).where(TASK.id.in_(IDS)).order_by(TASK.id).with_for_update()


def _pending_across(finished: Column[int], neighbour: Column[int], action: Action) -> Select[Any]:
    """The PENDING `action` subtasks on the `neighbour` side of edges from finished ones."""
    return (
        select(neighbour)
        .join(SUBTASKS, SUB.id == neighbour)
        .where(finished.in_(IDS), SUB.status == SubtaskStatus.PENDING, SUB.action == action)
    )


# Pending subtasks downstream of newly executed ones, and upstream of newly rolled back ones.
_EXECUTE_CANDIDATES = _pending_across(EDGE.upstream_id, EDGE.downstream_id, Action.EXECUTE)
# Of the first, those whose upstreams have all succeeded: one statement where a step's
# promotion took two (candidates, then the blocked among them).
_WAITING = EDGES.alias("waiting")
_UPSTREAM = SUBTASKS.alias("upstream")
_EXECUTE_UNBLOCKED = _EXECUTE_CANDIDATES.where(
    ~select(_WAITING.c.upstream_id)
    .join(_UPSTREAM, _UPSTREAM.c.id == _WAITING.c.upstream_id)
    .where(
        _WAITING.c.downstream_id == EDGE.downstream_id,
        _UPSTREAM.c.status != SubtaskStatus.SUCCESSFUL,
    )
    .exists()
)
_ROLLBACK_CANDIDATES = _pending_across(EDGE.downstream_id, EDGE.upstream_id, Action.ROLLBACK)
# Of the rollback candidates, those still waiting for a downstream to roll back.
_ROLLBACK_BLOCKED = (
    select(EDGE.upstream_id)
    .join(SUBTASKS, SUB.id == EDGE.downstream_id)
    .where(
        EDGE.upstream_id.in_(IDS),
        SUB.action == Action.ROLLBACK,
        SUB.status != SubtaskStatus.SUCCESSFUL,
    )
)
_MAKE_READY = (
    update(SUBTASKS)
    .where(SUB.id.in_(IDS), SUB.status == SubtaskStatus.PENDING)
    .values(status=SubtaskStatus.READY)
)
# Where an UPDATE may read its own table in a subquery (not MySQL: error 1093; MariaDB since
# 10.3.2, `updates_read_their_table`), executed
# subtasks' downstreams are promoted by one statement that finds them itself. Its subquery
# names subtask_instance in its own FROM (correlate(None)), so that is what it filters.
PROMOTE_EXECUTED = (
    update(SUBTASKS)
    .where(SUB.id.in_(_EXECUTE_UNBLOCKED.correlate(None)), SUB.status == SubtaskStatus.PENDING)
    .values(status=SubtaskStatus.READY)
)
# Every task's operation and its subtasks' (status, action) counts, in one grouped query.
SUBTASK_COUNTS = (
    select(SUB.task_id, TASK.operation, SUB.status, SUB.action, func.count().label("n"))
    .join(TASKS, TASK.id == SUB.task_id)
    .where(SUB.task_id.in_(IDS))
    .group_by(SUB.task_id, TASK.operation, SUB.status, SUB.action)
)
# A task's new status, the finish time with it, and (by the runner) the node that settled it.
_SETTLE = (
    update(TASKS)
    .where(TASK.id.in_(IDS))
    .values(
        status=bindparam("settled"), finish_time=bindparam("finished"), version=TASK.version + 1
    )
)
_SETTLE_BY = _SETTLE.values(executor=bindparam("settler"))
_SETTLE_BY_RETURNING = _SETTLE_BY.returning(TASK.id, TASK.context)
BUMP_VERSIONS = update(TASKS).where(TASK.id.in_(IDS)).values(version=TASK.version + 1)
# `derive_status` in SQL, for a settling UPDATE sent before the counts are back (a pipelined
# step, engine/pipeline.py): the same rules over the task's subtasks as they stand.
_COUNTED = SUBTASKS.alias("counted")


def _any_subtask(*conditions: ColumnElement[bool]) -> Exists:
    return select(_COUNTED.c.id).where(_COUNTED.c.task_id == TASK.id, *conditions).exists()


DERIVED = case(
    (
        ~_any_subtask(
            _COUNTED.c.status != SubtaskStatus.SUCCESSFUL,
            or_(TASK.operation != Operation.ROLLBACK, _COUNTED.c.action == Action.ROLLBACK),
        ),
        TaskStatus.SUCCESSFUL,
    ),
    (_any_subtask(_COUNTED.c.status.in_(ACTIVE)), TaskStatus.RUNNING),
    else_=TaskStatus.FAILED,
)


def settle_derived(tasks: Select[Any]) -> Update:
    """Settle the tasks `tasks` selects by `derive_status` in SQL, as `_SETTLE_BY` does;
    RETURNING what a runner logs of those that ended."""
    return (
        update(TASKS)
        .where(TASK.id.in_(tasks))
        .values(
            status=DERIVED,
            finish_time=case(
                (DERIVED == TaskStatus.RUNNING, None),
                else_=bindparam("finished", type_=TASK.finish_time.type),
            ),
            version=TASK.version + 1,
            executor=bindparam("settler"),
        )
        .returning(TASK.id, TASK.name, TASK.status, TASK.operation, TASK.start_time)
    )


def lock_tasks(session: Session, task_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Lock task rows in id order (a fixed order cannot deadlock); returns their contexts."""
    ids = sorted(set(task_ids))
    if not ids:
        return {}
    return {row.id: row.context for row in session.execute(LOCK, {"ids": ids})}


def lock_task_rows(session: Session, task_ids: Iterable[int], *, row_locks: bool) -> None:
    """`lock_tasks` without reading the contexts (JSON, decoded per row), for a caller that
    changes none. `row_locks` False (SQLite): nothing to do, the write transaction already
    holds the whole database (BEGIN IMMEDIATE)."""
    ids = sorted(set(task_ids))
    if ids and row_locks:
        session.execute(LOCK_ONLY, {"ids": ids}).all()


def promote_neighbours(session: Session, finished: Mapping[Action, Collection[int]]) -> int:
    """Make READY what the newly SUCCESSFUL subtasks unblocked; returns how many.

    Executing runs downstream: a subtask waits for all its upstreams. Rolling back runs
    upstream: a subtask's rollback waits until none of its downstreams has one left to finish.
    """
    promoted = 0
    executed = finished.get(Action.EXECUTE)
    if executed and updates_read_their_table(session.get_bind().dialect):
        promoted += rows_updated(session, PROMOTE_EXECUTED, {"ids": sorted(executed)})
    elif executed:
        promoted += _make_ready(session, _ids(session, _EXECUTE_UNBLOCKED, executed))
    if finished.get(Action.ROLLBACK):
        candidates = _ids(session, _ROLLBACK_CANDIDATES, finished[Action.ROLLBACK])
        promoted += promote_rollback(session, candidates)
    return promoted


def updates_read_their_table(dialect: Dialect) -> bool:
    """Whether an UPDATE may select from its own table in a subquery: not on MySQL (error
    1093), on MariaDB since 10.3.2, which reads the subquery first."""
    if dialect.name != "mysql":
        return True
    version = dialect.server_version_info or ()
    return bool(getattr(dialect, "is_mariadb", False)) and version >= (10, 3, 2)


def promote_rollback(session: Session, candidates: Collection[int]) -> int:
    if not candidates:
        return 0
    return _make_ready(session, set(candidates) - _ids(session, _ROLLBACK_BLOCKED, candidates))


def _ids(session: Session, statement: Executable, ids: Collection[int]) -> set[int]:
    return set(session.scalars(statement, {"ids": sorted(ids)}))


def rows_updated(session: Session, statement: Update, params: Any = None) -> int:
    """Run an UPDATE and say how many rows matched (conditional updates decide by it)."""
    return cast(CursorResult[Any], session.execute(statement, params)).rowcount


def _make_ready(session: Session, ids: Collection[int]) -> int:
    if not ids:
        return 0
    return rows_updated(session, _MAKE_READY, {"ids": sorted(ids)})


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


def settle_tasks(
    session: Session,
    task_ids: Collection[int],
    now: datetime,
    executor: str | None = None,
    contexts: dict[int, Any] | None = None,
) -> dict[int, TaskStatus]:
    """Recompute and store the tasks' statuses (their rows locked by the caller), bumping their
    versions: one query for all their counts, one UPDATE per resulting status.

    `contexts` (with an `executor`, where UPDATE has RETURNING): filled with the tasks'
    contexts, returned by those UPDATEs, for a caller that needs them and would otherwise
    write or read the same rows again.
    """
    ids = sorted(set(task_ids))
    if not ids:
        return {}
    statuses = task_statuses(ids, session.execute(SUBTASK_COUNTS, {"ids": ids}))
    for params in settle_groups(statuses, now, executor):
        if contexts is not None and executor is not None:
            contexts.update(session.execute(_SETTLE_BY_RETURNING, params).all())
        else:
            session.execute(_SETTLE if executor is None else _SETTLE_BY, params)
    return statuses


def task_statuses(task_ids: Iterable[int], counts: Iterable[Any]) -> dict[int, TaskStatus]:
    """The tasks' statuses from the rows of SUBTASK_COUNTS about them."""
    operations: dict[int, str] = {}
    by_task: dict[int, dict[tuple[str, str], int]] = defaultdict(dict)
    for row in counts:
        operations[row.task_id] = row.operation
        by_task[row.task_id][(row.status, row.action)] = row.n
    return {
        task_id: derive_status(operations.get(task_id) == Operation.ROLLBACK, by_task[task_id])
        for task_id in task_ids
    }


def settle_groups(
    statuses: Mapping[int, TaskStatus], now: datetime, executor: str | None
) -> list[dict[str, Any]]:
    """The parameters of one settling UPDATE (_SETTLE, _SETTLE_BY) per resulting status."""
    groups = []
    for status in TaskStatus:
        group = [task_id for task_id, settled in statuses.items() if settled == status]
        if group:
            groups.append(
                {
                    "ids": group,
                    "settled": status,
                    "finished": None if status == TaskStatus.RUNNING else now,
                    "settler": executor,
                }
            )
    return groups


def settle_task(
    session: Session, task_id: int, now: datetime, executor: str | None = None
) -> TaskStatus:
    """Recompute and store one task's status (its row locked by the caller)."""
    return settle_tasks(session, [task_id], now, executor)[task_id]


def touch_tasks(session: Session, task_ids: Collection[int]) -> None:
    """Bump the versions of tasks whose subtasks changed without a change of their status."""
    if task_ids:
        session.execute(BUMP_VERSIONS, {"ids": sorted(task_ids)})
