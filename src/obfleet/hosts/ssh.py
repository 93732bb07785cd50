"""SSH to managed hosts, on asyncssh.

Why a wrapper and not asyncssh everywhere: every remote action in obfleet needs the same rules,
and getting any of them wrong once is a security or reliability bug:

* Host keys are pinned. With no pinned key the server's key is accepted and reported
  (`SshConnection.host_key`) so the caller can store it; from then on, and whenever a key is
  pinned, any other key is refused with `HostKeyChanged` *before* authenticating, so a password
  is never sent to an impostor.
* One connection per host (`SshPool`), reopened transparently when it dropped.
* Every command has a timeout, and a timeout or a cancelled task stops the remote command too
  (its whole process group), instead of leaving it running on the host.
* Uploads go to a temporary name, are checked with `sha256sum` on the host, and only then are
  renamed into place, so a half-written or corrupted file never appears under the real name.
* Everything is logged to a caller-provided function with registered secrets replaced by
  `***`; credentials are always registered.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import logging
import os
import posixpath
import re
import secrets
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Concatenate, ParamSpec, TypeVar

import asyncssh

from obfleet.hosts.shell import command, quote, safe_path

__all__ = [
    "CommandError",
    "CommandFailed",
    "CommandResult",
    "CommandTimeout",
    "HostKeyChanged",
    "LogFn",
    "Redactor",
    "SshAuthError",
    "SshConnectError",
    "SshConnection",
    "SshDisconnected",
    "SshError",
    "SshPool",
    "SshTarget",
    "TransferError",
    "connect",
    "fingerprint",
]

LogFn = Callable[[str], None]
T = TypeVar("T")
P = ParamSpec("P")

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_KEEPALIVE = 15.0
# Keepalives left unanswered before an open connection is declared lost: a connection that
# hears nothing for (KEEPALIVE_COUNT_MAX + 1) keepalive intervals is dropped.
KEEPALIVE_COUNT_MAX = 3
# AES-GCM ahead of asyncssh's first choice, chacha20-poly1305, which asyncssh runs with three
# cipher objects per packet: about three times the CPU per packet (a quarter of obfleet's Python
# time in a 16-host install went to it; bench/deploy.py). OpenSSH offers both by default; the
# rest of asyncssh's list follows, for servers without GCM.
ENCRYPTION_ALGS = "^aes128-gcm@openssh.com,aes256-gcm@openssh.com"
DEFAULT_TRANSFER_TIMEOUT = 300.0
LOG_TAIL = 2000  # characters of stdout/stderr kept in a log line
ERROR_TAIL = 500  # characters of stderr kept in an exception message
KILL_TIMEOUT = 5.0  # how long stopping a timed-out command may take
MAX_READ = 64 * 1024 * 1024
# An upload goes to `<file><TMP_MARK><random>` and is renamed once its checksum is verified.
TMP_MARK = ".obfleet-tmp-"
_PGID_MARK = b"obfleet-pgid:"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_logger = logging.getLogger(__name__)
# asyncssh logs every command it runs at INFO, unredacted, and obfleet's commands can carry
# password equivalents (OBProxy's obproxy_sys_password SHA1 on its start command line); this
# module logs what it runs itself, with its secrets redacted.
logging.getLogger("asyncssh").setLevel(logging.WARNING)


# --------------------------------------------------------------------------------------------
# values


@dataclass(frozen=True)
class SshTarget:
    """Where and how to log in. Secrets are left out of repr so they never reach a log."""

    address: str
    port: int = 22
    username: str = "root"
    password: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)  # OpenSSH or PEM text
    passphrase: str | None = field(default=None, repr=False)  # for an encrypted private_key
    host_key: str | None = None  # pinned OpenSSH public key ("ssh-ed25519 AAAA..."), or None

    def __post_init__(self) -> None:
        if not self.address:
            raise ValueError("SshTarget needs an address")
        if not 0 < self.port < 65536:
            raise ValueError(f"invalid SSH port {self.port}")
        if not self.username:
            raise ValueError("SshTarget needs a username")
        if not self.password and not self.private_key:
            raise ValueError("SshTarget needs a password or a private key")

    @property
    def label(self) -> str:
        """user@address:port, the name used in logs and errors."""
        address = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.username}@{address}:{self.port}"

    def secrets(self) -> list[str]:
        """Every credential in this target, for redaction."""
        return [s for s in (self.password, self.private_key, self.passphrase) if s]


@dataclass(frozen=True)
class CommandResult:
    exit_status: int  # negative signal number if the command was killed by a signal
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


# --------------------------------------------------------------------------------------------
# errors


class SshError(Exception):
    """Base of everything this module raises; `host` is the target's label."""

    def __init__(self, host: str, message: str) -> None:
        super().__init__(f"{host}: {message}")
        self.host = host


