"""Operator actions: a state x operation table (allowed ones work, others 4007 and no change),
then the allowed ones end to end with a running engine: retry, skip, cancel, rollback order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from obfleet.engine import Flow, operations
from obfleet.errors import ApiError
from obfleet.store.db import Database
from obfleet.store.models.tasks import SubtaskInstance, TaskInstance
from tests.engine.conftest import (
    StartEngine,
    status_is,
    submit_flow,
    subtask,
    task_view,
    wait_for,
)
from tests.engine.subtasks import A, B, C, D, E, Journal, Patient, Undoable

SUBTASK_STATES = ["PENDING", "READY", "RUNNING", "CANCELING", "FAILED", "SUCCESSFUL"]
SUBTASK_OPERATIONS: dict[str, tuple[Callable[..., Any], set[str], str]] = {
    # operation: (function, states it is allowed in, the state it leads to)
    "retry": (operations.retry_subtask, {"FAILED"}, "READY"),
    "skip": (operations.skip_subtask, {"FAILED"}, "SUCCESSFUL"),
    "cancel": (operations.cancel_subtask, {"RUNNING", "READY"}, ""),
}
CANCELLED_TO = {"RUNNING": "CANCELING", "READY": "FAILED"}
TASK_OPERATIONS = {"retry": operations.retry_task, "rollback": operations.rollback_task}


def force_state(db: Database, task_status: str, subtask_status: str) -> tuple[int, int]:
    """A one-subtask task put straight into the given states (no engine runs here)."""
    flow = Flow("table")
    flow.add(A)
    task_id = submit_flow(db, flow)
    with db.transaction() as session:
        session.execute(
            update(TaskInstance).where(TaskInstance.id == task_id).values(status=task_status)
        )
        session.execute(
            update(SubtaskInstance)
            .where(SubtaskInstance.task_id == task_id)
            .values(status=subtask_status, run_time=1)
        )
    return task_id, task_view(db, task_id)["subtasks"][0]["id"]


def apply(db: Database, operation: Callable[..., Any], *ids: int) -> None:
    with db.transaction() as session:
        operation(session, *ids)


@pytest.mark.parametrize("state", SUBTASK_STATES)
@pytest.mark.parametrize("name", list(SUBTASK_OPERATIONS))
def test_subtask_operation_table(database: Database, name: str, state: str) -> None:
    operation, allowed, leads_to = SUBTASK_OPERATIONS[name]
    task_status = "FAILED" if state in ("FAILED", "PENDING") else "RUNNING"
    task_id, subtask_id = force_state(database, task_status, state)
    before = task_view(database, task_id)
    if state in allowed:
        apply(database, operation, task_id, subtask_id)
        after = task_view(database, task_id)["subtasks"][0]
        assert after["status"] == (leads_to or CANCELLED_TO[state])
        assert (
            after["operation"]
            == {
                "retry": "RETRY",
                "skip": "SKIP",
                "cancel": ("CANCEL" if state == "READY" else "EXECUTE"),
            }[name]
        )
        return
    with pytest.raises(ApiError) as refused:
        apply(database, operation, task_id, subtask_id)
    assert refused.value.error_code.code == 4007
    assert f"({task_id}) task is in the {state} state" in refused.value.message
    assert task_view(database, task_id) == before


@pytest.mark.parametrize("state", ["RUNNING", "FAILED", "SUCCESSFUL"])
@pytest.mark.parametrize("name", list(TASK_OPERATIONS))
def test_task_operation_table(database: Database, name: str, state: str) -> None:
    subtask_state = {"RUNNING": "RUNNING", "FAILED": "FAILED", "SUCCESSFUL": "SUCCESSFUL"}[state]
    task_id, _ = force_state(database, state, subtask_state)
    before = task_view(database, task_id)
    if state == "FAILED":
        apply(database, TASK_OPERATIONS[name], task_id)
        after = task_view(database, task_id)
        assert after["status"] == "RUNNING"
        assert after["operation"] == {"retry": "RETRY", "rollback": "ROLLBACK"}[name]
        assert after["subtasks"][0]["status"] == "READY"
        return
    with pytest.raises(ApiError) as refused:
        apply(database, TASK_OPERATIONS[name], task_id)
    assert refused.value.error_code.code == 4007
    assert refused.value.message == (
        f"The operation is not allowed because the table ({task_id}) task is in the {state} state."
    )
    assert task_view(database, task_id) == before


def test_unknown_task_or_subtask_is_4001(database: Database) -> None:
    task_id, subtask_id = force_state(database, "FAILED", "FAILED")
    for call in (
        lambda s: operations.retry_task(s, 999999),
        lambda s: operations.rollback_task(s, 999999),
        lambda s: operations.skip_subtask(s, task_id, 999999),
        lambda s: operations.retry_subtask(s, 999999, subtask_id),
    ):
        with pytest.raises(ApiError) as missing, database.transaction() as session:
            call(session)
        assert missing.value.error_code.code == 4001


def test_rollback_refused_when_prohibited(database: Database) -> None:
    flow = Flow("undoable")
    flow.chain(Undoable, A)
    task_id = submit_flow(database, flow)
    with database.transaction() as session:
        session.execute(update(TaskInstance).values(status="FAILED"))
        session.execute(
            update(SubtaskInstance)
            .where(SubtaskInstance.name == "Undoable")
            .values(status="SUCCESSFUL", run_time=1)
        )
        session.execute(
            update(SubtaskInstance)
            .where(SubtaskInstance.name == "A")
            .values(status="FAILED", run_time=1)
        )
    before = task_view(database, task_id)
    with pytest.raises(ApiError) as refused:
        apply(database, operations.rollback_task, task_id)
    assert refused.value.error_code.code == 4007 and "prohibits rollback" in refused.value.message
    assert task_view(database, task_id) == before

    flow = Flow("whole task prohibits", prohibit_rollback=True)
    flow.add(A)
    other, _ = force_state(database, "FAILED", "FAILED")
    with database.transaction() as session:
        session.execute(
            update(TaskInstance).where(TaskInstance.id == other).values(prohibit_rollback=True)
        )
    with pytest.raises(ApiError):
        apply(database, operations.rollback_task, other)


# --- with the engine -----------------------------------------------------------------


async def failed_chain(
    database: Database, start_engine: StartEngine, journal: Journal, failing: str = "B"
) -> int:
    await start_engine()
    journal.fail_once.add(failing)
    flow = Flow("ops")
    flow.chain(A, B, C)
    task_id = submit_flow(database, flow)
    await wait_for(database, task_id, status_is("FAILED"))
    return task_id


async def test_retry_task_runs_the_failed_subtask_again(
    database: Database, start_engine: StartEngine, journal: Journal
) -> None:
    task_id = await failed_chain(database, start_engine, journal)
    apply(database, operations.retry_task, task_id)
    view = await wait_for(database, task_id, status_is("SUCCESSFUL"))
    b = subtask(view, "B")
    assert (b["runTime"], b["operation"], view["operation"]) == (2, "RETRY", "RETRY")
    assert subtask(view, "A")["runTime"] == 1 and subtask(view, "C")["runTime"] == 1


async def test_retry_subtask(
    database: Database, start_engine: StartEngine, journal: Journal
) -> None:
    task_id = await failed_chain(database, start_engine, journal)
    b = subtask(task_view(database, task_id), "B")
    apply(database, operations.retry_subtask, task_id, b["id"])
    view = await wait_for(database, task_id, status_is("SUCCESSFUL"))
    assert subtask(view, "B")["runTime"] == 2


async def test_skip_subtask_lets_the_task_finish(
    database: Database, start_engine: StartEngine, journal: Journal
) -> None:
    task_id = await failed_chain(database, start_engine, journal)
    b = subtask(task_view(database, task_id), "B")
    apply(database, operations.skip_subtask, task_id, b["id"])
    view = await wait_for(database, task_id, status_is("SUCCESSFUL"))
    assert (subtask(view, "B")["status"], subtask(view, "B")["operation"]) == ("SUCCESSFUL", "SKIP")
    assert subtask(view, "C")["runTime"] == 1


async def test_cancel_running_subtask(
    database: Database, start_engine: StartEngine, journal: Journal
) -> None:
    await start_engine()
    flow = Flow("cancel")
    flow.chain(Patient, A)
    task_id = submit_flow(database, flow)
    view = await wait_for(database, task_id, lambda v: subtask(v, "Patient")["status"] == "RUNNING")
    apply(database, operations.cancel_subtask, task_id, subtask(view, "Patient")["id"])
    view = await wait_for(database, task_id, status_is("FAILED"))
    patient = subtask(view, "Patient")
    assert (patient["status"], patient["operation"]) == ("FAILED", "CANCEL")
    assert ("stopped", "Patient", -1) in journal.events
    assert subtask(view, "A")["status"] == "PENDING"


async def test_rollback_undoes_what_ran_in_reverse_dependency_order(
    database: Database, start_engine: StartEngine, journal: Journal
) -> None:
    #   A -> B -> D(fails)      E never runs
    #   A -> C -> D
    await start_engine()
    journal.fail_once.add("D")
    flow = Flow("rollback")
    a = flow.add(A)
    d = flow.add(D, after=[flow.add(B, after=a), flow.add(C, after=a)])
    flow.add(E, after=d)
    task_id = submit_flow(database, flow)
    await wait_for(database, task_id, status_is("FAILED"))
    apply(database, operations.rollback_task, task_id)
    view = await wait_for(database, task_id, status_is("SUCCESSFUL"))

    undone = [name for what, name, _ in journal.events if what == "rollback"]
    assert undone[0] == "D" and sorted(undone[1:3]) == ["B", "C"] and undone[3] == "A"
    assert view["operation"] == "ROLLBACK"
    for name in "ABCD":
        assert (subtask(view, name)["status"], subtask(view, name)["operation"]) == (
            "SUCCESSFUL",
            "ROLLBACK",
        )
    assert subtask(view, "E")["status"] == "PENDING" and subtask(view, "E")["runTime"] == 0
    assert subtask(view, "A")["runTime"] == 2  # executed once, rolled back once


def test_sessions_are_plain(database: Database) -> None:
    # Operations work inside any caller's session: nothing commits behind its back.
    task_id, subtask_id = force_state(database, "FAILED", "FAILED")
    session: Session
    with database.session(write=True) as session:
        operations.skip_subtask(session, task_id, subtask_id)
        session.rollback()
    assert task_view(database, task_id)["subtasks"][0]["status"] == "FAILED"
