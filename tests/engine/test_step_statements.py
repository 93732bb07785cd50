"""What one engine step sends the metadb when a run ends and promotes its downstream
(EngineStore.step): promotion asks once (and promotes in the same statement where the
database allows), a run that wrote no context has none read, and the task of a run that ended
and of the run claimed after it is locked and written once."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event, select, update

from obfleet.engine import Flow
from obfleet.engine.clock import DbClock
from obfleet.engine.context import ContextChanges
from obfleet.engine.dag import (
    DERIVED,
    SUBTASK_COUNTS,
    SUBTASKS,
    TASKS,
    task_statuses,
    updates_read_their_table,
)
from obfleet.engine.reads import SUB, TASK, subtask_log
from obfleet.engine.states import Action, Operation, SubtaskStatus
from obfleet.engine.store import Claim, EngineStore, Outcome
from obfleet.store.db import Database
from tests.engine.conftest import submit_flow
from tests.engine.subtasks import A, B, C


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(" ".join(args[2].split()))  # (conn, cursor, statement, ...)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def chain_started(database: Database) -> tuple[EngineStore, Claim]:
    """A store, and the claim of the first subtask of a chain A -> B -> C."""
    store = EngineStore(
        database,
        node_id="step-test",
        address="127.0.0.1",
        lease=timedelta(seconds=30),
        clock=DbClock(database),
    )
    store.register()
    flow = Flow("chain")
    flow.chain(A, B, C)
    submit_flow(database, flow)
    (first,) = store.step([], [], claim_limit=8, check_cancels=False).claims
    return store, first


def test_finishing_a_run_promotes_in_one_select_and_reads_no_context(database: Database) -> None:
    store, first = chain_started(database)
    with statements(database) as sent:  # finishing only: the claim reads contexts
        result = store.step(
            [Outcome(first, succeeded=True)], [], claim_limit=0, check_cancels=False
        )
    assert result.promoted == 1 and result.changed_tasks == {first.task_id}
    edges = [s for s in sent if "subtask_dependency" in s]
    assert len(edges) == 1, edges  # candidates and their blockers in one SELECT
    # which is the UPDATE that promotes them (not on MySQL: error 1093)
    if updates_read_their_table(database.engine.dialect):
        assert edges[0].startswith("UPDATE subtask_instance SET status"), edges
        assert not [s for s in sent if s.startswith("SELECT subtask_dependency")]
    contexts = [s for s in sent if s.startswith("SELECT") and "task_instance.context" in s]
    assert contexts == []  # the run changed no context: none is read
    if database.dialect == "sqlite":  # its write transaction holds the file: no lock to take
        assert not [s for s in sent if s.startswith("SELECT task_instance.id FROM task_instance")]


def test_a_step_writes_its_log_lines_in_one_insert(database: Database) -> None:
    store, first = chain_started(database)
    ran = [Outcome(first, succeeded=True)]
    with statements(database) as sent:
        (second,) = store.step(ran, [], claim_limit=8, check_cancels=False).claims
    inserts = [s for s in sent if s.startswith("INSERT INTO subtask_log")]
    # PostgreSQL: none of their own; the statements that finish and claim runs write them.
    assert len(inserts) == (0 if database.dialect == "postgresql" else 1), inserts
    with database.session() as session:
        finished = subtask_log(session, first.task_id, first.subtask_id).splitlines()
        claimed = subtask_log(session, second.task_id, second.subtask_id).splitlines()
    assert "new state: SUCCESSFUL" in finished[-1]
    assert len(claimed) == 1 and claimed[0].startswith("############{EXECUTE}{")


def test_ending_a_run_and_claiming_the_next_locks_and_writes_their_task_once(
    database: Database,
) -> None:
    store, first = chain_started(database)
    ran = [Outcome(first, succeeded=True, changes=ContextChanges(strings={"dir": "/x"}))]
    with statements(database) as sent:
        (second,) = store.step(ran, [], claim_limit=8, check_cancels=False).claims
    locks = [s for s in sent if s.startswith("SELECT task_instance.id") and "FOR UPDATE" in s]
    # Locked once, to finish the run (SQLite: none, the write transaction holds the file).
    assert len(locks) == (0 if database.dialect == "sqlite" else 1), locks
    writes = [s for s in sent if s.startswith("UPDATE task_instance SET")]
    # The context the run wrote, then settling, which bumps the version the claim needs bumped.
    assert len(writes) == 2, writes
    assert "context" in writes[0] and "version" in writes[1]
    assert second.task_id == first.task_id
    assert second.context["stringMap"] == {"dir": "/x"}  # as the run left it


# What a chain's step (finish a run, claim the next) sends, per database. PostgreSQL sends
# them in one pipeline with the commit: the claim is one statement (`first_ready` ...
# `taken`, which also writes the claimed runs' log headers and bumps their tasks), the
# statements that finish runs write their state lines, and settling derives the tasks'
# statuses itself (`dag.settle_derived`) instead of counting their subtasks first.
# MariaDB promotes with one UPDATE, as SQLite does; MySQL selects what to promote first.
# Without RETURNING the claimed rows are read back with their tasks' contexts.
CHAIN_STEP_STATEMENTS = {"sqlite": 7, "postgresql": 6, "mariadb": 10, "mysql": 11}


def test_a_chain_step_on_postgresql_is_pipelined(database: Database) -> None:
    store, first = chain_started(database)
    sent: list[tuple[str, bool]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, context: Any, *_: Any) -> None:
        # A pipelined statement has no SQLAlchemy execution context.
        sent.append((" ".join(statement.split()), context is None))

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        result = store.step(
            [Outcome(first, succeeded=True)], [], claim_limit=8, check_cancels=False
        )
    finally:
        event.remove(database.engine, "before_cursor_execute", record)
    (second,) = result.claims
    assert second.task_id == first.task_id and second.subtask_id != first.subtask_id
    assert result.changed_tasks == {first.task_id} and result.promoted == 1
    mariadb = getattr(database.engine.dialect, "is_mariadb", False)
    assert len(sent) == CHAIN_STEP_STATEMENTS["mariadb" if mariadb else database.dialect], sent
    pipelined = [statement for statement, pipelined in sent if pipelined]
    if database.dialect != "postgresql":
        assert pipelined == []
        return
    assert len(pipelined) == len(sent), sent  # none waits for its answer alone
    claims = [s for s in pipelined if s.startswith("WITH first_ready AS")]
    assert len(claims) == 1 and "FOR UPDATE SKIP LOCKED" in claims[0], claims
    assert not [s for s in pipelined if "count(*) AS n" in s]  # no counts read to settle


def test_settling_in_sql_derives_what_python_does(database: Database) -> None:
    """`dag.settle_derived`'s status (SQL) against `dag.derive_status`, for every status and
    action of a two-subtask task, executing and rolling back."""
    flow = Flow("two")
    flow.chain(A, B)
    task_id = submit_flow(database, flow)
    kinds = list(itertools.product(SubtaskStatus, Action))
    with database.transaction() as session:
        ids = list(session.scalars(select(SUB.id).where(SUB.task_id == task_id)))
        for operation in (Operation.EXECUTE, Operation.ROLLBACK):
            session.execute(update(TASKS).where(TASK.id == task_id).values(operation=operation))
            for kind in itertools.product(kinds, repeat=2):
                for subtask_id, (status, action) in zip(ids, kind, strict=True):
                    session.execute(
                        update(SUBTASKS)
                        .where(SUB.id == subtask_id)
                        .values(status=status, action=action)
                    )
                counts = session.execute(SUBTASK_COUNTS, {"ids": [task_id]})
                expected = task_statuses([task_id], counts)[task_id]
                derived = session.scalar(select(DERIVED).where(TASK.id == task_id))
                assert derived == expected, (operation, kind)
        session.rollback()


def test_a_run_cancelled_as_it_succeeded_ends_cancelled_and_keeps_no_context(
    database: Database,
) -> None:
    """The operator's cancel (CANCELING) wins over the run's success: the subtask ends FAILED
    with CANCEL and what the run wrote into the context is not kept."""
    store, first = chain_started(database)
    with database.transaction() as session:
        session.execute(
            update(SUBTASKS)
            .where(SUB.id == first.subtask_id)
            .values(status=SubtaskStatus.CANCELING)
        )
    ran = [Outcome(first, succeeded=True, changes=ContextChanges(strings={"dir": "/x"}))]
    result = store.step(ran, [], claim_limit=8, check_cancels=False)
    assert result.claims == [] and result.fenced_out == []
    with database.session() as session:
        row = session.execute(
            select(SUB.status, SUB.operation).where(SUB.id == first.subtask_id)
        ).one()
        context = session.scalar(select(TASK.context).where(TASK.id == first.task_id))
        log = subtask_log(session, first.task_id, first.subtask_id).splitlines()
    assert (row.status, row.operation) == (SubtaskStatus.FAILED, Operation.CANCEL)
    assert "dir" not in context.get("stringMap", {})
    assert "new state: FAILED" in log[-1]