class SshConnectError(SshError):
    """No usable SSH connection: unreachable, refused, timed out, or dropped."""


class SshAuthError(SshConnectError):
    """The host refused the credentials (or the private key could not be read)."""


class SshDisconnected(SshConnectError):
    """The connection dropped while a command ran; the command may or may not have completed."""


class HostKeyChanged(SshConnectError):
    """The host offered a different key than the pinned one. Nothing was sent to it."""

    def __init__(self, host: str, expected_key: str, actual_key: str) -> None:
        self.expected_key = expected_key
        self.actual_key = actual_key
        self.expected_fingerprint = fingerprint(expected_key)
        self.actual_fingerprint = fingerprint(actual_key)
        super().__init__(
            host,
            f"host key changed: pinned {self.expected_fingerprint}, host offered "
            f"{self.actual_fingerprint}; refusing to connect, nothing was sent to the host. "
            "Compare the offered fingerprint with the host's own key (ssh-keygen -lf on the "
            "host): if the host was reinstalled, remove it from obfleet and add it again to pin "
            "the new key; if not, someone may be intercepting the connection",
        )


class CommandError(SshError):
    """A command did not complete successfully; `command` is the redacted command."""

    def __init__(self, host: str, message: str, command: str) -> None:
        super().__init__(host, message)
        self.command = command


class CommandFailed(CommandError):
    def __init__(self, host: str, command: str, result: CommandResult) -> None:
        self.result = result
        self.exit_status = result.exit_status
        self.stderr_tail = result.stderr[-ERROR_TAIL:].strip()
        super().__init__(
            host, f"command exited {result.exit_status}: {command}: {self.stderr_tail}", command
        )


