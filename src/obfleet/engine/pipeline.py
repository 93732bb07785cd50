"""Statements sent to PostgreSQL in one psycopg pipeline, for the engine's step.

Through a session, each statement is a round trip: psycopg sends it and waits for the
answer, and SQLAlchemy builds an execution context and a result around it. A step's
statements mostly do not depend on each other's answers (the server runs them in order, each
seeing the ones before), so they go out together and the step waits for PostgreSQL only where
Python needs an answer to go on: once for a chain's step, commit included, where it waited
about a dozen times.

The statements are SQLAlchemy's, compiled once per dialect; their parameters go through
their types' bind processors and their rows through the result processors, as a session's
would. A driver error is raised as SQLAlchemy's DBAPIError (and a lost connection
invalidated), as a session would, so the step's retry and the outage log read it the same.
Given up: SQLAlchemy's statement events fire before each statement (tests count them), but a
listener cannot rewrite it, and no other event fires; an error names the batch's last
statement, which is not always the one that failed (PostgreSQL's message says which).
"""

from __future__ import annotations

import functools
from collections import namedtuple
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple, cast

from sqlalchemy import ClauseElement, Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any]


class _Form(NamedTuple):
    """A statement's SQL for one length of each of its expanding (IN) parameters."""

    sql: str
    fixed: dict[str, Any]  # the statement's own values (its literals), processed
    given: list[tuple[str, Processor | None]]  # the parameters given by name
    # Each expanding parameter's rendered names, in order, with their processors.
    expanded: list[tuple[str, list[tuple[str, Processor | None]]]]


class Prepared:
    """A statement compiled for one dialect, with its types' processors."""

    def __init__(self, statement: ClauseElement, dialect: Dialect, keys: tuple[str, ...]) -> None:
        # The parameters' names, as a session compiles: an INSERT sets the columns they name.
        self.compiled = cast(SQLCompiler, statement.compile(dialect=dialect, column_keys=keys))
        binds = {name: bind for bind, name in self.compiled.bind_names.items()}
        self.processors: dict[str, Processor] = {}
        for name, bind in binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None and not bind.expanding:
                self.processors[name] = process
        self.names = set(binds)
        # The IN lists given at execution (a literal one, `status IN ('A', 'B')`, is fixed).
        self.expanding = [n for n, b in binds.items() if b.expanding and b.value is None]
        # Rendering the IN lists anew for every execution (as a session does) cost a fifth of
        # a step: the SQL and where each value goes are kept per length of the lists.
        self._forms: dict[tuple[int, ...], _Form] = {}
        columns = list(getattr(statement, "exported_columns", ()))
        self.row: Any = namedtuple("Row", [c.key for c in columns]) if columns else None
        self.results: list[Processor | None] = [
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
        ]

    def render(self, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The SQL for these parameters (expanding IN lists rendered) and their values."""
        shape = tuple(len(params[name]) for name in self.expanding)
        form = self._forms.get(shape)
        if form is None:
            form = self._forms[shape] = self._form(params)
        values = dict(form.fixed)
        for name, process in form.given:
            value = params[name]
            values[name] = value if process is None else process(value)
        for name, slots in form.expanded:
            items = params[name]
            if items and isinstance(items[0], tuple):  # a tuple IN: (a, b) IN ((1, 2), ...)
                items = [item for row in items for item in row]
            for (slot, process), value in zip(slots, items, strict=True):
                values[slot] = value if process is None else process(value)
        return form.sql, values

    def _form(self, params: dict[str, Any]) -> _Form:
        expanded = self.compiled.construct_expanded_state(params)
        expansion = {n: expanded.parameter_expansion[n] for n in self.expanding}
        slots = {slot for names in expansion.values() for slot in names}
        processors = {**self.processors, **expanded.processors}
        fixed = {
            name: processors[name](value) if name in processors else value
            for name, value in expanded.parameters.items()
            if name not in slots and name not in params
        }
        given = [n for n in params if n in self.names and n not in self.expanding]
        return _Form(
            expanded.statement,
            fixed,
            [(name, self.processors.get(name)) for name in given],
            [
                (name, [(slot, expanded.processors.get(slot)) for slot in names])
                for name, names in expansion.items()
            ],
        )

    def rows(self, fetched: Sequence[Sequence[Any]]) -> list[Any]:
        assert self.row is not None, "the statement returns no rows"
        processors = [(i, p) for i, p in enumerate(self.results) if p is not None]
        rows = []
        for fetched_row in fetched:
            values = list(fetched_row)
            for i, process in processors:
                values[i] = process(values[i])
            rows.append(self.row._make(values))
        return rows


@functools.cache
def prepared(statement: ClauseElement, dialect: Dialect, keys: tuple[str, ...]) -> Prepared:
    return Prepared(statement, dialect, keys)


class Sent:
    """A statement sent in a pipeline; its answer once the pipeline has synced."""

    def __init__(self, statement: Prepared, cursor: Any) -> None:
        self._statement = statement
        self._cursor = cursor

    def all(self) -> list[Any]:
        return self._statement.rows(self._cursor.fetchall())

    def scalars(self) -> list[Any]:
        return [row[0] for row in self._cursor.fetchall()]

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)


class Pipeline:
    """Statements sent on a session's connection without waiting for each answer."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._dialect = connection.dialect
        self._driver: Any = connection.connection.driver_connection
        self._last: tuple[str, Any] = ("", {})

    @contextmanager
    def batch(self) -> Iterator[Pipeline]:
        """Send what is run inside, and wait for all of it at the end."""
        with self._driver_errors(), self._driver.pipeline():
            yield self

    def send(self, statement: ClauseElement, params: dict[str, Any] | None = None) -> Sent:
        params = params or {}
        prepared_statement = prepared(statement, self._dialect, tuple(params))
        sql, values = prepared_statement.render(params)
        cursor = self._cursor(sql, values, False)
        cursor.execute(sql, values)
        return Sent(prepared_statement, cursor)

    def send_many(self, statement: ClauseElement, params: list[dict[str, Any]]) -> None:
        """`statement` once per parameter set (one SQL: no IN lists)."""
        prepared_statement = prepared(statement, self._dialect, tuple(params[0]))
        rendered = [prepared_statement.render(p) for p in params]
        sql = rendered[0][0]
        values = [v for _, v in rendered]
        self._cursor(sql, values, True).executemany(sql, values)

    def commit(self) -> None:
        """Commit with the batch, as its last statement: the batch's one wait covers it (the
        driver's commit waits once more), and the session's own commit finds nothing to do."""
        self._driver.cursor().execute("COMMIT")

    def _cursor(self, sql: str, values: Any, many: bool) -> Any:
        cursor = self._driver.cursor()
        self._last = (sql, values)
        # Listeners see the statement as with a session (the step's tests count them).
        self._connection.dispatch.before_cursor_execute(
            self._connection, cursor, sql, values, None, many
        )
        return cursor

    @contextmanager
    def _driver_errors(self) -> Iterator[None]:
        """The driver's errors as SQLAlchemy raises them; a lost connection invalidated."""
        dbapi = self._dialect.loaded_dbapi
        try:
            yield
        except dbapi.Error as error:
            lost = self._dialect.is_disconnect(error, self._driver, None)
            if lost:
                self._connection.invalidate(error)
            sql, values = self._last
            raise DBAPIError.instance(
                sql,
                values,
                error,
                dbapi.Error,
                connection_invalidated=lost,
                dialect=self._dialect,
            ) from error
