"""Connecting to the metadb: SQLite (embedded default), PostgreSQL or a MySQL-compatible server."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from obfleet.store.outage import OutageLog


def normalize_url(url: str) -> str:
    """Pick the sync driver obfleet ships with when the URL names only the database kind."""
    parsed = make_url(url)
    driver = {
        "postgresql": "postgresql+psycopg",
        "mysql": "mysql+pymysql",
        "mariadb": "mysql+pymysql",
        "oceanbase": "mysql+pymysql",
    }.get(parsed.drivername)
    if driver:
        parsed = parsed.set(drivername=driver)
    if parsed.get_backend_name() == "mysql":
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed.render_as_string(hide_password=False)


# Connections kept open, and made beyond them at busy times (then closed once returned). SQLite
# too: with its default of 5, concurrent requests kept opening and closing connections, each
# opening the file and setting its pragmas anew. 20 kept: with 10, one replica serving 12 busy
# clients beside its engine went past 10 at every burst and PostgreSQL forked a backend for
# each connection made beyond them (over 100 a minute, bench/replicas.py). 30 in all, as
# before: three replicas stay within PostgreSQL's default max_connections (100).
POOL_SIZES = {"pool_size": 20, "max_overflow": 10}


class _WriteGate:
    """This process's SQLite writers take turns on a lock of their own before BEGIN IMMEDIATE.

    Left to SQLite, a writer that finds the file locked sleeps in its busy handler, in steps
    growing to 100 ms, however soon the lock is freed: with a few concurrent writers, half of
    them waited, p99 0.7 s (register-only creates, 8 clients). Here a waiter wakes as soon as
    the holder commits or rolls back; SQLite's busy timeout still covers other processes (the
    CLI). A writer that waits `WAIT_S` in vain goes on to SQLite's own waiting.
    """

    WAIT_S = 30.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holder: int | None = None  # id() of the DBAPI connection in its turn

    @property
    def held(self) -> bool:
        return self._lock.locked()

    def enter(self, conn: Any) -> None:
        if self._lock.acquire(timeout=self.WAIT_S):
            self._holder = id(_raw(conn))

    def leave(self, conn: Any) -> None:
        """End `conn`'s turn, if it has one (commit, rollback, return to the pool)."""
        if self._holder is not None and self._holder == id(_raw(conn)):
            self._holder = None
            self._lock.release()


def _raw(conn: Any) -> Any:
    """The DBAPI connection, whether given it or the pool's proxy around it."""
    return getattr(conn, "dbapi_connection", conn)


def _gate_writers(engine: Engine) -> _WriteGate:
    """Wrap the dialect's COMMIT and ROLLBACK (SQLAlchemy's events fire before them) and the
    pool's check-in and invalidation so that every end of a write transaction ends its turn."""
    gate = _WriteGate()
    dialect = engine.dialect
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(conn: Any) -> None:
        try:
            commit(conn)
        finally:
            gate.leave(conn)

    def do_rollback(conn: Any) -> None:
        try:
            rollback(conn)
        finally:
            gate.leave(conn)

    dialect.do_commit = do_commit  # type: ignore[method-assign,assignment]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign,assignment]
    for name in ("checkin", "invalidate", "close"):
        event.listen(engine, name, lambda dbapi_conn, *_: gate.leave(dbapi_conn))
    _GATES[engine] = gate
    return gate


_GATES: weakref.WeakKeyDictionary[Engine, _WriteGate] = weakref.WeakKeyDictionary()


def writer_turn_held(engine: Engine) -> bool:
    """Whether some write transaction of this SQLite engine holds its turn (for tests)."""
    gate = _GATES.get(engine)
    return gate is not None and gate.held


def _sqlite_engine(url: str) -> Engine:
    path = make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Private from the start (it holds password hashes and secrets): SQLite would create it
        # 0644 under the usual umask, and gives its -wal and -shm files the database's mode.
        Path(path).touch(mode=0o600, exist_ok=True)
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}, **POOL_SIZES
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself, so writers can take the lock up
        # front (BEGIN IMMEDIATE): a deferred read-then-write upgrade ignores busy_timeout.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        for pragma in (
            "journal_mode=WAL",
            "busy_timeout=30000",
            "synchronous=NORMAL",
            "foreign_keys=ON",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    gate = _gate_writers(engine)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Straight to the driver: SQLAlchemy's statement machinery (events, an execution
        # context, a result) cost more than the BEGIN itself, on every request.
        driver = conn.connection.driver_connection
        if not conn.get_execution_options().get("obfleet_write"):
            driver.execute("BEGIN DEFERRED")
            return
        gate.enter(conn.connection)
        try:
            driver.execute("BEGIN IMMEDIATE")
        except BaseException:
            gate.leave(conn.connection)
            raise

    return engine


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    options: dict[str, Any] = {"pool_pre_ping": True, **POOL_SIZES}
    if make_url(url).get_backend_name() == "mysql":
        # InnoDB's REPEATABLE READ takes gap locks that deadlock concurrent claims.
        options["isolation_level"] = "READ COMMITTED"
    return create_engine(url, **options)


class Database:
    """The metadb: one engine, and sessions that say up front whether they will write."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.outage = OutageLog(self.engine)
        event.listen(self.engine, "checkout", self.outage.on_checkout)
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(
            self.engine.execution_options(obfleet_write=True), expire_on_commit=False
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self, write: bool = False) -> Session:
        return (self._write if write else self._read)()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write session committed on success and rolled back on error."""
        with self.session(write=True) as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def writes(session: Session) -> bool:
    """Whether `session` is a write session (Database.session(write=True), transaction())."""
    return bool(session.get_bind().get_execution_options().get("obfleet_write"))


T = TypeVar("T")


class PerDatabase(Generic[T]):
    """One `T` per metadb (per Database object), made on first use and dropped with it: what a
    process keeps about one metadb (ids, versions, generations) means nothing for another."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._kept: weakref.WeakKeyDictionary[Database, T] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def __call__(self, db: Database) -> T:
        with self._lock:
            kept = self._kept.get(db)
            if kept is None:
                kept = self._kept[db] = self._make()
            return kept