class CommandTimeout(CommandError):
    def __init__(self, host: str, command: str, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(
            host, f"command timed out after {timeout:g}s and was stopped: {command}", command
        )


class TransferError(SshError):
    """A file could not be written or read, or its checksum did not match."""


# --------------------------------------------------------------------------------------------
# helpers


class Redactor:
    """Replaces every registered secret with `***`.

    The shell-quoted form of a secret is registered too, because that is how a secret passed
    through `command()` appears in a command line.
    """

    def __init__(self, secret_values: Iterable[str | None] = ()) -> None:
        self._secrets: set[str] = set()
        self.add(*secret_values)

    def add(self, *secret_values: str | None) -> None:
        for value in secret_values:
            if value:
                self._secrets.add(value)
                self._secrets.add(quote(value))

    def extended(self, secret_values: Iterable[str | None]) -> Redactor:
        """A copy with more secrets (for one call), leaving this one unchanged."""
        copy = Redactor()
        copy._secrets = set(self._secrets)
        copy.add(*secret_values)
        return copy

    def __call__(self, text: str) -> str:
        for value in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(value, "***")
        return text


def _import_key(public_key: str) -> asyncssh.SSHKey:
    try:
        return asyncssh.import_public_key(public_key.strip())
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise ValueError(f"not an OpenSSH public key: {exc}") from None


def _openssh(key: asyncssh.SSHKey) -> str:
    """'type base64' without comment: the form obfleet stores and compares."""
    return " ".join(key.export_public_key("openssh").decode().split()[:2])


def fingerprint(public_key: str) -> str:
    """SHA256 fingerprint of an OpenSSH public key, as `ssh-keygen -l` shows it."""
    return _import_key(public_key).get_fingerprint("sha256")


def _same_key(a: str, b: str) -> bool:
    return _openssh(_import_key(a)) == _openssh(_import_key(b))


def _tail(text: str, limit: int = LOG_TAIL) -> str:
    """The last `limit` characters, from a line's start when there is one: a line cut in the
    middle could show half of a `password=...` that the task log's masking no longer knows."""
    text = text.rstrip("\n")
    if len(text) <= limit:
        return text
    kept = text[-limit:]
    _, newline, whole_lines = kept.partition("\n")
    return "…" + (whole_lines if newline else kept)


def _sha256_file(path: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _with_env(cmd: str, env: Mapping[str, str] | None) -> str:
    """Prefix `export K=V` (values quoted); names are checked, since they cannot be quoted."""
    if not env:
        return cmd
    for name in env:
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"invalid environment variable name: {name!r}")
    assignments = " ".join(f"{name}={quote(value)}" for name, value in env.items())
    return f"export {assignments}; {cmd}"


def _wrap(cmd: str) -> str:
    """Run cmd under /bin/sh and first report the shell's pid on stderr.

    sshd makes the session's shell a process group leader, and `exec` keeps its pid, so that
    pid is the process group of everything the command starts (except what detaches on
    purpose with setsid). Knowing it lets a timeout kill the whole group even when the SSH
    server ignores signal requests.
    """
    script = f"echo {_PGID_MARK.decode()}$$ >&2; {cmd}"
    return f"exec /bin/sh -c {quote(script)}"


def _split_mark(first_line: bytes) -> tuple[int | None, bytes]:
    """(pgid, leftover stderr) from the first stderr line of a wrapped command."""
    if first_line.startswith(_PGID_MARK):
        digits = first_line[len(_PGID_MARK) :].strip()
        if digits.isdigit():
            return int(digits), b""
    return None, first_line


def _kill_group_script(pgid: int) -> str:
    """TERM the group, give it 2s, then KILL it. pgid is an int, safe to interpolate."""
    return (
        f"kill -TERM -- -{pgid} 2>/dev/null || kill -TERM {pgid} 2>/dev/null; i=0; "
        f"while kill -0 -- -{pgid} 2>/dev/null; do i=$((i+1)); "
        f"if [ $i -ge 20 ]; then kill -KILL -- -{pgid} 2>/dev/null; break; fi; sleep 0.1; done; "
        "true"
    )


class _HostKeyCheck(asyncssh.SSHClient):
    """Sees the key the server offers when it is not the pinned one.

    A key equal to the pinned key is accepted by asyncssh from its trusted list and never gets
    here; so this accepts only when nothing is pinned (first contact) and records the key
    either way, to report it or to name it in HostKeyChanged.
    """

    def __init__(self, pinned: bool) -> None:
        self.pinned = pinned
        self.offered: asyncssh.SSHKey | None = None
        self.lost: Exception | None = None  # why the connection closed, once it did

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.offered = key
        return not self.pinned

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc


@dataclass
class _Running:
    """What is known about a running remote command (filled in as it starts)."""

    conn: asyncssh.SSHClientConnection | None = None
    pgid: int | None = None


# --------------------------------------------------------------------------------------------
# the connection


def _in_use(
    operation: Callable[Concatenate[SshConnection, P], Awaitable[T]],
) -> Callable[Concatenate[SshConnection, P], Awaitable[T]]:
    """Count an operation that holds a channel, so a retired connection closes only once the
    operations under way on it have ended."""

    @functools.wraps(operation)
    async def counted(self: SshConnection, *args: P.args, **kwargs: P.kwargs) -> T:
        self._operations += 1
        try:
            return await operation(self, *args, **kwargs)
        finally:
            self._operations -= 1
            if self._retired and not self._operations:
                await self.close()

    return counted


class SshConnection:
    """One host's SSH connection, reopened on demand when it dropped.

    The first key seen is pinned for later reconnects even if the target pinned none, so a
    key change between two reconnects is refused too.
    """

    def __init__(
        self,
        target: SshTarget,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        keepalive_interval: float = DEFAULT_KEEPALIVE,
        log: LogFn | None = None,
        redact: Iterable[str] = (),
    ) -> None:
        self.target = target
        self.connect_timeout = connect_timeout
        self.keepalive_interval = keepalive_interval
        self._log = log
        self._redact = Redactor([*redact, *target.secrets()])
        self._pinned = _openssh(_import_key(target.host_key)) if target.host_key else None
        self._conn: asyncssh.SSHClientConnection | None = None
        # The client object of each open connection, which learns why it closed.
        self._clients: weakref.WeakKeyDictionary[asyncssh.SSHClientConnection, _HostKeyCheck]
        self._clients = weakref.WeakKeyDictionary()
        self._lock = asyncio.Lock()
        self.connect_count = 0  # how many times a TCP/SSH connection was opened
        self._operations = 0  # commands and transfers under way (_in_use)
        self._retired = False

    def __repr__(self) -> str:
        return f"<SshConnection {self.target.label} connected={self.connected}>"

    @property
    def label(self) -> str:
        return self.target.label

    @property
    def host_key(self) -> str | None:
        """The host's key ("type base64"): pinned, or as first seen; None before connecting."""
        return self._pinned

    @property
    def host_key_fingerprint(self) -> str | None:
        return fingerprint(self._pinned) if self._pinned else None

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    def add_secrets(self, *secret_values: str) -> None:
        """Register more strings to be redacted in everything this connection logs."""
        self._redact.add(*secret_values)

    # ---- logging ----------------------------------------------------------------------------

    def _emitter(self, log: LogFn | None, redact: Iterable[str]) -> LogFn:
        redactor = self._redact.extended(redact) if redact else self._redact
        sink = log or self._log

        def emit(message: str) -> None:
            text = redactor(message)
            if sink is None:
                _logger.debug("%s", text)
            else:
                sink(text)

        return emit

    # ---- connecting -------------------------------------------------------------------------

    async def connect(self) -> SshConnection:
        """Open the connection now (if not open), to learn early about keys and credentials."""
        await self._ensure()
        return self

    async def _ensure(self) -> asyncssh.SSHClientConnection:
        async with self._lock:
            if self._conn is not None and not self._conn.is_closed():
                return self._conn
            self._conn = None
            if self._retired:
                # Reconnecting would log in with what the operator has just replaced.
                raise SshDisconnected(
                    self.label, "the host's address, credentials or host key changed; retry"
                )
            self._conn = await self._dial()
            return self._conn

    def _client_keys(self) -> list[asyncssh.SSHKey] | None:
        if not self.target.private_key:
            return None
        try:
            return [asyncssh.import_private_key(self.target.private_key, self.target.passphrase)]
        except (asyncssh.KeyImportError, ValueError):
            # Never put the exception text in the message: it could quote the key.
            raise SshAuthError(self.label, "the private key cannot be read") from None

    async def _dial(self) -> asyncssh.SSHClientConnection:
        target = self.target
        pinned = _import_key(self._pinned) if self._pinned else None
        checker = _HostKeyCheck(pinned is not None)
        client_keys = self._client_keys()
        methods = (["publickey"] if client_keys else []) + (
            ["keyboard-interactive", "password"] if target.password else []
        )
        emit = self._emitter(None, ())
        try:
            async with asyncio.timeout(self.connect_timeout):
                conn, _ = await asyncssh.create_connection(
                    lambda: checker,
                    target.address,
                    target.port,
                    username=target.username,
                    password=target.password,
                    client_keys=client_keys,
                    passphrase=None,
                    preferred_auth=methods,
                    known_hosts=([pinned] if pinned else [], [], []),
                    config=None,
                    agent_path=None,
                    pkcs11_provider=None,
                    x509_trusted_certs=None,
                    gss_host=None,
                    connect_timeout=self.connect_timeout,
                    login_timeout=self.connect_timeout,
                    keepalive_interval=self.keepalive_interval,
                    keepalive_count_max=KEEPALIVE_COUNT_MAX,
                    encryption_algs=ENCRYPTION_ALGS,
                )
        except asyncssh.HostKeyNotVerifiable:
            if self._pinned and checker.offered is not None:
                raise HostKeyChanged(self.label, self._pinned, _openssh(checker.offered)) from None
            raise SshConnectError(self.label, "host key not accepted") from None
        except asyncssh.PermissionDenied:
            raise SshAuthError(
                self.label, f"authentication failed ({', '.join(methods)})"
            ) from None
        except TimeoutError:
            raise SshConnectError(
                self.label, f"no SSH connection within {self.connect_timeout:g}s"
            ) from None
        except (OSError, asyncssh.Error) as exc:
            raise SshConnectError(self.label, f"cannot connect: {_reason(exc)}") from None
        self._clients[conn] = checker
        server_key = conn.get_server_host_key()
        if self._pinned is None and server_key is not None:
            self._pinned = _openssh(server_key)
        self.connect_count += 1
        cipher = conn.get_extra_info("send_cipher")
        emit(f"{self.label} connected (host key {self.host_key_fingerprint}, cipher {cipher})")
        return conn

    def _drop(self, conn: asyncssh.SSHClientConnection | None) -> None:
        """Abort conn and forget it if it is still the current one, so the next operation
        reconnects. Never touches a newer connection another task opened meanwhile."""
        if conn is None:
            return
        conn.abort()
        if conn is self._conn:
            self._conn = None

    async def retire(self) -> None:
        """Close once the operations under way end, and never reconnect: what this
        connection logs in with was replaced (SshPool.get)."""
        self._retired = True
        if not self._operations:
            await self.close()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), 5)

    async def __aenter__(self) -> SshConnection:
        return await self.connect()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _open(self, opener: Callable[[asyncssh.SSHClientConnection], Awaitable[T]]) -> T:
        """Open a channel; if the cached connection turns out to be dead, reconnect once.

        Retrying is safe only here, before anything ran on the host.
        """
        conn = await self._ensure()
        try:
            return await opener(conn)
        except (asyncssh.Error, OSError) as exc:
            dropped = conn.is_closed() or isinstance(exc, asyncssh.ConnectionLost | ConnectionError)
            if not dropped:
                raise SshConnectError(
                    self.label, f"cannot open a channel: {_reason(exc)}"
                ) from None
            self._drop(conn)
        conn = await self._ensure()
        try:
            return await opener(conn)
        except (asyncssh.Error, OSError) as exc:
            self._drop(conn)
            raise SshConnectError(self.label, f"cannot open a channel: {_reason(exc)}") from None

    # ---- commands ---------------------------------------------------------------------------

    @_in_use
    async def run(
        self,
        cmd: str,
        *,
        timeout: float,
        check: bool = True,
        input: str | bytes | None = None,
        env: Mapping[str, str] | None = None,
        log: LogFn | None = None,
        redact: Iterable[str] = (),
    ) -> CommandResult:
        """Run a shell command on the host and wait for it, at most `timeout` seconds.

        On timeout or cancellation the remote command's process group is stopped (TERM, then
        KILL) before CommandTimeout / CancelledError propagates. With check=True a non-zero
        exit raises CommandFailed. `redact` adds secrets for this call's logging and errors.
        Build `cmd` with `shell.command()` when it contains any outside value.
        """
        emit = self._emitter(log, redact)
        redactor = self._redact.extended(redact)
        full = _with_env(cmd, env)
        shown = redactor(full)
        emit(f"{self.label} $ {full}")
        await self._ensure()
        started = time.monotonic()
        running = _Running()
        process: asyncssh.SSHClientProcess[bytes] | None = None

        async def start(conn: asyncssh.SSHClientConnection) -> asyncssh.SSHClientProcess[bytes]:
            running.conn = conn
            return await conn.create_process(_wrap(full), encoding=None)

        try:
            async with asyncio.timeout(timeout):
                started_process = await self._open(start)
                process = started_process
                result = await self._collect(started_process, input, running)
        except TimeoutError:
            await self._stop(process, running, emit)
            emit(f"{self.label} timed out after {timeout:g}s; remote command stopped")
            raise CommandTimeout(self.label, shown, timeout) from None
        except asyncio.CancelledError:
            await self._stop(process, running, emit)
            emit(f"{self.label} cancelled; remote command stopped")
            raise
        except (asyncssh.Error, OSError) as exc:
            self._drop(running.conn)
            raise SshDisconnected(
                self.label, f"connection lost during: {shown}: {_reason(exc)}"
            ) from None
        finally:
            if process is not None:
                process.close()
        self._log_result(emit, redactor, result, time.monotonic() - started)
        if check and result.exit_status != 0:
            shown_result = dataclasses.replace(
                result, stderr=redactor(result.stderr), stdout=redactor(result.stdout)
            )
            raise CommandFailed(self.label, shown, shown_result)
        return result

    async def _collect(
        self,
        process: asyncssh.SSHClientProcess[bytes],
        input: str | bytes | None,
        running: _Running,
    ) -> CommandResult:
        running.pgid, head = _split_mark(await process.stderr.readline())
        if input is not None:
            process.stdin.write(input.encode() if isinstance(input, str) else input)
        process.stdin.write_eof()
        stdout, stderr = await process.communicate()
        if process.exit_status is None and process.exit_signal is None:
            client = self._clients.get(running.conn) if running.conn is not None else None
            why = _reason(client.lost) if client is not None and client.lost else "closed"
            self._drop(running.conn)
            raise SshDisconnected(self.label, f"connection lost before the command finished: {why}")
        status = process.returncode
        return CommandResult(
            exit_status=-1 if status is None else status,
            stdout=stdout.decode(errors="replace"),
            stderr=(head + stderr).decode(errors="replace"),
        )

    def _log_result(
        self, emit: LogFn, redactor: Redactor, result: CommandResult, elapsed: float
    ) -> None:
        # Redacted whole, then cut: a secret the cut would split is no longer whole to match.
        emit(f"{self.label} exit {result.exit_status} after {elapsed:.2f}s")
        if result.stdout.strip():
            emit(f"{self.label} stdout: {_tail(redactor(result.stdout))}")
        if result.stderr.strip():
            emit(f"{self.label} stderr: {_tail(redactor(result.stderr))}")

    async def _stop(
        self, process: asyncssh.SSHClientProcess[bytes] | None, running: _Running, emit: LogFn
    ) -> None:
        """Stop a timed-out or cancelled command and everything in its process group.

        The SSH signal request reaches the group on OpenSSH >= 7.9; killing the group over a
        second channel covers servers that ignore it. If that second channel does not work
        within KILL_TIMEOUT (e.g. the link is dead, or the channel never opened) the
        connection is dropped so the next command reconnects; a merely slow command on a
        healthy connection does not disturb other commands sharing it.
        """
        if process is not None:
            with contextlib.suppress(Exception):
                process.send_signal("TERM")
        conn = running.conn
        if conn is None or conn.is_closed():
            return
        pgid = running.pgid if process is not None else None
        script = _kill_group_script(pgid) if pgid is not None else "true"
        try:
            async with asyncio.timeout(KILL_TIMEOUT):
                await conn.run(script, check=False)
        except (TimeoutError, asyncssh.Error, OSError) as exc:
            emit(f"{self.label} unresponsive after timeout ({_reason(exc)}); dropping connection")
            self._drop(conn)

    # ---- files ------------------------------------------------------------------------------

    async def sha256(
        self, remote_path: str, *, timeout: float = 120.0, log: LogFn | None = None
    ) -> str:
        """sha256 of a remote file, computed on the host (needs coreutils' sha256sum)."""
        digests = await self.sha256_many([remote_path], timeout=timeout, log=log)
        return digests[safe_path(remote_path)]

    async def sha256_many(
        self,
        remote_paths: Sequence[str],
        *,
        missing_ok: bool = False,
        timeout: float = 120.0,
        log: LogFn | None = None,
    ) -> dict[str, str]:
        """sha256 of remote files by path, in one command; with `missing_ok`, files that do not
        exist (or cannot be read) are left out instead of failing the command."""
        paths = [safe_path(p) for p in remote_paths]
        script = command("sha256sum", "--", *paths)
        if missing_ok:
            script += " 2>/dev/null; true"
        result = await self.run(script, timeout=timeout, log=log)
        digests = {}
        for line in result.stdout.splitlines():
            digest, _, path = line.partition("  ")
            digests[path] = digest
        return digests

    async def put_file(
        self,
        local_path: str | os.PathLike[str],
        remote_path: str,
        mode: int = 0o644,
        *,
        timeout: float = DEFAULT_TRANSFER_TIMEOUT,
        parents: bool = True,
        log: LogFn | None = None,
    ) -> str:
        """Upload a local file over SFTP; return its sha256.

        Written to a temporary name beside the target, chmod'ed, checked with `sha256sum` on
        the host, then renamed over the target, so the target is either the old file or the
        complete new one. `parents` creates missing directories.
        """
        (digest,) = await self.put_files(
            [(local_path, remote_path, mode)], timeout=timeout, parents=parents, log=log
        )
        return digest

    async def put_files(
        self,
        files: Sequence[tuple[str | os.PathLike[str], str, int]],
        *,
        timeout: float = DEFAULT_TRANSFER_TIMEOUT,
        parents: bool = True,
        log: LogFn | None = None,
    ) -> list[str]:
        """Upload (local path, remote path, mode) files like put_file, over one SFTP session
        and with one `sha256sum` for them all; return their sha256s. Each target is renamed
        into place once every file arrived intact; none is when one did not."""
        uploads = []
        for local_path, remote_path, mode in files:
            local = os.fspath(local_path)
            digest, size = await asyncio.to_thread(_sha256_file, local)
            remote = safe_path(remote_path)
            uploads.append(_Upload(remote, mode, _put_local(local), digest, size, local))
        if uploads:
            await self._upload(uploads, timeout, parents, log)
        return [u.digest for u in uploads]

    async def put_bytes(
        self,
        data: bytes,
        remote_path: str,
        mode: int = 0o644,
        *,
        timeout: float = DEFAULT_TRANSFER_TIMEOUT,
        parents: bool = True,
        log: LogFn | None = None,
    ) -> str:
        """Like put_file, from memory (config files, scripts)."""
        digest = hashlib.sha256(data).hexdigest()

        async def write(sftp: asyncssh.SFTPClient, tmp: str) -> None:
            async with sftp.open(tmp, "wb") as f:
                await f.write(data)

        upload = _Upload(safe_path(remote_path), mode, write, digest, len(data), "<data>")
        await self._upload([upload], timeout, parents, log)
        return digest

    @_in_use
    async def _upload(
        self, uploads: Sequence[_Upload], timeout: float, parents: bool, log: LogFn | None
    ) -> None:
        emit = self._emitter(log, ())
        token = secrets.token_hex(6)
        tmps = [f"{u.remote}{TMP_MARK}{token}" for u in uploads]
        for u in uploads:
            emit(f"{self.label} put {u.source} -> {u.remote} ({u.size} bytes, mode {u.mode:04o})")
        remote = uploads[0].remote if len(uploads) == 1 else f"{len(uploads)} files"
        try:
            async with asyncio.timeout(timeout):
                sftp = await self._open(lambda conn: conn.start_sftp_client())
                async with sftp:
                    try:
                        if parents:
                            for directory in {posixpath.dirname(u.remote) for u in uploads}:
                                await sftp.makedirs(directory, exist_ok=True)
                        await _remove_stale_temps(sftp, [u.remote for u in uploads], emit)
                        for u, tmp in zip(uploads, tmps, strict=True):
                            await u.write(sftp, tmp)
                            await sftp.chmod(tmp, u.mode)
                        actual = await self.sha256_many(tmps, timeout=timeout, log=log)
                        for u, tmp in zip(uploads, tmps, strict=True):
                            if actual.get(tmp) != u.digest:
                                raise TransferError(
                                    self.label,
                                    f"{u.remote}: checksum mismatch after upload "
                                    f"(sent {u.digest}, host has {actual.get(tmp)})",
                                )
                        for u, tmp in zip(uploads, tmps, strict=True):
                            await _replace(sftp, tmp, u.remote)
                    except BaseException:
                        with contextlib.suppress(Exception):
                            await asyncio.wait_for(_remove_all(sftp, tmps), 5)
                        raise
        except TimeoutError:
            raise TransferError(
                self.label, f"{remote}: upload timed out after {timeout:g}s"
            ) from None
        except (asyncssh.SFTPError, OSError) as exc:
            raise TransferError(self.label, f"{remote}: upload failed: {_reason(exc)}") from None
        except CommandError as exc:
            raise TransferError(self.label, f"{remote}: checksum not computed: {exc}") from None
        for u in uploads:
            emit(f"{self.label} put {u.remote} ok, sha256 {u.digest}")

    @_in_use
    async def read_bytes(
        self, remote_path: str, *, max_bytes: int = MAX_READ, timeout: float = 60.0
    ) -> bytes:
        """Read a remote file over SFTP (refuses files larger than max_bytes)."""
        path = safe_path(remote_path)
        try:
            async with asyncio.timeout(timeout):
                sftp = await self._open(lambda conn: conn.start_sftp_client())
                async with sftp, sftp.open(path, "rb") as f:
                    data: bytes = await f.read(max_bytes + 1)
        except TimeoutError:
            raise TransferError(self.label, f"{path}: read timed out after {timeout:g}s") from None
        except asyncssh.SFTPNoSuchFile:
            raise FileNotFoundError(f"{self.label}:{path}") from None
        except (asyncssh.SFTPError, OSError) as exc:
            raise TransferError(self.label, f"{path}: read failed: {_reason(exc)}") from None
        if len(data) > max_bytes:
            raise TransferError(self.label, f"{path}: larger than {max_bytes} bytes")
        return data

    async def read_text(
        self, remote_path: str, *, max_bytes: int = MAX_READ, timeout: float = 60.0
    ) -> str:
        """Read a remote text file (UTF-8; undecodable bytes become U+FFFD)."""
        data = await self.read_bytes(remote_path, max_bytes=max_bytes, timeout=timeout)
        return data.decode(errors="replace")

    @_in_use
    async def exists(self, remote_path: str, *, timeout: float = 30.0) -> bool:
        """Whether a remote path exists (following symlinks)."""
        path = safe_path(remote_path)
        try:
            async with asyncio.timeout(timeout):
                sftp = await self._open(lambda conn: conn.start_sftp_client())
                async with sftp:
                    found = await sftp.exists(path)
        except TimeoutError:
            raise TransferError(self.label, f"{path}: check timed out after {timeout:g}s") from None
        except (asyncssh.SFTPError, OSError) as exc:
            raise TransferError(self.label, f"{path}: check failed: {_reason(exc)}") from None
        return found


