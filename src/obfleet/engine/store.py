"""The runner's transactions: claiming, finishing, lease renewal, reclaiming, node registry.

Every write about a running subtask is fenced: it names the node (`owner`) and the fencing
token (`attempt`) it claimed, and changes nothing if another node has since reclaimed it.
Every method is one short transaction, retried when the database reports a deadlock.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import (
    BindParameter,
    Connection,
    Insert,
    Select,
    String,
    Table,
    Update,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from obfleet.engine.clock import DbClock
from obfleet.engine.context import ContextChanges, log_prefix
from obfleet.engine.dag import (
    BUMP_VERSIONS,
    IDS,
    LOCK,
    LOCK_ONLY,
    PROMOTE_EXECUTED,
    SUBTASKS,
    TASKS,
    lock_task_rows,
    lock_tasks,
    promote_neighbours,
    rows_updated,
    settle_derived,
    settle_tasks,
    touch_tasks,
)
from obfleet.engine.pipeline import Pipeline, Sent
from obfleet.engine.reads import SUB, TASK
from obfleet.engine.states import LEASED, Action, Operation, SubtaskStatus, TaskStatus
from obfleet.store.db import Database
from obfleet.store.models.tasks import EngineNode, SubtaskLog
from obfleet.store.models.tasks import SubtaskInstance as Sub
from obfleet.timefmt import iso

log = logging.getLogger("obfleet.engine")

T = TypeVar("T")

# PostgreSQL deadlock / serialization failure; MySQL deadlock / lock wait timeout.
_PG_TRANSIENT = {"40P01", "40001"}
_MYSQL_TRANSIENT = {1213, 1205}
_ATTEMPTS = 8

# The step's statements, built once (see engine/dag.py for why).
_NODE: BindParameter[str] = bindparam("node")
_FINISHED: BindParameter[datetime] = bindparam("finished")
# The outcomes' subtasks while this node still holds the attempts it claimed: `ids` for the
# primary key index, `runs` the (id, attempt) pairs.
_FENCED = and_(
    SUB.id.in_(IDS),
    SUB.owner == _NODE,
    tuple_(SUB.id, SUB.attempt).in_(bindparam("runs", expanding=True)),
)
_LIVE = select(SUB.id, SUB.status).where(_FENCED)
_RELEASED = {"finish_time": _FINISHED, "owner": None, "lease_until": None}
_FINISH = (
    update(SUBTASKS)
    .where(_FENCED, SUB.status == SubtaskStatus.RUNNING)
    .values(status=bindparam("outcome"), **_RELEASED)
)
_FINISH_CANCELLED = (
    update(SUBTASKS)
    .where(_FENCED, SUB.status.in_(LEASED))
    .values(status=SubtaskStatus.FAILED, operation=Operation.CANCEL, **_RELEASED)
)
# A finished run's context changes, merged into its task's context: one executemany.
_SET_CONTEXT = update(TASKS).where(TASK.id == bindparam("task")).values(context=bindparam("merged"))
_CLAIMED = (
    SUB.id,
    SUB.task_id,
    SUB.attempt,
    SUB.run_time,
    SUB.action,
    SUB.operation,
    SUB.class_name,
    SUB.timeout,
    SUB.parallel_idx,
    SUB.name,
    SUB.series_id,
)
_CLAIMING: dict[str, Any] = {
    "status": SubtaskStatus.RUNNING,
    "owner": _NODE,
    "executor": bindparam("address"),
    "attempt": SUB.attempt + 1,
    "run_time": SUB.run_time + 1,
    "lease_until": bindparam("lease"),
    "start_time": bindparam("started"),
    "finish_time": None,
}
_CLAIM = (
    update(SUBTASKS).where(SUB.id.in_(IDS), SUB.status == SubtaskStatus.READY).values(**_CLAIMING)
)
_CLAIM_RETURNING = _CLAIM.returning(*_CLAIMED)
# PostgreSQL: statements that need no answer from the step's earlier ones, so a step sends
# them all before it waits (engine/pipeline.py).
# The subtasks the step recorded the runs of: finished by it, at its own time `finished`.
_RECORDED = select(SUB.task_id).where(
    SUB.id.in_(IDS), SUB.owner.is_(None), SUB.finish_time == _FINISHED
)
# The claim as one statement: the first `limit` READY subtasks (SKIP LOCKED), their tasks'
# rows locked unless another transaction holds them (SKIP LOCKED, as `_claim` does; a task
# this transaction locked to finish a run is its own, not skipped), those whose tasks it
# holds claimed, each one's log header written, the versions of their tasks bumped (those
# the step settles are bumped by settling). It returns them with their tasks' contexts, and
# one row at least: `skipped` counts the READY ones left (contended).
_FIRST_READY = (
    select(SUB.id, SUB.task_id)
    .where(SUB.status == SubtaskStatus.READY)
    .order_by(SUB.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
    .cte("first_ready")
)
_HELD = (
    select(TASK.id)
    .where(TASK.id.in_(select(_FIRST_READY.c.task_id)))
    .order_by(TASK.id)
    .with_for_update(skip_locked=True)
    .cte("held")
)
_TAKEN = (
    update(SUBTASKS)
    .where(
        SUB.id == _FIRST_READY.c.id,
        _FIRST_READY.c.task_id.in_(select(_HELD.c.id)),
        SUB.status == SubtaskStatus.READY,
    )
    .values(**_CLAIMING)
    .returning(*_CLAIMED)
    .cte("taken")
)
_BUMPED = (
    update(TASKS)
    .where(TASK.id.in_(select(_TAKEN.c.task_id)), TASK.id.not_in(_RECORDED))
    .values(version=TASK.version + 1)
    .returning(TASK.id)
    .cte("bumped")
)
LOGS = cast(Table, SubtaskLog.__table__)
_HEADERS = (
    insert(LOGS)
    .from_select(
        ["subtask_id", "attempt", "line"],
        select(
            _TAKEN.c.id,
            _TAKEN.c.attempt,
            "############{"
            + _TAKEN.c.operation
            + "}{"
            + bindparam("at", type_=String)
            + "}############",
        ),
    )
    .returning(LOGS.c.id)
    .cte("headers")
)
_SKIPPED = (
    select(func.count().label("skipped"))
    .select_from(_FIRST_READY)
    .where(_FIRST_READY.c.task_id.not_in(select(_HELD.c.id)))
    .subquery("left_ready")
)
_CLAIM_ALL_AT_ONCE = (
    select(_SKIPPED.c.skipped, *_TAKEN.c, TASK.context)
    .select_from(_SKIPPED.outerjoin(_TAKEN.join(TASKS, TASK.id == _TAKEN.c.task_id), true()))
    .add_cte(_BUMPED, _HEADERS)
)
# Settling the tasks of the runs the step recorded, which it does not know yet.
_SETTLE_RECORDED = settle_derived(_RECORDED)
# What the log says when a run's state is recorded (each run's own lines before it).
_STATE_LINE = ("Set state for subtask: ", ", current state: RUNNING, new state: ")


def _finish_logged(statement: Update) -> Insert:
    """`statement` (a run-finishing UPDATE), each run it records getting its state line in
    the same statement; RETURNING the subtasks' ids."""
    done = statement.returning(SUB.id, SUB.attempt, SUB.status).cte("done")
    line = (
        bindparam("prefix", type_=String)
        + f" {_STATE_LINE[0]}"
        + done.c.id.cast(String)
        + _STATE_LINE[1]
        + done.c.status
    )
    return (
        insert(LOGS)
        .from_select(["subtask_id", "attempt", "line"], select(done.c.id, done.c.attempt, line))
        .add_cte(done)
        .returning(LOGS.c.subtask_id)
    )


