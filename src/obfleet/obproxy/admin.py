"""The admin SQL client of a running OBProxy: `root@proxysys` on its SQL port.

This is how OBD, obshell and ob-operator talk to OBProxy, and how obfleet does: a login proves
the process is up and answering (the health check), `show proxyconfig` reads its configuration
and `alter proxyconfig set` changes it at run time (the proxyro password, runtime parameters).

PyMySQL is blocking, so every call runs in a worker thread; each opens its own short connection,
since OBProxy's admin sessions are cheap and nothing here needs a session's state. Values are
sent with PyMySQL's parameter escaping and this module never echoes a statement; but OBProxy's
own error text may quote the statement it refused, so a caller that sends a secret declares it
to its log's redactor first.
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
from dataclasses import dataclass, field

import pymysql

__all__ = ["PROXYSYS_USER", "AdminError", "ProxysysClient"]

PROXYSYS_USER = "root@proxysys"
_NAME = re.compile(r"[a-z][a-z0-9_]*")


class AdminError(RuntimeError):
    """OBProxy could not be reached, refused the login, or refused a statement."""


@dataclass(frozen=True)
class ProxysysClient:
    """root@proxysys of the OBProxy at ip:port."""

    ip: str
    port: int
    password: str = field(repr=False)
    timeout: float = 5.0

    @property
    def label(self) -> str:
        return f"{PROXYSYS_USER} at {self.ip}:{self.port}"

    async def ping(self) -> None:
        """Log in and out; raises AdminError when OBProxy does not accept the login."""
        await asyncio.to_thread(self.login)

    def login(self) -> None:
        """ping() on the calling thread, for a caller that brings its own worker threads (the
        health checker, so that its many slow logins never queue up behind the flows' calls)."""
        self._execute(None, ())

    async def show_proxyconfig(self, like: str | None = None) -> dict[str, str]:
        """`show proxyconfig [like pattern]` as {name: value}."""
        if like is None:
            rows = await asyncio.to_thread(self._execute, "show proxyconfig", ())
        else:
            rows = await asyncio.to_thread(self._execute, "show proxyconfig like %s", (like,))
        return {str(row[0]): "" if row[1] is None else str(row[1]) for row in rows}

    async def alter_proxyconfig(self, name: str, value: str) -> None:
        """`alter proxyconfig set name = 'value'`; OBProxy applies it at once and persists it."""
        if not _NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not an OBProxy parameter name")
        await asyncio.to_thread(self._execute, f"alter proxyconfig set {name} = %s", (value,))

    def _execute(self, sql: str | None, args: tuple[str, ...]) -> list[tuple[object, ...]]:
        try:
            connection = _Connection(
                host=self.ip,
                port=self.port,
                user=PROXYSYS_USER,
                password=self.password,
                connect_timeout=self.timeout,
                read_timeout=self.timeout,
                write_timeout=self.timeout,
            )
        except pymysql.MySQLError as exc:
            raise AdminError(f"{self.label}: cannot log in: {_reason(exc)}") from None
        try:
            if sql is None:
                return []
            with connection.cursor() as cursor:
                cursor.execute(sql, args or None)
                return list(cursor.fetchall())
        except pymysql.MySQLError as exc:
            raise AdminError(f"{self.label}: {_reason(exc)}") from None
        finally:
            connection.close()


@functools.cache
def preferred_tls() -> ssl.SSLContext:
    """The TLS context of PyMySQL's default "preferred" mode (TLS when OBProxy offers it,
    certificate not checked), made once for every login."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class _Connection(pymysql.connections.Connection):
    """PyMySQL's connection, with the preferred-mode TLS context shared: PyMySQL builds one per
    connection with ssl.create_default_context(), which loads the system's CA certificates
    (about 60 ms of CPU) only for a context that never checks a certificate, and obfleet logs
    in on every step and every health check of every OBProxy."""

    def _create_ssl_ctx(self, sslp: object) -> ssl.SSLContext:
        if sslp == {}:  # no TLS option given: the preferred mode
            return preferred_tls()
        context: ssl.SSLContext = super()._create_ssl_ctx(sslp)
        return context


def _reason(exc: pymysql.MySQLError) -> str:
    """MySQL's own (code, message): it names the user, never the password."""
    if len(exc.args) >= 2:
        return f"({exc.args[0]}) {exc.args[1]}"
    return str(exc) or type(exc).__name__