async def _replace(sftp: asyncssh.SFTPClient, tmp: str, remote: str) -> None:
    """Atomically rename tmp over remote (POSIX rename), falling back to remove + rename."""
    try:
        await sftp.posix_rename(tmp, remote)
    except asyncssh.SFTPOpUnsupported:
        with contextlib.suppress(asyncssh.SFTPNoSuchFile):
            await sftp.remove(remote)
        await sftp.rename(tmp, remote)


def _reason(exc: BaseException) -> str:
    """A short, credential-free description of a library or OS error."""
    if isinstance(exc, asyncssh.Error):
        if "not responding to keepalive" in exc.reason:
            return "the host stopped answering (no reply to SSH keepalives): down or unreachable"
        return exc.reason or type(exc).__name__
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)  # asyncio's own text names only the address
    return str(exc) or type(exc).__name__


async def connect(
    target: SshTarget,
    *,
    timeout: float = DEFAULT_CONNECT_TIMEOUT,
    keepalive_interval: float = DEFAULT_KEEPALIVE,
    log: LogFn | None = None,
    redact: Iterable[str] = (),
) -> SshConnection:
    """Connect to one host now; raises SshConnectError / SshAuthError / HostKeyChanged."""
    conn = SshConnection(
        target,
        connect_timeout=timeout,
        keepalive_interval=keepalive_interval,
        log=log,
        redact=redact,
    )
    return await conn.connect()


