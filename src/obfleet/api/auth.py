"""Who is calling: HTTP Basic (OCP 3.x) or the AK/SK signature (OCP 4.2), and role checks.

Every route declares its rule with `require(resource, write)` or `public`; a test walks the
route list so that a route without a rule cannot be added.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass

from anyio import CapacityLimiter, to_thread
from fastapi import Request
from starlette.concurrency import run_in_threadpool

from obfleet.api.deps import app_context
from obfleet.api.sessions import COOKIE, CSRF_HEADER, ConsoleSession, open_session
from obfleet.config import Settings
from obfleet.errors import ApiError, ErrorCode
from obfleet.logs import annotate
from obfleet.security import aksk
from obfleet.security.first_password import forget
from obfleet.security.roles import READ, WRITE, Resource
from obfleet.security.throttle import LoginLocked, LoginThrottle, Pair
from obfleet.services.users import (
    ADMIN,
    Login,
    Principal,
    RecentLogins,
    access_key_owner,
    cached_login,
    check_login,
    find_login,
)
from obfleet.timefmt import utcnow

# Password checks (argon2: tens of ms of CPU and memory each, by design) running at once. Kept
# below the threads Starlette runs blocking work on (40), so a flood of guesses waits here
# while every other request, and every login whose password was checked recently, goes on.
PASSWORD_CHECKS = 2
# A locked pair's refusal is answered this late: a client flooding it then gets one answer a
# second per connection, each costing a sleeping coroutine, instead of as many as the server
# can answer, which would slow everyone else's requests.
LOCKED_ANSWER_DELAY_S = 1.0


def _basic(header: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(header.partition(" ")[2].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ApiError(ErrorCode.NOT_LOGGED_IN, "The Basic credentials are malformed.") from exc
    username, sep, password = decoded.partition(":")
    if not sep:
        raise ApiError(ErrorCode.NOT_LOGGED_IN, "The Basic credentials are malformed.")
    return username, password


class Logins:
    """What one app's Basic logins share: the failure counts and the password-check pool.
    Made in the app's lifespan, inside its event loop, which the limiter belongs to."""

    def __init__(self, settings: Settings) -> None:
        self.throttle = LoginThrottle(settings.login_max_failures, settings.login_lock_seconds)
        self.checks = CapacityLimiter(PASSWORD_CHECKS)
        # Whether admin has logged in through this process: its generated first password,
        # kept in the data dir until then, is removed at the first such login.
        self.admin_seen = False
        self.recent = RecentLogins()


class LoginLockedError(ApiError):
    """429 with Retry-After: this user from this address failed too often."""

    def __init__(self, pair: Pair, retry_after: int) -> None:
        super().__init__(ErrorCode.LOGIN_LOCKED, pair[1], pair[0], retry_after)
        self.retry_after = retry_after

    @property
    def headers(self) -> Mapping[str, str]:
        return {"Retry-After": str(self.retry_after)}


async def _login(request: Request, logins: Logins, pair: Pair, password: str) -> Principal | None:
    """The principal when the password is right, else None; LoginLocked while the pair is.
    A user's requests in a row reuse the login read for the first (`logins.recent`): no
    metadb read, no thread-pool hop."""
    logins.throttle.check(pair)
    username = pair[0]
    recent = cached_login(logins.recent.get(username), username, password)
    if recent is not None:
        return recent

    def check(login: Login | None) -> Principal | None:
        logins.throttle.check(pair)  # again: the pair may have been locked while this queued
        return check_login(login, username, password)

    login = await _read_login(request, logins, username)
    return cached_login(login, username, password) or await to_thread.run_sync(
        check, login, limiter=logins.checks
    )


async def _read_login(request: Request, logins: Logins, username: str) -> Login | None:
    """The user's Login from the metadb (in a worker thread), kept in `logins.recent`."""
    db = app_context(request).db

    def lookup() -> Login | None:
        before = logins.recent.before_read()
        with db.session() as session:
            login = find_login(session, username)
        logins.recent.put(username, login, before)
        return login

    return await run_in_threadpool(lookup)


async def _by_basic(request: Request, header: str) -> Principal:
    return await password_login(request, *_basic(header))


async def password_login(request: Request, username: str, password: str) -> Principal:
    """The principal for a username and password (HTTP Basic, the console's login form),
    throttled per user and client address; else the API's refusal."""
    pair = (username, request.client.host if request.client else "")
    logins: Logins = request.app.state.logins
    try:
        principal = await _login(request, logins, pair, password)
    except LoginLocked as exc:
        await asyncio.sleep(LOCKED_ANSWER_DELAY_S)
        raise LoginLockedError(pair, exc.retry_after) from None
    if principal is None:
        raise ApiError(ErrorCode.BAD_CREDENTIALS, logins.throttle.failed(pair))
    logins.throttle.succeeded(pair)
    if principal.username == ADMIN and not logins.admin_seen:
        logins.admin_seen = True
        forget(app_context(request).settings.data_dir)
    return principal


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Where SignedBodyMiddleware leaves, in the request's state, what the AK/SK signature showed:
# the Principal, or the ApiError to refuse the request with.
SIGNED = "obfleet_aksk"