_FINISH_LOGGED = _finish_logged(_FINISH)
_FINISH_CANCELLED_LOGGED = _finish_logged(_FINISH_CANCELLED)
# Without RETURNING (MySQL, MariaDB): the claimed rows read back, with their tasks' contexts
# (one statement where reading the contexts took another).
_CLAIMED_BY_NODE = (
    select(*_CLAIMED, TASK.context)
    .join(TASKS, TASK.id == SUB.task_id)
    .where(SUB.id.in_(IDS), SUB.owner == _NODE, SUB.status == SubtaskStatus.RUNNING)
)
_LOCK_UNLESS_HELD = (
    select(TASK.id).where(TASK.id.in_(IDS)).order_by(TASK.id).with_for_update(skip_locked=True)
)
_CANCELING = select(SUB.id).where(SUB.owner == _NODE, SUB.status == SubtaskStatus.CANCELING)
_ENDED = (
    select(TASK.id, TASK.name, TASK.status, TASK.operation, TASK.start_time)
    .where(TASK.id.in_(IDS))
    .order_by(TASK.id)
)
APPEND_LOG = insert(LOGS)
_BUMP_RETURNING = BUMP_VERSIONS.returning(TASK.id, TASK.context)


@functools.cache
def _candidates(limit: int, skip_locked: bool) -> Select[Any]:
    """The first `limit` READY subtasks, by id (one statement per limit, built once)."""
    statement = select(SUB.id, SUB.task_id).where(SUB.status == SubtaskStatus.READY)
    statement = statement.order_by(SUB.id).limit(limit)
    # Another node's claim skips the rows this one locks instead of waiting for them.
    return statement.with_for_update(skip_locked=True) if skip_locked else statement