# --------------------------------------------------------------------------------------------
# the pool


class SshPool:
    """One SshConnection per key (e.g. host id), shared by everything talking to that host.

    `get()` returns the same connection while the target is unchanged and reconnects it when
    it dropped; a changed target (address, credentials, or a pinned key different from the one
    seen) replaces the connection: the old one closes once the operations under way on it end,
    and refuses to reconnect.
    """

    def __init__(
        self,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        keepalive_interval: float = DEFAULT_KEEPALIVE,
        log: LogFn | None = None,
        redact: Iterable[str] = (),
    ) -> None:
        self.connect_timeout = connect_timeout
        self.keepalive_interval = keepalive_interval
        self._log = log
        self._redact = list(redact)
        self._conns: dict[str, SshConnection] = {}
        self._lock = asyncio.Lock()

    @classmethod
    def with_timeout(
        cls, timeout: float, *, log: LogFn | None = None, redact: Iterable[str] = ()
    ) -> SshPool:
        """A pool that gives a silent host `timeout` seconds, both to open a connection and,
        on an open one, to answer its keepalives before the connection is declared lost (so a
        command on a host whose link died fails in about `timeout`, not at its own timeout)."""
        if timeout <= 0:
            raise ValueError(f"the SSH timeout must be positive, not {timeout}")
        return cls(
            connect_timeout=timeout,
            keepalive_interval=timeout / (KEEPALIVE_COUNT_MAX + 1),
            log=log,
            redact=redact,
        )

    def __len__(self) -> int:
        return len(self._conns)

    def __contains__(self, key: object) -> bool:
        return key in self._conns

    async def get(self, key: str, target: SshTarget) -> SshConnection:
        """The connection for key, connected. Raises like `connect()`."""
        async with self._lock:
            conn = self._conns.get(key)
            if conn is not None and not _compatible(conn, target):
                # Commands under way (another task's, on the same host) finish on it.
                del self._conns[key]
                await conn.retire()
                conn = None
            if conn is None:
                conn = SshConnection(
                    target,
                    connect_timeout=self.connect_timeout,
                    log=self._log,
                    keepalive_interval=self.keepalive_interval,
                    redact=self._redact,
                )
                self._conns[key] = conn
        return await conn.connect()

    async def discard(self, key: str) -> None:
        """Close and forget one host's connection (e.g. when the host is deleted)."""
        async with self._lock:
            conn = self._conns.pop(key, None)
        if conn is not None:
            await conn.close()

    async def close_all(self) -> None:
        async with self._lock:
            conns, self._conns = list(self._conns.values()), {}
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)


