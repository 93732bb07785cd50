"""`obfleet task ...`: list, inspect, watch and steer tasks."""

from __future__ import annotations

from typing import Annotated

import typer

from obfleet.client.output import Format, emit, err, out
from obfleet.client.session import FAILED, OutputOpt, ProfileOpt, WaitOpt, connect, started
from obfleet.client.watch import Watcher, log_tail

task_app = typer.Typer(help="Tasks: list, show, watch live, read logs, retry, roll back.")

TASKS = "/api/v2/tasks/instances"
TaskArg = Annotated[int, typer.Argument(help="Task id.")]
SubtaskArg = Annotated[int, typer.Argument(help="Subtask id (see `obfleet task show`).")]


@task_app.command("list")
def task_list(
    status: Annotated[
        list[str] | None, typer.Option(help="RUNNING, FAILED or SUCCESSFUL (repeatable).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Keyword in the task name.")] = None,
    limit: Annotated[int, typer.Option(help="Newest this many.")] = 50,
    profile: ProfileOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """List the newest tasks.

    Example: obfleet task list --status FAILED
    """
    with connect(profile) as api:
        page = api.get(TASKS, page=1, size=limit, sort="id,desc", status=status, name=name)
    columns = ("id", "name", "status", "operation", "createTime", "finishTime")
    emit(page["contents"], output, columns)


@task_app.command("show")
def task_show(task: TaskArg, profile: ProfileOpt = None, output: OutputOpt = Format.table) -> None:
    """Show a task and its subtasks.

    Example: obfleet task show 42 -o json
    """
    with connect(profile) as api:
        found = api.get(f"{TASKS}/{task}")
    if output is not Format.table:
        emit(found, output)
        return
    out.print(f"task {found['id']} {found['name']}: {found['status']} ({found['operation']})")
    columns = ("id", "name", "status", "operation", "parallelIdx", "startTime", "finishTime")
    emit(sorted(found["subtasks"], key=lambda s: s["seriesId"]), output, columns)


@task_app.command("watch")
def task_watch(task: TaskArg, profile: ProfileOpt = None) -> None:
    """Follow a task to its end: a live view of its DAG in a terminal, plain lines otherwise.
    Exits 0 when it succeeds, 1 when it fails (after printing the failed step's log tail).

    Example: obfleet task watch 42
    """
    with connect(profile) as api:
        ended = Watcher(api, out).watch(task)
    if ended["status"] != "SUCCESSFUL":
        raise typer.Exit(FAILED)


@task_app.command("log")
def task_log(
    task: TaskArg,
    subtask: SubtaskArg,
    lines: Annotated[int, typer.Option(help="Only the last lines (0: all).")] = 0,
    profile: ProfileOpt = None,
) -> None:
    """Print a subtask's log.

    Example: obfleet task log 42 317 --lines 50
    """
    with connect(profile) as api:
        if lines:
            text = log_tail(api, task, subtask, lines)
        else:
            text = api.get(f"{TASKS}/{task}/subtasks/{subtask}/log")["log"] or ""
    typer.echo(text)


def _steer(task: int, action: str, subtask: int | None, wait: bool, profile: str | None) -> None:
    path = f"{TASKS}/{task}" + (f"/subtasks/{subtask}" if subtask is not None else "")
    with connect(profile) as api:
        api.post(f"{path}/{action}")
        err.print(f"{action} of task {task} requested", markup=False)
        if wait:
            started(api, [api.get(f"{TASKS}/{task}")], wait)


@task_app.command("retry")
def task_retry(
    task: TaskArg,
    subtask: Annotated[
        int | None, typer.Option(help="Retry only this subtask (default: all failed).")
    ] = None,
    wait: WaitOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Run a failed task's failed subtasks again.

    Example: obfleet task retry 42 --wait
    """
    _steer(task, "retry", subtask, wait, profile)


@task_app.command("rollback")
def task_rollback(task: TaskArg, wait: WaitOpt = False, profile: ProfileOpt = None) -> None:
    """Undo a failed task's successful subtasks, in reverse order.

    Example: obfleet task rollback 42 --wait
    """
    _steer(task, "rollback", None, wait, profile)


@task_app.command("skip")
def task_skip(
    task: TaskArg, subtask: SubtaskArg, wait: WaitOpt = False, profile: ProfileOpt = None
) -> None:
    """Mark a failed subtask done without running it; the task goes on.

    Example: obfleet task skip 42 317 --wait
    """
    _steer(task, "skip", subtask, wait, profile)


@task_app.command("cancel")
def task_cancel(task: TaskArg, subtask: SubtaskArg, profile: ProfileOpt = None) -> None:
    """Cancel a running subtask (it fails; then retry, skip or roll back).

    Example: obfleet task cancel 42 317
    """
    _steer(task, "cancel", subtask, False, profile)
