"""Telling a metadb that cannot be reached, or has no space left, from a bug; and saying so once
per outage rather than once per request.

What counts is read off the driver's error, the same way for each database: a PostgreSQL error
with no SQLSTATE (the client never reached the server) or of class 08 / 57P0x (connection lost,
server shutting down); a MySQL client error 2003/2006/2013 (cannot connect, gone away, lost) or
the server's 1040/1053 (too many connections, shutting down).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

log = logging.getLogger("obfleet")

_PG_UNREACHABLE = ("08", "57P01", "57P02", "57P03")
_MYSQL_UNREACHABLE = {1040, 1053, 2003, 2006, 2013, 2055}
_PG_DISK_FULL = "53100"
_MYSQL_DISK_FULL = {1021, 1114}


def _driver_error(exc: BaseException) -> BaseException | None:
    return exc.orig if isinstance(exc, DBAPIError) else None


def _mysql_errno(error: BaseException) -> int | None:
    code = error.args[0] if error.args else None
    return code if isinstance(code, int) and type(error).__module__.startswith("pymysql") else None


def is_unreachable(exc: BaseException) -> bool:
    # A bug (a ProgrammingError, an IntegrityError) never counts, whatever its driver says.
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    error = _driver_error(exc)
    if error is None:
        return False
    if exc.connection_invalidated:
        return True
    if type(error).__module__.startswith("psycopg"):
        state = getattr(error, "sqlstate", None)
        return state is None or state.startswith(_PG_UNREACHABLE)
    return _mysql_errno(error) in _MYSQL_UNREACHABLE


def is_disk_full(exc: BaseException) -> bool:
    error = _driver_error(exc)
    if isinstance(error, sqlite3.Error):
        return getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    if error is None:
        return False
    return getattr(error, "sqlstate", None) == _PG_DISK_FULL or (
        _mysql_errno(error) in _MYSQL_DISK_FULL
    )


def first_line(exc: BaseException) -> str:
    error = _driver_error(exc) or exc
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def describe(url: URL) -> str:
    """The metadb as an operator names it (never its password)."""
    if url.get_backend_name() == "sqlite":
        return f"SQLite file {url.database}"
    return f"{url.get_backend_name()} at {url.host}:{url.port or 'default port'}/{url.database}"


class OutageLog:
    """Whether the metadb was last found unreachable; logs the change, once each way."""

    def __init__(self, engine: Engine) -> None:
        self.where = describe(engine.url)
        self._down = False
        self._lock = threading.Lock()

    def noted(self, exc: BaseException) -> bool:
        """True when `exc` says the metadb cannot be reached (logged for the first such error
        of an outage only)."""
        if not is_unreachable(exc):
            return False
        with self._lock:
            if not self._down:
                self._down = True
                log.error("metadb unreachable: %s: %s", self.where, first_line(exc))
        return True

    def on_checkout(self, *_args: Any) -> None:
        """A connection handed out (pinged first, `pool_pre_ping`): the metadb answers."""
        if not self._down:
            return
        with self._lock:
            if self._down:
                self._down = False
                log.warning("metadb reachable again: %s", self.where)