@functools.cache
def _returning_ids(statement: Update) -> Update:
    """`statement` RETURNING the subtasks' ids, built once: a statement built per step costs
    its cache key on every execution."""
    return statement.returning(SUB.id)


def run_header(operation: str, at: datetime) -> str:
    """The line that opens each run's log, as in OCP's samples."""
    return f"############{{{operation}}}{{{iso(at)}}}############"


def is_transient(error: DBAPIError) -> bool:
    orig = error.orig
    if getattr(orig, "sqlstate", None) in _PG_TRANSIENT:
        return True
    args = getattr(orig, "args", ())
    if args and args[0] in _MYSQL_TRANSIENT:
        return True
    return "database is locked" in str(orig)


def supports_skip_locked(db: Database) -> bool:
    dialect = db.engine.dialect
    if dialect.name == "postgresql":
        return True
    if dialect.name != "mysql":
        return False
    version = dialect.server_version_info or ()
    return version >= ((10, 6) if getattr(dialect, "is_mariadb", False) else (8, 0))


@dataclass(frozen=True)
class Claim:
    """A subtask this node now owns, with what it needs to run it."""

    subtask_id: int
    task_id: int
    attempt: int
    run_time: int
    action: str
    class_name: str
    timeout: int
    parallel_idx: int
    context: dict[str, Any]
    name: str = ""
    # The subtask's place in its flow: 0 is the flow's first step, so its first run starts
    # the task.
    series_id: int = -1


@dataclass
class Outcome:
    claim: Claim
    succeeded: bool
    cancelled: bool = False
    changes: ContextChanges = field(default_factory=ContextChanges)


@dataclass(frozen=True)
class LogLine:
    subtask_id: int
    attempt: int
    line: str


@dataclass(frozen=True)
class TaskEnd:
    """A task that a step settled SUCCESSFUL or FAILED."""

    task_id: int
    name: str
    status: str
    operation: str
    seconds: float


@dataclass
class StepResult:
    claims: list[Claim] = field(default_factory=list)
    fenced_out: list[Outcome] = field(default_factory=list)
    canceling: set[int] = field(default_factory=set)
    changed_tasks: set[int] = field(default_factory=set)
    ended: list[TaskEnd] = field(default_factory=list)
    promoted: int = 0
    # Some READY subtasks were left because another transaction held their tasks.
    contended: bool = False


@dataclass
class _Answers:
    """What a pipelined step sent and reads once its pipeline has synced."""

    locked: Sent | None = None  # the runs' tasks' contexts, when a run changed its task's
    finished: list[tuple[SubtaskStatus, Sent]] = field(default_factory=list)  # recorded
    promoted: Sent | None = None
    claimed: Sent | None = None
    settled: Sent | None = None
    canceling: Sent | None = None


