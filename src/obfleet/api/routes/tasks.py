"""OCP's task API (ocp-docs/api/1000.task-management-interface/), plus an event stream."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import StreamingResponse
from sqlalchemy import Select
from sqlalchemy.sql.elements import ColumnElement

from obfleet.api.auth import require
from obfleet.api.deps import CtxDep, SessionDep
from obfleet.api.envelope import Envelope, EnvelopeResponse, ok
from obfleet.api.paging import Page, PageRequest, fetch_page, page_request, paged
from obfleet.api.rowmemo import task_rows_kept
from obfleet.api.schemas.tasks import BasicTaskOut, LogOut, SubtaskOut, TaskOut
from obfleet.api.taskevents import task_events
from obfleet.api.taskviews import task_views
from obfleet.engine import operations
from obfleet.engine.reads import TASK, find_task, subtask_log, task_summaries
from obfleet.engine.states import TaskStatus, TaskType
from obfleet.errors import bad_request
from obfleet.security.roles import Resource

router = APIRouter(prefix="/api/v2/tasks/instances", tags=["tasks"])
READ = Depends(require(Resource.TASK))
WRITE = Depends(require(Resource.TASK, write=True))
TaskId = Annotated[int, Path(alias="taskInstanceId")]
SubtaskId = Annotated[int, Path(alias="subtaskInstanceId")]
SORTABLE: dict[str, ColumnElement[Any]] = {
    "id": TASK.id,
    "name": TASK.name,
    "status": TASK.status,
    "type": TASK.type,
    "createTime": TASK.create_time,
    "startTime": TASK.start_time,
    "finishTime": TASK.finish_time,
}


def _known(field: str, values: list[str], allowed: type[StrEnum]) -> list[str]:
    """Unknown values are refused, as the host list does, rather than silently match nothing."""
    names = [member.value for member in allowed]
    unknown = [v for v in values if v not in names]
    if unknown:
        shown = ", ".join(v[:40] for v in unknown[:5])
        raise bad_request(f"{field} '{shown}' must be among {', '.join(names)}")
    return values


def _split(values: list[str] | None) -> list[str]:
    """`status=RUNNING,FAILED` and `status=RUNNING&status=FAILED` mean the same."""
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]


def _filtered(
    name: str | None,
    statuses: list[str],
    task_type: str | None,
    cluster_id: int | None,
    cluster_name: str | None,
    tenant_id: int | None,
    tenant_name: str | None,
    host_id: int | None,
) -> Select[Any]:
    stmt = task_summaries()
    if name:
        stmt = stmt.where(TASK.name.icontains(name, autoescape=True))
    if statuses:
        stmt = stmt.where(TASK.status.in_(statuses))
    if task_type:
        stmt = stmt.where(TASK.type == task_type)
    if cluster_id is not None:
        stmt = stmt.where(TASK.cluster_id == cluster_id)
    if cluster_name:
        stmt = stmt.where(TASK.cluster_name.icontains(cluster_name, autoescape=True))
    if tenant_id is not None:
        stmt = stmt.where(TASK.tenant_id == tenant_id)
    if tenant_name:
        stmt = stmt.where(TASK.tenant_name == tenant_name)
    if host_id is not None:
        stmt = stmt.where(TASK.host_id == host_id)
    return stmt


@router.get(
    "", dependencies=[READ], response_model=Envelope[Page[BasicTaskOut]], summary="Query tasks"
)
def list_tasks(
    session: SessionDep,
    ctx: CtxDep,
    page: PageRequest = Depends(page_request),
    name: str | None = Query(None, description="Keyword in the task name (fuzzy)."),
    status: list[str] | None = Query(None, description="RUNNING, FAILED, SUCCESSFUL"),
    type: str | None = Query(None, description="MANUAL, SYS_ONECE, SCHEDULED, SYS_SCHEDULED"),
    cluster_id: int | None = Query(None, alias="clusterId"),
    cluter_name: str | None = Query(
        None, alias="cluterName", description="Keyword in the cluster name (OCP's spelling)."
    ),
    cluster_name: str | None = Query(None, alias="clusterName", description="Same as cluterName."),
    tenant_id: int | None = Query(None, alias="tenantId"),
    tenant_name: str | None = Query(None, alias="tenantName"),
    host_id: int | None = Query(None, alias="hostId"),
) -> EnvelopeResponse:
    """Tasks, newest first, a page at a time, filtered by name, status, type, the cluster or the
    host they act on."""
    stmt = _filtered(
        name,
        _known("status", _split(status), TaskStatus),
        _known("type", [type], TaskType)[0] if type else None,
        cluster_id,
        cluster_name or cluter_name,
        tenant_id,
        tenant_name,
        host_id,
    )
    tasks, total = fetch_page(session, stmt, page, SORTABLE, SORTABLE["id"])
    return ok(paged(BasicTaskOut.page(session, tasks, task_rows_kept(ctx.db)), page, total))


@router.get(
    "/{taskInstanceId}",
    dependencies=[READ],
    response_model=Envelope[TaskOut],
    summary="Query details about a task",
)
def get_task(task_id: TaskId, session: SessionDep, ctx: CtxDep) -> EnvelopeResponse:
    """One task with every subtask: its status, its order, when it ran, on which node, and how to
    act on it."""
    # Pollers ask again and again: the view is built once per version of the task.
    return ok(task_views(ctx.db).get(session, task_id).encoded)


@router.post(
    "/{taskInstanceId}/retry",
    dependencies=[WRITE],
    response_model=Envelope[TaskOut],
    summary="Retry a task (all its failed subtasks)",
)
def retry_task(task_id: TaskId, session: SessionDep) -> EnvelopeResponse:
    """Run every failed subtask of a FAILED task again, and what depends on them."""
    operations.retry_task(session, task_id)
    return ok(TaskOut.load(session, task_id))


@router.post(
    "/{taskInstanceId}/rollback",
    dependencies=[WRITE],
    response_model=Envelope[TaskOut],
    summary="Roll back a task",
)
def rollback_task(task_id: TaskId, session: SessionDep) -> EnvelopeResponse:
    """Undo a FAILED task: every subtask that ran is rolled back, in reverse order."""
    operations.rollback_task(session, task_id)
    return ok(TaskOut.load(session, task_id))


@router.get(
    "/{taskInstanceId}/subtasks/{subtaskInstanceId}/log",
    dependencies=[READ],
    response_model=Envelope[LogOut],
    summary="Query logs of a subtask instance",
)
def get_subtask_log(
    task_id: TaskId, subtask_id: SubtaskId, session: SessionDep
) -> EnvelopeResponse:
    """What a subtask did and, when it failed, why: the commands it ran on hosts and their answers,
    secrets left out."""
    return ok(LogOut(log=subtask_log(session, task_id, subtask_id)))


@router.post(
    "/{taskInstanceId}/subtasks/{subtaskInstanceId}/retry",
    dependencies=[WRITE],
    response_model=Envelope[SubtaskOut],
    summary="Retry a failed subtask",
)
def retry_subtask(task_id: TaskId, subtask_id: SubtaskId, session: SessionDep) -> EnvelopeResponse:
    """Run a FAILED subtask again once its cause is fixed; the task goes on from there."""
    subtask = operations.retry_subtask(session, task_id, subtask_id)
    task = find_task(session, task_id)
    return ok(SubtaskOut.load(session, task, subtask))


@router.post(
    "/{taskInstanceId}/subtasks/{subtaskInstanceId}/skip",
    dependencies=[WRITE],
    response_model=Envelope[None],
    summary="Skip a failed subtask",
)
def skip_subtask(task_id: TaskId, subtask_id: SubtaskId, session: SessionDep) -> EnvelopeResponse:
    """Mark a FAILED subtask as done without running it, when its work was done by hand; the task
    goes on from there."""
    operations.skip_subtask(session, task_id, subtask_id)
    return ok()


@router.post(
    "/{taskInstanceId}/subtasks/{subtaskInstanceId}/cancel",
    dependencies=[WRITE],
    response_model=Envelope[None],
    summary="Cancel a running subtask",
)
def cancel_subtask(task_id: TaskId, subtask_id: SubtaskId, session: SessionDep) -> EnvelopeResponse:
    """Stop a RUNNING subtask; it ends FAILED and can be retried or skipped."""
    operations.cancel_subtask(session, task_id, subtask_id)
    return ok()


@router.get(
    "/{taskInstanceId}/events",
    dependencies=[READ],
    tags=["tasks (extension)"],
    summary="Stream a task's state changes (Server-Sent Events) — extension",
    description=(
        "**Extension** (not in OCP's API). A `text/event-stream`: first `event: task` with the "
        "WrappedTaskInstance, then `event: subtask` (a SubtaskInstance) whenever a subtask's "
        "status, operation, executor or runTime changes, `event: task` when the task's status "
        "or operation changes, and `event: end` once the task is SUCCESSFUL or FAILED."
    ),
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def task_event_stream(task_id: TaskId, ctx: CtxDep) -> StreamingResponse:
    """Server-Sent Events: each change of the task's or its subtasks' status as it happens, until
    the task ends."""
    with ctx.db.session() as session:
        find_task(session, task_id)  # an unknown task is a 4001 envelope, not a stream
    return StreamingResponse(
        task_events(ctx.db, task_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
    )