@dataclass(frozen=True)
class _Upload:
    """One file of an upload: where it goes, and how its bytes are written to a path."""

    remote: str
    mode: int
    write: Callable[[asyncssh.SFTPClient, str], Awaitable[None]]
    digest: str
    size: int
    source: str  # for the log: the local path, or "<data>"


def _put_local(local: str) -> Callable[[asyncssh.SFTPClient, str], Awaitable[None]]:
    async def write(sftp: asyncssh.SFTPClient, tmp: str) -> None:
        await sftp.put(local, tmp)

    return write


async def _remove_all(sftp: asyncssh.SFTPClient, paths: Sequence[str]) -> None:
    """Remove what exists of `paths` (the temporaries of an upload that failed)."""
    await asyncio.gather(*(sftp.remove(p) for p in paths), return_exceptions=True)


async def _remove_stale_temps(
    sftp: asyncssh.SFTPClient, remotes: Sequence[str], emit: LogFn
) -> None:
    """Temporary files that interrupted uploads of `remotes` left behind (a link that died
    before they could be removed): the next upload of the same files removes them."""
    by_directory: dict[str, set[str]] = {}
    for remote in remotes:
        directory, name = posixpath.split(remote)
        by_directory.setdefault(directory or "/", set()).add(name + TMP_MARK)
    for directory, prefixes in by_directory.items():
        try:
            entries = await sftp.listdir(directory)
        except asyncssh.SFTPNoSuchFile:
            continue
        for entry in entries:
            if entry.startswith(tuple(prefixes)):
                stale = posixpath.join(directory, entry)
                emit(f"removing {stale}, left by an interrupted upload")
                await sftp.remove(stale)


def _compatible(conn: SshConnection, target: SshTarget) -> bool:
    """Can conn serve target? Same login data, and no conflicting pinned key."""
    if dataclasses.replace(conn.target, host_key=None) != dataclasses.replace(
        target, host_key=None
    ):
        return False
    if target.host_key is None:
        return True
    return conn.host_key is not None and _same_key(target.host_key, conn.host_key)