class EngineStore:
    def __init__(
        self, db: Database, *, node_id: str, address: str, lease: timedelta, clock: DbClock
    ) -> None:
        self.db = db
        self.node_id = node_id
        self.address = address
        self.lease = lease
        self.clock = clock
        self.skip_locked = supports_skip_locked(db)
        # PostgreSQL and SQLite >= 3.35 have UPDATE ... RETURNING; MySQL and MariaDB do not.
        self.returning = db.engine.dialect.update_returning
        # Whether task rows can be locked one by one (not SQLite: a writer holds the file).
        self.row_locks = db.dialect != "sqlite"
        # PostgreSQL through psycopg 3: the step's statements go out in pipelines.
        self.pipelined = db.dialect == "postgresql" and db.engine.dialect.driver == "psycopg"
        # Subtasks this node reclaimed from runners that stopped renewing their leases.
        self.taken_over = 0
        self._connection: Connection | None = None

    def _transaction(self, work: Callable[[Session], T]) -> T:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with self._session() as session, session.begin():
                    return work(session)
            except DBAPIError as error:
                if attempt == _ATTEMPTS or not is_transient(error):
                    raise
                time.sleep(random.uniform(0.001, 0.01) * attempt)
        raise AssertionError("unreachable")

    def _session(self) -> Session:
        """A write session; on PostgreSQL and MySQL on the engine's own connection, held
        across its transactions (all on the engine's database thread).

        Through the pool, each transaction's connection was pinged first (a round trip), and
        on PostgreSQL a connection a read session had used came back without its prepared
        statements (psycopg drops them on ROLLBACK), so the step's were parsed and planned
        anew most times. A connection lost meanwhile fails that transaction (the pump retries
        at its next turn) and is replaced on the next one.
        """
        if not self.row_locks:  # SQLite: the pool's connections (the write gate's turns)
            return self.db.session(write=True)
        if self._connection is None:
            self._connection = self.db.engine.connect()
        return Session(bind=self._connection, expire_on_commit=False)

    def close(self) -> None:
        """Give the engine's own connection back (the engine stops)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _fence(self, subtask_id: int, attempt: int) -> tuple[Any, ...]:
        return (Sub.id == subtask_id, Sub.owner == self.node_id, Sub.attempt == attempt)

    # --- the runner's main step: finish, log, claim -------------------------------------

    def step(
        self, outcomes: list[Outcome], logs: list[LogLine], claim_limit: int, check_cancels: bool
    ) -> StepResult:
        """One transaction: record finished runs, claim up to `claim_limit`, settle their
        tasks, append logs.

        Claiming in the same transaction that finishes an upstream starts its downstream with
        no extra round trip; settling after the claim writes each of their tasks' rows once.
        """

        if self.pipelined:
            return self._transaction(
                lambda session: self._pipelined_step(
                    session, outcomes, logs, claim_limit, check_cancels
                )
            )

        def work(session: Session) -> StepResult:
            result = StepResult()
            now = self.clock.now()
            lines = list(logs)
            if outcomes:
                self._finish(session, outcomes, now, result, lines)
            finished = set(result.changed_tasks)
            locked = {o.claim.task_id for o in outcomes}  # by _finish
            claimed = self._claim(session, claim_limit, now, result, locked) if claim_limit else []
            contexts = self._settle(session, finished, {r.task_id for r in claimed}, now, result)
            if not self.returning:
                contexts = {r.task_id: r.context for r in claimed}
            _headers(claimed, now, lines)
            self._claims(claimed, contexts, result)
            if lines:  # the runs' lines, the finished ones' and the claimed ones' headers
                session.execute(APPEND_LOG, _log_rows(lines))
            if check_cancels:
                result.canceling = set(session.scalars(_CANCELING, {"node": self.node_id}))
            return result

        return self._transaction(work)

    def _finish(
        self,
        session: Session,
        outcomes: list[Outcome],
        now: datetime,
        result: StepResult,
        logs: list[LogLine],
    ) -> None:
        task_ids = [o.claim.task_id for o in outcomes]
        contexts: dict[int, dict[str, Any]] = {}
        if any(o.changes for o in outcomes):
            contexts = lock_tasks(session, task_ids)
        else:  # most steps: no run wrote context, so none is read
            lock_task_rows(session, task_ids, row_locks=self.row_locks)
        recorded = self._record_outcomes(session, outcomes, now)
        _state_lines(outcomes, recorded, logs)
        dirty = _note_recorded(outcomes, recorded, contexts, result)
        if dirty:
            session.execute(_SET_CONTEXT, dirty)
        result.promoted = promote_neighbours(session, _executed_and_rolled_back(outcomes, recorded))

    def _record_outcomes(
        self, session: Session, outcomes: list[Outcome], now: datetime
    ) -> dict[int, SubtaskStatus]:
        """Store runs' results under their fences, one UPDATE per resulting status; returns the
        status stored for each subtask (a run whose lease was lost meanwhile has none).

        A subtask an operator cancelled ends FAILED with operation CANCEL, whatever its run
        returned: the operator's word is the last one.
        """
        live: dict[int, str] | None = None
        if not self.returning:
            # Without UPDATE ... RETURNING: read which runs are still ours first. With their
            # tasks locked nobody else can change these rows (a claim takes READY ones only),
            # so the UPDATEs below match exactly what this read finds.
            live = {
                row.id: row.status for row in session.execute(_LIVE, self._fenced(outcomes, now))
            }
        recorded: dict[int, SubtaskStatus] = {}
        for status, group in _by_result(outcomes):
            ids = self._update_runs(
                session, _FINISH, group, now, live, (SubtaskStatus.RUNNING,), outcome=status
            )
            recorded.update(dict.fromkeys(ids, status))
        cancelled = [o for o in outcomes if o.claim.subtask_id not in recorded]
        ids = self._update_runs(session, _FINISH_CANCELLED, cancelled, now, live, LEASED)
        recorded.update(dict.fromkeys(ids, SubtaskStatus.FAILED))
        return recorded

    def _fenced(self, outcomes: Collection[Outcome], now: datetime) -> dict[str, Any]:
        """The parameters of _FENCED for the outcomes' runs, and the time they finished."""
        claims = [o.claim for o in outcomes]
        return {
            "ids": sorted(c.subtask_id for c in claims),
            "node": self.node_id,
            "runs": [(c.subtask_id, c.attempt) for c in claims],
            "finished": now,
        }

    def _update_runs(
        self,
        session: Session,
        statement: Update,
        outcomes: list[Outcome],
        now: datetime,
        live: dict[int, str] | None,
        statuses: Collection[str],
        **params: Any,
    ) -> list[int]:
        """Run `statement` on the outcomes' subtasks still ours and in one of `statuses`;
        returns their ids. `live`: the statuses read beforehand, where UPDATE has no RETURNING."""
        if live is not None:
            outcomes = [o for o in outcomes if live.get(o.claim.subtask_id) in statuses]
        if not outcomes:
            return []
        params.update(self._fenced(outcomes, now))
        if live is None:
            return list(session.scalars(_returning_ids(statement), params))
        session.execute(statement, params)
        return [o.claim.subtask_id for o in outcomes]

    def _claim(
        self, session: Session, limit: int, now: datetime, result: StepResult, locked: set[int]
    ) -> list[Any]:
        """Claim up to `limit` READY subtasks; returns their rows, by id. `locked`: tasks whose
        rows this transaction already locked."""
        rows = session.execute(_candidates(limit, self.skip_locked)).all()
        if not rows:
            return []
        task_ids = {row.task_id for row in rows}
        if self.skip_locked:
            # A claim changes its tasks' views, so it bumps their versions and locks their
            # rows: after the subtasks' rows, the reverse of every other writer's order, so it
            # must never wait. It leaves the tasks another transaction holds for a moment and
            # asks the pump to look again soon.
            # A chain's next subtask is of a task the step locked to finish its upstream.
            unlocked = sorted(task_ids - locked)
            held = set(session.scalars(_LOCK_UNLESS_HELD, {"ids": unlocked})) if unlocked else set()
            result.contended = len(held) != len(unlocked)
            task_ids = held | (task_ids & locked)
        ids = [row.id for row in rows if row.task_id in task_ids]
        if not ids:
            return []
        params = {"ids": ids, **self._claiming(now)}
        if self.returning:
            claimed = session.execute(_CLAIM_RETURNING, params).all()
        else:
            session.execute(_CLAIM, params)
            claimed = session.execute(_CLAIMED_BY_NODE, params).all()
        return sorted(claimed, key=lambda r: r.id)  # RETURNING promises no order

    def _claiming(self, now: datetime) -> dict[str, Any]:
        """The parameters of `_CLAIMING`: the run this node starts, leased from `now`."""
        return {
            "node": self.node_id,
            "address": self.address,
            "lease": now + self.lease,
            "started": now,
        }

    def _settle(
        self,
        session: Session,
        finished: set[int],
        claimed: set[int],
        now: datetime,
        result: StepResult,
    ) -> dict[int, Any]:
        """Settle the tasks whose runs ended and bump the versions of those whose subtasks were
        claimed (their views changed); returns the claimed tasks' contexts where the database
        has RETURNING (without, the claim read them).

        Each task row is written once: a task whose run ended and whose next subtask was
        claimed in the same step (a chain's) has its version bumped by settling, and its
        context returned by that UPDATE where the database has RETURNING.
        """
        contexts: dict[int, Any] = {}
        both = self.returning and not claimed.isdisjoint(finished)
        statuses = settle_tasks(
            session, finished, now, executor=self.address, contexts=contexts if both else None
        )
        settled = [task_id for task_id, status in statuses.items() if status != TaskStatus.RUNNING]
        result.ended = _task_ends(session, settled, now)
        bumped = sorted(claimed - finished)
        if self.returning:
            if bumped:
                contexts.update(session.execute(_BUMP_RETURNING, {"ids": bumped}).all())
            return contexts
        if bumped:
            session.execute(BUMP_VERSIONS, {"ids": bumped})
        return contexts

    def _claims(self, claimed: list[Any], contexts: dict[int, Any], result: StepResult) -> None:
        """The claimed rows as runs to start."""
        result.claims = [
            Claim(
                r.id,
                r.task_id,
                r.attempt,
                r.run_time,
                r.action,
                r.class_name,
                r.timeout,
                r.parallel_idx,
                contexts[r.task_id],
                r.name,
                r.series_id,
            )
            for r in claimed
        ]
        result.changed_tasks.update(c.task_id for c in result.claims)

    # --- the step on PostgreSQL, pipelined ------------------------------------------------

    def _pipelined_step(
        self,
        session: Session,
        outcomes: list[Outcome],
        logs: list[LogLine],
        claim_limit: int,
        check_cancels: bool,
    ) -> StepResult:
        """`step` on PostgreSQL: its work in the same order, sent in one pipeline
        (engine/pipeline.py) with the commit, waiting for the server once. The statements
        write what the generic step works out between them (log lines, which tasks to
        settle and bump, their statuses); a step whose runs changed their tasks' contexts (to
        be merged here) or rolled back (promotion decides by answers) waits once more."""
        result = StepResult()
        now = self.clock.now()
        pipeline = Pipeline(session.connection())
        successful = _executed_and_rolled_back(outcomes, None)
        merging = any(o.changes for o in outcomes)
        answers = _Answers()
        with pipeline.batch():
            if logs:
                pipeline.send_many(APPEND_LOG, _log_rows(logs))
            if outcomes:
                self._send_finish(pipeline, outcomes, now, successful[Action.EXECUTE], answers)
            if not (merging or successful[Action.ROLLBACK]):
                self._send_rest(pipeline, outcomes, claim_limit, check_cancels, now, answers)
        recorded = {i: status for status, sent in answers.finished for i in sent.scalars()}
        contexts = dict(answers.locked.all()) if answers.locked else {}
        dirty = _note_recorded(outcomes, recorded, contexts, result)
        if merging or successful[Action.ROLLBACK]:
            result.promoted += promote_neighbours(
                session, {Action.ROLLBACK: successful[Action.ROLLBACK]}
            )
            with pipeline.batch():
                if dirty:
                    pipeline.send_many(_SET_CONTEXT, dirty)
                self._send_rest(pipeline, outcomes, claim_limit, check_cancels, now, answers)
        result.promoted += answers.promoted.rowcount if answers.promoted else 0
        claimed = _claimed_rows(answers.claimed, result)
        self._claims(claimed, {r.task_id: r.context for r in claimed}, result)
        settled = answers.settled.all() if answers.settled else []
        result.ended = _ends((r for r in settled if r.status != TaskStatus.RUNNING), now)
        result.canceling = set(answers.canceling.scalars()) if answers.canceling else set()
        return result

    def _send_finish(
        self,
        pipeline: Pipeline,
        outcomes: list[Outcome],
        now: datetime,
        executed: list[int],
        answers: _Answers,
    ) -> None:
        """Lock the runs' tasks, record the runs with their state lines, promote what the
        executed ones unblocked."""
        task_ids = sorted({o.claim.task_id for o in outcomes})
        if any(o.changes for o in outcomes):
            answers.locked = pipeline.send(LOCK, {"ids": task_ids})
        else:
            pipeline.send(LOCK_ONLY, {"ids": task_ids})
        prefix = log_prefix()
        for status, group in _by_result(outcomes):
            params = {**self._fenced(group, now), "outcome": status, "prefix": prefix}
            answers.finished.append((status, pipeline.send(_FINISH_LOGGED, params)))
        # Then every run, as the runs recorded above are no longer LEASED: the cancelled ones,
        # and those an operator cancelled meanwhile (CANCELING), end FAILED and CANCEL.
        params = {**self._fenced(outcomes, now), "prefix": prefix}
        cancelled = pipeline.send(_FINISH_CANCELLED_LOGGED, params)
        answers.finished.append((SubtaskStatus.FAILED, cancelled))
        if executed:
            answers.promoted = pipeline.send(PROMOTE_EXECUTED, {"ids": sorted(executed)})

    def _send_rest(
        self,
        pipeline: Pipeline,
        outcomes: list[Outcome],
        limit: int,
        check_cancels: bool,
        now: datetime,
        answers: _Answers,
    ) -> None:
        """Claim up to `limit` READY subtasks, settle the tasks of the runs recorded, look for
        cancels, commit."""
        recorded = {"ids": sorted(o.claim.subtask_id for o in outcomes), "finished": now}
        if limit:
            params = {"limit": limit, "at": iso(now), **recorded, **self._claiming(now)}
            answers.claimed = pipeline.send(_CLAIM_ALL_AT_ONCE, params)
        if outcomes:
            params = {**recorded, "settler": self.address}
            answers.settled = pipeline.send(_SETTLE_RECORDED, params)
        if check_cancels:
            answers.canceling = pipeline.send(_CANCELING, {"node": self.node_id})
        pipeline.commit()

    def ready_count(self) -> int:
        """How many subtasks wait for a runner (READY), on every node."""
        with self.db.session() as session:
            return (
                session.scalar(
                    select(func.count()).select_from(Sub).where(Sub.status == SubtaskStatus.READY)
                )
                or 0
            )

    # --- leases -----------------------------------------------------------------------

    def heartbeat(self, running: Mapping[int, int]) -> set[int]:
        """Renew this node's leases and heartbeat; returns the running ids it no longer holds."""

        def work(session: Session) -> set[int]:
            now = self.clock.now()
            session.execute(
                update(Sub)
                .where(Sub.owner == self.node_id, Sub.status.in_(LEASED))
                .values(lease_until=now + self.lease)
            )
            held = {
                (r.id, r.attempt)
                for r in session.execute(
                    select(Sub.id, Sub.attempt).where(
                        Sub.owner == self.node_id, Sub.status.in_(LEASED)
                    )
                )
            }
            self._beat(session, now)
            return {sid for sid, attempt in running.items() if (sid, attempt) not in held}

        return self._transaction(work)

    def sweep(self, foreign_owners_are_dead: bool = False) -> set[int]:
        """Reclaim subtasks whose owner stopped renewing its lease; returns the changed tasks.

        A RUNNING one goes back to READY and runs again (runTime grows); a CANCELING one
        ends FAILED with operation CANCEL. With `foreign_owners_are_dead` (SQLite, where this
        node holds the file lock) every other owner is known dead and need not expire first.
        """

        def work(session: Session) -> list[int]:
            now = self.clock.now()
            lost = Sub.owner != self.node_id if foreign_owners_are_dead else Sub.lease_until < now
            expired = session.execute(
                select(Sub.id, Sub.task_id, Sub.attempt, Sub.status, Sub.owner, Sub.executor)
                .where(Sub.status.in_(LEASED), lost)
                .order_by(Sub.id)
                .limit(500)
            ).all()
            lock_tasks(session, (r.task_id for r in expired))
            reclaimed = [r.task_id for r in expired if self._reclaim(session, r, now)]
            settle_tasks(session, reclaimed, now)
            return reclaimed

        reclaimed = self._transaction(work)
        self.taken_over += len(reclaimed)
        return set(reclaimed)

    def _reclaim(self, session: Session, row: Any, now: datetime) -> bool:
        cancel = row.status == SubtaskStatus.CANCELING
        values: dict[str, Any] = (
            {"status": SubtaskStatus.FAILED, "operation": Operation.CANCEL, "finish_time": now}
            if cancel
            else {"status": SubtaskStatus.READY}
        )
        if not rows_updated(
            session,
            update(Sub)
            .where(
                Sub.id == row.id,
                Sub.attempt == row.attempt,
                Sub.status == row.status,
                Sub.owner == row.owner,
            )
            .values(owner=None, lease_until=None, **values),
        ):
            return False
        verdict = "cancelled" if cancel else "will run again"
        session.execute(
            insert(SubtaskLog).values(
                subtask_id=row.id,
                attempt=row.attempt,
                line=f"{log_prefix()} The executor {row.executor} stopped renewing its lease "
                f"on this subtask; the subtask {verdict}.",
            )
        )
        log.warning("reclaimed subtask %s from %s (%s)", row.id, row.owner, verdict)
        return True

    def release(self, claims: Collection[Claim]) -> set[int]:
        """Hand unfinished runs back (READY) when this node stops, so nobody waits on leases."""

        def work(session: Session) -> set[int]:
            lock_tasks(session, (c.task_id for c in claims))
            changed = set()
            for claim in claims:
                if rows_updated(
                    session,
                    update(Sub)
                    .where(
                        *self._fence(claim.subtask_id, claim.attempt),
                        Sub.status == SubtaskStatus.RUNNING,
                    )
                    .values(status=SubtaskStatus.READY, owner=None, lease_until=None),
                ):
                    changed.add(claim.task_id)
            touch_tasks(session, changed)
            return changed

        return self._transaction(work) if claims else set()

    # --- the node registry --------------------------------------------------------------

    def _beat(self, session: Session, now: datetime) -> None:
        if not rows_updated(
            session,
            update(EngineNode).where(EngineNode.node_id == self.node_id).values(heartbeat_time=now),
        ):
            session.add(
                EngineNode(
                    node_id=self.node_id,
                    address=self.address,
                    pid=os.getpid(),
                    start_time=now,
                    heartbeat_time=now,
                )
            )

    def register(self) -> None:
        self._transaction(lambda session: self._beat(session, self.clock.now()))

    def unregister(self) -> None:
        def work(session: Session) -> None:
            session.execute(delete(EngineNode).where(EngineNode.node_id == self.node_id))
            # Forget nodes silent for long: they died without unregistering.
            forgotten = self.clock.now() - 20 * self.lease
            session.execute(delete(EngineNode).where(EngineNode.heartbeat_time < forgotten))

        self._transaction(work)


