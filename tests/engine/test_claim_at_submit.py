"""A local engine with free slots has a new task's first subtasks claimed by the submitting
transaction (engine/local.py): RUNNING as of the commit, with no step of the engine's own.

Each check reads the rows right after the commit, before the test yields to the event loop,
where the engine's pump runs: without the claim at submit they would still be READY. The
engines poll rarely here, so no step of theirs holds their slots when a test submits.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from obfleet.engine import Flow, Subtask, submit
from obfleet.engine.observer import EngineObserver
from obfleet.engine.reads import subtask_log
from obfleet.store.db import Database
from obfleet.store.models.tasks import SubtaskInstance as Sub
from obfleet.store.models.tasks import TaskInstance as Task
from tests.engine.conftest import StartEngine, status_is, submit_flow, wait_for
from tests.engine.subtasks import A, B, C, D, Journal, Patient
from tests.engine.test_dag import HEADER, executed

QUIET = 30.0  # s between the engines' polls: they step only when woken


def rows(db: Database, task_id: int) -> tuple[Any, dict[str, Any]]:
    """The task's row, and its subtasks' rows by name."""
    with db.session() as session:
        task = session.execute(select(Task).where(Task.id == task_id)).scalar_one()
        subtasks = session.scalars(select(Sub).where(Sub.task_id == task_id)).all()
        return task, {s.name: s for s in subtasks}


def two_roots_then_a_join() -> Flow:
    flow = Flow("roots")
    flow.add(C, after=[flow.add(A), flow.add(B)])
    return flow


async def test_a_submit_claims_its_first_subtasks_for_the_local_engine(
    database: Database, start_engine: StartEngine, journal: Journal
) -> None:
    engine = await start_engine(poll_interval=QUIET)
    task_id = submit_flow(database, two_roots_then_a_join())
    task, subtasks = rows(database, task_id)  # no await since the commit: nothing ran yet
    for name in "AB":
        run = subtasks[name]
        assert (run.status, run.owner, run.executor) == ("RUNNING", engine.node_id, "127.0.0.1")
        assert (run.attempt, run.run_time, run.start_time) == (1, 1, task.create_time)
        assert run.lease_until is not None and run.lease_until > task.create_time
    assert subtasks["C"].status == "PENDING" and subtasks["C"].owner is None
    with database.session() as session:
        (header,) = subtask_log(session, task_id, subtasks["A"].id).splitlines()
    assert HEADER.match(header), header

    view = await wait_for(database, task_id, status_is("SUCCESSFUL"))
    assert sorted(executed(journal)) == [("A", -1), ("B", -1), ("C", -1)]
    assert all(s["runTime"] == 1 for s in view["subtasks"])


async def test_a_submit_takes_only_the_engines_free_slots(
    database: Database, start_engine: StartEngine, journal: Journal
) -> None:
    await start_engine(concurrency=1, poll_interval=QUIET)
    flow = Flow("three roots")
    for subtask in (A, B, C):
        flow.add(subtask)
    task_id = submit_flow(database, flow)
    _, subtasks = rows(database, task_id)
    assert [subtasks[n].status for n in "ABC"] == ["RUNNING", "READY", "READY"]
    await wait_for(database, task_id, status_is("SUCCESSFUL"))
    assert sorted(executed(journal)) == [("A", -1), ("B", -1), ("C", -1)]


async def test_a_rolled_back_submit_gives_its_slots_back(
    database: Database, start_engine: StartEngine
) -> None:
    await start_engine(concurrency=1, poll_interval=QUIET)
    try:
        with database.transaction() as session:
            submit(session, _one(A), creator="admin")
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    task_id = submit_flow(database, _one(B))  # the slot is free again: B is claimed
    _, subtasks = rows(database, task_id)
    assert subtasks["B"].status == "RUNNING"
    await wait_for(database, task_id, status_is("SUCCESSFUL"))


async def test_a_submit_in_a_savepoint_leaves_its_subtasks_to_the_engine(
    database: Database, start_engine: StartEngine, journal: Journal
) -> None:
    await start_engine(poll_interval=QUIET)
    with database.transaction() as session, session.begin_nested():
        # Releasing the savepoint is not the commit that makes the rows visible.
        task_id = submit(session, _one(D), creator="admin")
    _, subtasks = rows(database, task_id)
    assert subtasks["D"].status == "READY"
    await wait_for(database, task_id, status_is("SUCCESSFUL"))
    assert executed(journal) == [("D", -1)]


async def test_a_stopped_engine_takes_nothing(
    database: Database, start_engine: StartEngine
) -> None:
    engine = await start_engine(poll_interval=QUIET)
    await engine.stop()
    task_id = submit_flow(database, _one(A))
    _, subtasks = rows(database, task_id)
    assert subtasks["A"].status == "READY" and subtasks["A"].owner is None


class Claims(EngineObserver):
    def __init__(self) -> None:
        self.rounds: list[tuple[int, float]] = []

    def claimed(self, count: int, seconds: float) -> None:
        self.rounds.append((count, seconds))


async def test_one_transactions_runs_are_handed_over_together(
    database: Database, start_engine: StartEngine, journal: Journal
) -> None:
    """Two tasks submitted in one transaction: their runs start in one hand-over, so they
    end together and the engine records them in one step, not one after the other."""
    claims = Claims()
    await start_engine(poll_interval=QUIET, observer=claims)
    with database.transaction() as session:
        first = submit(session, _one(A), creator="admin")
        second = submit(session, _one(B), creator="admin")
    for task_id in (first, second):
        await wait_for(database, task_id, status_is("SUCCESSFUL"))
    assert claims.rounds[0] == (2, 0.0), claims.rounds  # 0 s: claimed by the submitting one


async def test_submits_from_several_threads_take_no_more_than_the_free_slots(
    database: Database, start_engine: StartEngine, journal: Journal
) -> None:
    await start_engine(concurrency=2, poll_interval=QUIET)
    submits = (asyncio.to_thread(submit_flow, database, _one(Patient)) for _ in range(6))
    task_ids = await asyncio.gather(*submits)
    while len(journal.events) < 2:  # the two that got slots have started
        await asyncio.sleep(0.01)
    with database.session() as session:
        statuses = session.scalars(select(Sub.status).where(Sub.task_id.in_(task_ids))).all()
    assert sorted(statuses) == ["READY"] * 4 + ["RUNNING"] * 2
    journal.release.set()
    for task_id in task_ids:
        await wait_for(database, task_id, status_is("SUCCESSFUL"))


def _one(subtask: type[Subtask]) -> Flow:
    flow = Flow(f"just {subtask.__name__}")
    flow.add(subtask)
    return flow
