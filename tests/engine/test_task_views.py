"""Task views kept per task version (api/taskviews.py): every kind of change shows at once, and
a view already built costs one query.

Each test polls through the cache, so it holds a view of every version it saw; a change that
did not bump the task's version would leave the cached view behind the task: the poll would
never see the awaited state, or the final comparison with a view built afresh would fail.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from sqlalchemy import event, select

from obfleet.api.rowmemo import EncodedRows, task_rows_kept
from obfleet.api.schemas.tasks import BasicTaskOut
from obfleet.api.taskviews import task_views
from obfleet.engine import Flow, kept, operations
from obfleet.engine.reads import TASK, task_summaries
from obfleet.engine.store import supports_skip_locked
from obfleet.store.db import Database
from obfleet.store.models.tasks import TaskInstance
from tests.engine.conftest import StartEngine, status_is, submit_flow, subtask, task_view
from tests.engine.subtasks import A, B, C, Journal, Patient

View = dict[str, Any]


def cached_view(db: Database, task_id: int) -> View:
    with db.session() as session:
        return task_views(db).get(session, task_id).data


def polled(db: Database, task_id: int) -> View:
    """The task's view through the cache, its task list row read first through the list's
    kept rows (api/rowmemo.py), so those hold a row of every version seen."""
    listed(db, task_id, task_rows_kept(db))
    return cached_view(db, task_id)


def listed(db: Database, task_id: int, kept: EncodedRows) -> Any:
    """The task's row as the task list shows it, through `kept`."""
    with db.session() as session:
        row = session.execute(task_summaries().where(TASK.id == task_id)).one()
        return orjson.loads(orjson.dumps(BasicTaskOut.page(session, [row], kept)))


async def cached_until(
    db: Database, task_id: int, predicate: Callable[[View], bool], timeout: float = 15
) -> View:
    """Poll the cached view until `predicate` holds, then check it, and the task list's kept
    row, against a fresh build."""
    deadline = time.monotonic() + timeout
    while True:
        view = await asyncio.to_thread(polled, db, task_id)
        if predicate(view):
            assert view == task_view(db, task_id)
            assert listed(db, task_id, task_rows_kept(db)) == listed(db, task_id, EncodedRows())
            return view
        if time.monotonic() > deadline:
            fresh = task_view(db, task_id)
            raise AssertionError(f"the cached view {view} stayed behind the task: {fresh}")
        await asyncio.sleep(0.01)


def apply(db: Database, operation: Callable[..., Any], *ids: int) -> None:
    with db.transaction() as session:
        operation(session, *ids)


async def failed_chain(db: Database, journal: Journal) -> tuple[int, int]:
    """A chain A -> B -> C whose B failed; returns the task and B's ids."""
    journal.fail_once.add("B")
    flow = Flow("views")
    flow.chain(A, B, C)
    task_id = submit_flow(db, flow)
    view = await cached_until(db, task_id, status_is("FAILED"))
    assert [s["status"] for s in view["subtasks"]] == ["SUCCESSFUL", "FAILED", "PENDING"]
    return task_id, subtask(view, "B")["id"]


async def test_runs_retries_and_skips_show_at_once(
    database: Database, start_engine: StartEngine, journal: Journal
) -> None:
    await start_engine()
    task_id, b = await failed_chain(database, journal)
    apply(database, operations.retry_subtask, task_id, b)
    view = await cached_until(database, task_id, status_is("SUCCESSFUL"))
    assert subtask(view, "B")["runTime"] == 2

    task_id, b = await failed_chain(database, journal)
    apply(database, operations.retry_task, task_id)
    view = await cached_until(database, task_id, status_is("SUCCESSFUL"))
    assert view["operation"] == "RETRY"

    task_id, b = await failed_chain(database, journal)
    apply(database, operations.skip_subtask, task_id, b)
    view = await cached_until(database, task_id, status_is("SUCCESSFUL"))
    assert subtask(view, "B")["operation"] == "SKIP"


async def test_rollback_shows_at_once(
    database: Database, start_engine: StartEngine, journal: Journal
) -> None:
    await start_engine()
    task_id, _ = await failed_chain(database, journal)
    apply(database, operations.rollback_task, task_id)
    view = await cached_until(database, task_id, status_is("SUCCESSFUL"))
    assert view["operation"] == "ROLLBACK"
    assert [s["operation"] for s in view["subtasks"]] == ["ROLLBACK", "ROLLBACK", "EXECUTE"]


async def test_cancel_and_release_show_at_once(
    database: Database, start_engine: StartEngine, journal: Journal
) -> None:
    engine = await start_engine()
    flow = Flow("cancel")
    flow.chain(Patient, A)
    task_id = submit_flow(database, flow)
    view = await cached_until(
        database, task_id, lambda v: subtask(v, "Patient")["status"] == "RUNNING"
    )
    apply(database, operations.cancel_subtask, task_id, subtask(view, "Patient")["id"])
    view = await cached_until(database, task_id, status_is("FAILED"))
    assert subtask(view, "Patient")["operation"] == "CANCEL"

    # A run the stopping engine hands back (READY again) shows too.
    flow = Flow("released")
    flow.add(Patient)
    task_id = submit_flow(database, flow)
    await cached_until(database, task_id, lambda v: subtask(v, "Patient")["status"] == "RUNNING")
    await engine.stop()
    await cached_until(database, task_id, lambda v: subtask(v, "Patient")["status"] == "READY")


def test_kept_context_shows_at_once(database: Database) -> None:
    flow = Flow("kept")
    flow.add(A)
    task_id = submit_flow(database, flow)
    assert "obproxy_id" not in cached_view(database, task_id)["context"]["stringMap"]
    with database.transaction() as session:
        kept.keep(session, task_id, "obproxy_id", "7")
    assert cached_view(database, task_id)["context"]["stringMap"]["obproxy_id"] == "7"
    assert cached_view(database, task_id) == task_view(database, task_id)


def test_a_cached_view_costs_one_primary_key_read(database: Database) -> None:
    flow = Flow("counted")
    flow.chain(A, B, C)
    task_id = submit_flow(database, flow)
    statements: list[str] = []

    def count(*args: Any) -> None:
        if not args[2].startswith("BEGIN"):  # SQLite's own BEGIN (store/db.py)
            statements.append(args[2])

    first = cached_view(database, task_id)
    event.listen(database.engine, "before_cursor_execute", count)
    try:
        again = cached_view(database, task_id)
    finally:
        event.remove(database.engine, "before_cursor_execute", count)
    assert again is first
    assert len(statements) == 1 and "version" in statements[0], statements


async def test_a_claim_leaves_a_held_task_rather_than_wait(
    database: Database, start_engine: StartEngine
) -> None:
    # A claim bumps its tasks' versions after locking its subtasks, the reverse of every other
    # writer's order: it must skip a task another transaction holds, and claim the rest.
    if not supports_skip_locked(database):
        pytest.skip("SQLite has one writer at a time; old MySQL has no SKIP LOCKED")
    held, free = Flow("held"), Flow("free")
    held.add(A)
    free.add(B)
    held_id = submit_flow(database, held)
    await start_engine()
    with database.session(write=True) as holder:
        holder.execute(select(TaskInstance.id).where(TaskInstance.id == held_id).with_for_update())
        free_id = submit_flow(database, free)
        await cached_until(database, free_id, status_is("SUCCESSFUL"))
        assert subtask(cached_view(database, held_id), "A")["status"] == "READY"
        holder.rollback()
    await cached_until(database, held_id, status_is("SUCCESSFUL"))