@dataclass(frozen=True)
class SignedHeaders:
    """An AK/SK request whose headers passed: the key's owner and secret, and the signature
    still to be checked against the body."""

    principal: Principal
    secret: str
    signature: str
    date: str


async def signed_headers(request: Request) -> SignedHeaders:
    """The half of AK/SK that needs no body: the header's form, the Date, the key."""
    parsed = aksk.parse_authorization(request.headers.get("authorization", ""))
    date = request.headers.get("date", "")
    if parsed is None:
        raise ApiError(ErrorCode.NOT_LOGGED_IN, "The AK/SK Authorization header is malformed.")
    if not aksk.date_is_fresh(date, utcnow()):
        raise ApiError(
            ErrorCode.NOT_LOGGED_IN,
            "The Date header is missing or more than 15 minutes from server time.",
        )
    access_key_id, signature = parsed
    ctx = app_context(request)

    def lookup() -> tuple[Principal, str] | None:
        with ctx.db.session() as session:
            return access_key_owner(session, ctx.secrets, access_key_id)

    found = await run_in_threadpool(lookup)
    if found is None:
        raise ApiError(ErrorCode.NOT_LOGGED_IN, "The access key is unknown.")
    return SignedHeaders(*found, signature, date)


def signed_principal(request: Request, signed: SignedHeaders, body_md5: str) -> Principal:
    """The key's owner when the signature matches the request and its body's MD5."""
    messages = aksk.received_messages(
        request.method,
        body_md5,
        request.headers.get("content-type", ""),
        signed.date,
        request.headers.get("host", ""),
        request.headers.items(),
        request.url.path,
        request.query_params.multi_items(),
    )
    if not aksk.signed_by(signed.secret, messages, signed.signature):
        raise ApiError(ErrorCode.NOT_LOGGED_IN, "The request signature does not match.")
    return signed.principal


def _by_access_key(request: Request) -> Principal:
    outcome = request.scope.get("state", {}).get(SIGNED)
    if isinstance(outcome, Principal):
        return outcome
    if isinstance(outcome, ApiError):
        raise outcome
    # Unreachable while SignedBodyMiddleware is installed; refused rather than trusted.
    raise ApiError(ErrorCode.NOT_LOGGED_IN, "The AK/SK signature was not checked.")


async def session_principal(request: Request, session: ConsoleSession) -> Principal:
    """The principal a console session acts for while the session is current: its user still
    enabled, the same row, at the session epoch of the login (no logout, new password or
    disabling since). The user's Login is read as Basic's is, reused from `logins.recent`
    while this process changed no user and for LOGIN_RECHECK_S at most: a logout here is seen
    at once, one through another replica (or the CLI) within that time."""
    logins: Logins = request.app.state.logins
    login = logins.recent.get(session.username) or await _read_login(
        request, logins, session.username
    )
    if login is None:
        raise ApiError(ErrorCode.NOT_LOGGED_IN, "The console session's user is gone or disabled.")
    if not session.is_current(login.principal.user_id, login.principal.session_epoch):
        raise ApiError(ErrorCode.NOT_LOGGED_IN, "The console session has ended: log in again.")
    return login.principal


async def _by_console_session(request: Request) -> Principal | None:
    """The console session's principal when the request carries the session cookie (and, to
    change anything, its CSRF token); None without the cookie. Reads need no token: another
    site cannot read what they answer, and the browser's EventSource cannot send headers."""
    session = open_session(app_context(request).secrets, request.cookies.get(COOKIE))
    if session is None:
        return None
    if request.method not in SAFE_METHODS and not session.accepts(request.headers.get(CSRF_HEADER)):
        raise ApiError(ErrorCode.NOT_LOGGED_IN, f"The {CSRF_HEADER} header is missing or wrong.")
    return await session_principal(request, session)


async def authenticate(request: Request) -> Principal:
    """Who is calling; named in the request's log lines and audit record from here on."""
    principal = await _identify(request)
    annotate(user=principal.username)
    return principal


async def _identify(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        return await _by_basic(request, header)
    if header.startswith(aksk.SCHEME):
        return _by_access_key(request)
    principal = await _by_console_session(request)
    if principal is not None:
        return principal
    raise ApiError(ErrorCode.NOT_LOGGED_IN, "Send HTTP Basic credentials or an AK/SK signature.")


class Requires:
    """A route's permission rule, usable as a FastAPI dependency."""

    def __init__(self, resource: Resource, write: bool) -> None:
        self.resource = resource
        self.action = WRITE if write else READ

    async def __call__(self, request: Request) -> Principal:
        principal = await authenticate(request)
        if (self.resource, self.action) not in principal.permissions:
            raise ApiError(ErrorCode.FORBIDDEN, f"{self.resource.value}:{self.action}")
        return principal

    def __repr__(self) -> str:
        return f"Requires({self.resource.value}:{self.action})"


def require(resource: Resource, write: bool = False) -> Requires:
    return Requires(resource, write)


class Public:
    """Marks a route as open without authentication (time, info, status, config server)."""

    async def __call__(self) -> None:
        return None


public = Public()
