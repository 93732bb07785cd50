"""What an operator may do to a task, with OCP's rules, inside the caller's transaction.

| operation      | allowed when                             | effect                          |
|----------------|------------------------------------------|---------------------------------|
| retry task     | task FAILED                              | every FAILED subtask -> READY   |
| rollback task  | task FAILED, nothing ran that prohibits  | what ran rolls back, in reverse |
|                | it                                       | dependency order                |
| retry subtask  | subtask FAILED                           | READY, operation RETRY          |
| skip subtask   | subtask FAILED                           | SUCCESSFUL, operation SKIP      |
| cancel subtask | subtask RUNNING (or READY)               | CANCELING, then FAILED + CANCEL |

Anything else raises 4007 and changes nothing; an unknown task or subtask raises 4001. A
retried subtask that was rolling back rolls back again (its operation stays ROLLBACK).
"""

from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from obfleet.engine import signals
from obfleet.engine.dag import promote_neighbours, promote_rollback, rows_updated, settle_task
from obfleet.engine.states import Action, Operation, SubtaskStatus, TaskStatus
from obfleet.errors import ApiError, ErrorCode
from obfleet.store.models.tasks import SubtaskInstance as Sub
from obfleet.store.models.tasks import TaskInstance as Task
from obfleet.timefmt import utcnow

log = logging.getLogger("obfleet.engine")


def _label(task: Task) -> str:
    return f"{task.name} ({task.id})"


def _locked_task(session: Session, task_id: int) -> Task:
    task = session.scalar(select(Task).where(Task.id == task_id).with_for_update())
    if task is None:
        raise ApiError(ErrorCode.TASK_NOT_FOUND, task_id)
    return task


def _subtask(session: Session, task: Task, subtask_id: int) -> Sub:
    subtask = session.scalar(select(Sub).where(Sub.id == subtask_id, Sub.task_id == task.id))
    if subtask is None:
        raise ApiError(ErrorCode.TASK_NOT_FOUND, f"subtask {subtask_id} of the {_label(task)}")
    return subtask


def _refuse_task(task: Task) -> ApiError:
    return ApiError(ErrorCode.TASK_STATE_INVALID, _label(task), task.status)


def _refuse_subtask(task: Task, subtask: Sub) -> ApiError:
    return ApiError(
        ErrorCode.TASK_STATE_INVALID,
        message=(
            f"The operation is not allowed because the subtask {subtask.name} ({subtask.id}) of "
            f"the {_label(task)} task is in the {subtask.status} state."
        ),
    )


def _transition(session: Session, task: Task, subtask: Sub, **values: object) -> None:
    """Change the subtask only if it is still as we read it: a runner may claim or finish it
    concurrently (a claim does not take the task lock)."""
    done = rows_updated(
        session,
        update(Sub).where(Sub.id == subtask.id, Sub.status == subtask.status).values(**values),
    )
    session.refresh(subtask)
    if not done:
        raise _refuse_subtask(task, subtask)


def _retried_operation(subtask: Sub) -> Operation:
    return Operation.ROLLBACK if subtask.action == Action.ROLLBACK else Operation.RETRY


def _changed(session: Session, task: Task, what: str) -> None:
    session.flush()
    settle_task(session, task.id, utcnow())
    # Promotion and settling write through the tables, past the session's objects: what the
    # caller reads next (the answer) must come from the metadb.
    session.expire_all()
    session.refresh(task)
    signals.publish_after_commit(session, [task.id], work=True)
    log.info("task %s (%s): %s", task.id, task.name, what)


def retry_task(session: Session, task_id: int) -> Task:
    task = _locked_task(session, task_id)
    if task.status != TaskStatus.FAILED:
        raise _refuse_task(task)
    for subtask in session.scalars(
        select(Sub).where(Sub.task_id == task.id, Sub.status == SubtaskStatus.FAILED)
    ):
        subtask.status = SubtaskStatus.READY
        subtask.operation = _retried_operation(subtask)
    if task.operation != Operation.ROLLBACK:
        task.operation = Operation.RETRY
    _changed(session, task, "retried")
    return task


def rollback_task(session: Session, task_id: int) -> Task:
    """Undo what ran: each subtask that ran rolls back once all its downstreams have."""
    task = _locked_task(session, task_id)
    if task.status != TaskStatus.FAILED:
        raise _refuse_task(task)
    if task.operation == Operation.ROLLBACK:
        return retry_task(session, task_id)  # a rollback that failed carries on
    ran = session.scalars(select(Sub).where(Sub.task_id == task.id, Sub.run_time > 0)).all()
    blockers = [s for s in ran if s.prohibit_rollback]
    if task.prohibit_rollback or blockers:
        why = f"subtask {blockers[0].name} ({blockers[0].id})" if blockers else "the task"
        raise ApiError(
            ErrorCode.TASK_STATE_INVALID,
            message=(
                f"The operation is not allowed because the {_label(task)} task prohibits "
                f"rollback ({why} cannot be undone)."
            ),
        )
    session.execute(
        update(Sub)
        .where(Sub.id.in_([s.id for s in ran]))
        .values(
            status=SubtaskStatus.PENDING,
            action=Action.ROLLBACK,
            operation=Operation.ROLLBACK,
            finish_time=None,
        )
    )
    task.operation = Operation.ROLLBACK
    session.flush()
    promote_rollback(session, [s.id for s in ran])
    _changed(session, task, "rolling back")
    return task


def retry_subtask(session: Session, task_id: int, subtask_id: int) -> Sub:
    task = _locked_task(session, task_id)
    subtask = _subtask(session, task, subtask_id)
    if subtask.status != SubtaskStatus.FAILED:
        raise _refuse_subtask(task, subtask)
    _transition(
        session, task, subtask, status=SubtaskStatus.READY, operation=_retried_operation(subtask)
    )
    _changed(session, task, f"subtask {subtask.id} retried")
    return subtask


def skip_subtask(session: Session, task_id: int, subtask_id: int) -> Sub:
    """Mark a failed subtask SUCCESSFUL without running it; what waited on it may run."""
    task = _locked_task(session, task_id)
    subtask = _subtask(session, task, subtask_id)
    if subtask.status != SubtaskStatus.FAILED:
        raise _refuse_subtask(task, subtask)
    _transition(
        session,
        task,
        subtask,
        status=SubtaskStatus.SUCCESSFUL,
        operation=Operation.SKIP,
        finish_time=utcnow(),
    )
    promote_neighbours(session, {Action(subtask.action): [subtask.id]})
    _changed(session, task, f"subtask {subtask.id} skipped")
    return subtask


def cancel_subtask(session: Session, task_id: int, subtask_id: int) -> Sub:
    """Ask a running subtask to stop (its owner ends it FAILED); a READY one fails at once."""
    task = _locked_task(session, task_id)
    subtask = _subtask(session, task, subtask_id)
    if subtask.status == SubtaskStatus.RUNNING:
        _transition(session, task, subtask, status=SubtaskStatus.CANCELING)
    elif subtask.status == SubtaskStatus.READY:
        _transition(
            session,
            task,
            subtask,
            status=SubtaskStatus.FAILED,
            operation=Operation.CANCEL,
            finish_time=utcnow(),
        )
    else:
        raise _refuse_subtask(task, subtask)
    _changed(session, task, f"subtask {subtask.id} cancel requested")
    return subtask
