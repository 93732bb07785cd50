"""Generation counters: a one-row table whose value goes up, in the same transaction, whenever
a commit changes any of a set of watched tables.

A reader that keeps something computed from those tables (the config server's answers) reads
the counter, a single primary-key lookup, and reuses what it computed under the same value.
Since the counter lives in the metadb and is bumped by the very transaction that makes the
change, every replica sees a change as soon as it is committed, and never an answer older than
the counter it read, provided it reads the counter first and the data after it.

The bump is made by session events, so no writer has to remember it:
- every ORM insert, update (with a net change) and delete of a watched table's rows, including
  cascades and delete-orphans (mapper events, `propagate=True` on the declarative base);
- every INSERT / UPDATE / DELETE statement on a watched table run through `Session.execute`
  (`do_orm_execute`), as the config server's own upserts are, unless the database reports that
  it matched no row (an UPDATE or DELETE of nothing, which anyone may ask of the config server,
  must not empty every replica's cache); a statement whose row count the driver cannot vouch
  for (executemany on some drivers, RETURNING, a result without a cursor) always counts.
The change marks the session; `before_commit` of the outermost transaction flushes, then bumps
once, as the last statement of the transaction, so the counter row is locked only for the
commit itself and always after the rows of the change (no lock-order deadlock between writers).
Statements run on a bare `Connection` (bypassing the Session) are not seen: don't write watched
tables that way.

Each counter also counts the bumps this process has committed (`Counter.local`), so that a
reader may keep the value it read without asking the metadb again while the count stands, and
for a time of its own: the count moving says at once that this process changed something; what
other processes commit (other replicas, or other processes on a SQLite file) is seen when the
reader asks again after that time (obfleet.configserver.cache). A counter without a table
(`watch(None, ...)`) is that local count alone: the changes this process commits, for a reader
that asks the metadb again after them (and after a time of its own, for other processes'
changes).
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, CursorResult, Result, Table, event, select, update
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, object_session

from obfleet.store.base import Base


class LocalBumps:
    """How many bumps of a counter this process has committed (moved after each commit)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def committed(self) -> None:
        with self._lock:
            self.count += 1


@dataclass(frozen=True)
class Counter:
    table: Table | None  # columns `id` (primary key) and `value`; None: the local count only
    row_id: int
    watched: frozenset[str]  # table names
    local: LocalBumps = field(default_factory=LocalBumps, compare=False)

    @property
    def mark(self) -> str:
        name = self.table.name if self.table is not None else ",".join(sorted(self.watched))
        return f"obfleet.generation.{name}.{self.row_id}"

    @property
    def bumped(self) -> str:
        return f"{self.mark}.bumped"

    def read(self, reader: Session | Connection) -> int | None:
        """The current value; None when the row is missing (then nothing may be reused).
        A bare Connection is the cheapest way to ask."""
        if self.table is None:
            return None
        value = reader.scalar(select(self.table.c.value).where(self.table.c.id == self.row_id))
        return None if value is None else int(value)


def _dml_table(state: ORMExecuteState) -> str | None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return None
    table = getattr(state.statement, "table", None)
    return getattr(table, "name", None)


def _matched_nothing(state: ORMExecuteState, result: Result[Any]) -> bool:
    """Whether the database says the statement matched no row (never a guess: False when the
    driver's count is not to be trusted)."""
    if not isinstance(result, CursorResult) or result.returns_rows:
        return False  # with RETURNING, some drivers count the rows only as they are fetched
    sane = result.supports_sane_multi_rowcount() if state.is_executemany else True
    return sane and result.supports_sane_rowcount() and result.rowcount == 0


def watch(table: Table | None, watched: Collection[str], row_id: int = 1) -> Counter:
    """Bump `table`'s row `row_id` (when there is a table) in every transaction that changes a
    table in `watched`, and count those this process commits."""
    counter = Counter(table, row_id, frozenset(watched))

    def mark(session: Session | None) -> None:
        if session is not None:
            session.info[counter.mark] = True

    def on_row(_mapper: Any, _connection: Any, target: Any) -> None:
        if _mapper.local_table.name in counter.watched:
            mark(object_session(target))

    def on_update(_mapper: Any, _connection: Any, target: Any) -> None:
        session = object_session(target)
        if (
            _mapper.local_table.name in counter.watched
            and session is not None
            and session.is_modified(target, include_collections=False)
        ):
            mark(session)

    def on_execute(state: ORMExecuteState) -> Result[Any] | None:
        if _dml_table(state) not in counter.watched:
            return None
        # Run it here (the handlers after this one still run) to see its row count; the mark
        # comes after, so a statement that fails marks nothing.
        result = state.invoke_statement()
        if not _matched_nothing(state, result):
            mark(state.session)
        return result

    def before_commit(session: Session) -> None:
        if session.in_nested_transaction():
            return  # a savepoint: the mark waits for the real commit
        session.flush()
        if session.info.pop(counter.mark, False):
            if table is not None:
                session.execute(
                    update(table).where(table.c.id == row_id).values(value=table.c.value + 1)
                )
            session.info[counter.bumped] = True

    def after_commit(session: Session) -> None:
        if session.info.pop(counter.bumped, False):
            counter.local.committed()

    def forget(session: Session, transaction: SessionTransaction) -> None:
        # Only at the end of the outermost transaction: a savepoint rolled back must not drop
        # the mark of the changes made before it (its own changes then cost a spare bump).
        if transaction.parent is None:
            session.info.pop(counter.mark, None)
            session.info.pop(counter.bumped, None)

    event.listen(Base, "after_insert", on_row, propagate=True)
    event.listen(Base, "after_delete", on_row, propagate=True)
    event.listen(Base, "after_update", on_update, propagate=True)
    event.listen(Session, "do_orm_execute", on_execute)
    event.listen(Session, "before_commit", before_commit)
    event.listen(Session, "after_commit", after_commit)
    event.listen(Session, "after_transaction_end", forget)
    return counter