def _by_result(outcomes: list[Outcome]) -> list[tuple[SubtaskStatus, list[Outcome]]]:
    """The runs not cancelled by the status their results give them, for `_FINISH`."""
    groups = []
    for status in (SubtaskStatus.SUCCESSFUL, SubtaskStatus.FAILED):
        succeeded = status == SubtaskStatus.SUCCESSFUL
        group = [o for o in outcomes if not o.cancelled and o.succeeded == succeeded]
        if group:
            groups.append((status, group))
    return groups


def _claimed_rows(sent: Sent | None, result: StepResult) -> list[Any]:
    """The rows `_CLAIM_ALL_AT_ONCE` claimed, by id; notes whether it left some (contended)."""
    if sent is None:
        return []
    rows = sent.all()
    result.contended = bool(rows[0].skipped)
    return sorted((r for r in rows if r.id is not None), key=lambda r: r.id)


def _log_rows(lines: list[LogLine]) -> list[dict[str, Any]]:
    return [{"subtask_id": x.subtask_id, "attempt": x.attempt, "line": x.line} for x in lines]


def _headers(claimed: Iterable[Any], now: datetime, logs: list[LogLine]) -> None:
    """Each claimed run's log header, written with the step's other lines (one INSERT)."""
    logs.extend(LogLine(r.id, r.attempt, run_header(r.operation, now)) for r in claimed)


