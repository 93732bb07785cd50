"""What one engine step sends the metadb when a run ends and promotes its downstream
(EngineStore.step): promotion asks once (and promotes in the same statement where the
database allows), a run that wrote no context has none read, and the task of a run that ended
and of the run claimed after it is locked and written once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event

from obfleet.engine import Flow
from obfleet.engine.clock import DbClock
from obfleet.engine.context import ContextChanges
from obfleet.engine.reads import subtask_log
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
    if database.dialect != "mysql":  # which is the UPDATE that promotes them (not on MySQL)
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
    assert len([s for s in sent if s.startswith("INSERT INTO subtask_log")]) == 1
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


# What a chain's step (finish a run, claim the next) sends, per database: on PostgreSQL the
# claim is one statement (`first_ready` ... `taken`), and finishing also ends runs an
# operator cancelled meanwhile with a statement of its own, instead of reading them first.
CHAIN_STEP_STATEMENTS = {"sqlite": 7, "postgresql": 8, "mysql": 12}


def test_a_chain_step_on_postgresql_is_pipelined(database: Database) -> None:
    store, first = chain_started(database)
    sent: list[tuple[str, bool]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, context: Any, *_: Any) -> None:
        # A pipelined statement has no SQLAlchemy execution context.
        sent.append((" ".join(statement.split()), context is None))

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        (second,) = store.step(
            [Outcome(first, succeeded=True)], [], claim_limit=8, check_cancels=False
        ).claims
    finally:
        event.remove(database.engine, "before_cursor_execute", record)
    assert second.task_id == first.task_id and second.subtask_id != first.subtask_id
    assert len(sent) == CHAIN_STEP_STATEMENTS[database.dialect], sent
    pipelined = [statement for statement, pipelined in sent if pipelined]
    if database.dialect != "postgresql":
        assert pipelined == []
        return
    assert len(pipelined) == len(sent), sent  # none waits for its answer alone
    claims = [s for s in pipelined if s.startswith("WITH first_ready AS")]
    assert len(claims) == 1 and "FOR UPDATE SKIP LOCKED" in claims[0], claims
    assert not [s for s in pipelined if s.startswith("SELECT subtask_instance.id, subtask_")]