def _note_recorded(
    outcomes: list[Outcome],
    recorded: Mapping[int, SubtaskStatus],
    contexts: dict[int, dict[str, Any]],
    result: StepResult,
) -> list[dict[str, Any]]:
    """Note which of the outcomes' runs the step recorded (the rest were fenced out) and
    their changed tasks; returns the merged contexts to write (`_SET_CONTEXT`), from
    `contexts` as locked, for the runs recorded SUCCESSFUL that changed theirs."""
    dirty: set[int] = set()
    for outcome in outcomes:
        claim = outcome.claim
        if claim.subtask_id not in recorded:
            result.fenced_out.append(outcome)
            continue
        result.changed_tasks.add(claim.task_id)
        if outcome.changes and recorded[claim.subtask_id] == SubtaskStatus.SUCCESSFUL:
            contexts[claim.task_id] = outcome.changes.apply_to(contexts[claim.task_id])
            dirty.add(claim.task_id)
    return [{"task": task_id, "merged": contexts[task_id]} for task_id in dirty]


def _state_lines(
    outcomes: list[Outcome], recorded: Mapping[int, SubtaskStatus], logs: list[LogLine]
) -> None:
    """The recorded runs' state lines, after their own."""
    prefix = log_prefix()
    for outcome in outcomes:
        claim = outcome.claim
        status = recorded.get(claim.subtask_id)
        if status is not None:
            line = f"{prefix} {_STATE_LINE[0]}{claim.subtask_id}{_STATE_LINE[1]}{status}"
            logs.append(LogLine(claim.subtask_id, claim.attempt, line))


def _executed_and_rolled_back(
    outcomes: list[Outcome], recorded: Mapping[int, SubtaskStatus] | None
) -> dict[Action, list[int]]:
    """The successful runs' subtasks by action, whose neighbours may be unblocked: those
    recorded SUCCESSFUL; with `recorded` None (not known yet), every run that succeeded (one
    fenced out is not SUCCESSFUL unless another node's run made it so, and then its neighbours
    may be promoted as well)."""
    finished: dict[Action, list[int]] = {Action.EXECUTE: [], Action.ROLLBACK: []}
    for outcome in outcomes:
        claim = outcome.claim
        if recorded is None:
            succeeded = outcome.succeeded and not outcome.cancelled
        else:
            succeeded = recorded.get(claim.subtask_id) == SubtaskStatus.SUCCESSFUL
        if succeeded:
            finished[Action(claim.action)].append(claim.subtask_id)
    return finished


def _task_ends(session: Session, task_ids: list[int], now: datetime) -> list[TaskEnd]:
    """What the tasks that just settled were, for the log and the metrics."""
    if not task_ids:
        return []
    return _ends(session.execute(_ENDED, {"ids": task_ids}), now)


def _ends(rows: Iterable[Any], now: datetime) -> list[TaskEnd]:
    return [TaskEnd(r.id, r.name, r.status, r.operation, _seconds(r.start_time, now)) for r in rows]


def _seconds(since: datetime | None, now: datetime) -> float:
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0
