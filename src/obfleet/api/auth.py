"""Who is calling: HTTP Basic (OCP 3.x) or the AK/SK signature (OCP 4.2), and role checks.

Every route declares its rule with `require(resource, write)` or `public`; a test walks the
route list so that a route without a rule cannot be added.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from anyio import CapacityLimiter, to_thread
from fastapi import Request
from starlette.concurrency import run_in_threadpool

from obfleet.api.deps import app_context
from obfleet.config import Settings
from obfleet.errors import ApiError, ErrorCode, bad_request
from obfleet.security import aksk
from obfleet.security.roles import READ, WRITE, Resource
from obfleet.security.throttle import LoginLocked, LoginThrottle, Pair
from obfleet.services.users import (
    Login,
    Principal,
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


class LoginLockedError(ApiError):
    """429 with Retry-After: this user from this address failed too often."""

    def __init__(self, pair: Pair, retry_after: int) -> None:
        super().__init__(ErrorCode.LOGIN_LOCKED, pair[1], pair[0], retry_after)
        self.retry_after = retry_after

    @property
    def headers(self) -> Mapping[str, str]:
        return {"Retry-After": str(self.retry_after)}


async def _by_basic(request: Request, header: str) -> Principal:
    username, password = _basic(header)
    pair = (username, request.client.host if request.client else "")
    logins: Logins = request.app.state.logins
    try:
        tries_left = logins.throttle.attempt(pair)
    except LoginLocked as exc:
        raise LoginLockedError(pair, exc.retry_after) from None
    db = app_context(request).db

    def lookup() -> Login | None:
        with db.session() as session:
            return find_login(session, username)

    login = await run_in_threadpool(lookup)
    principal = cached_login(login, username, password) or await to_thread.run_sync(
        check_login, login, username, password, limiter=logins.checks
    )
    if principal is None:
        raise ApiError(ErrorCode.BAD_CREDENTIALS, tries_left)
    logins.throttle.succeeded(pair)
    return principal


class LengthRequired(ApiError):
    """411 in OCP's envelope: a signed request whose body length is not given up front.
    OCP's table has no code of its own for it, so it carries the generic 1003."""

    def __init__(self) -> None:
        super().__init__(
            ErrorCode.BAD_REQUEST,
            "an AK/SK-signed request must give its body's Content-Length (chunked bodies are"
            " not accepted)",
        )

    @property
    def http_status(self) -> int:
        return 411


def _check_body_length(request: Request) -> None:
    """The signature covers the body, so it is read whole before the signature is checked:
    refuse, before reading it, a body of unknown length or one over the upload limit."""
    if "transfer-encoding" in request.headers:
        raise LengthRequired()
    length = request.headers.get("content-length")
    if length is None:
        return  # no body
    if not length.isascii() or not length.isdigit():
        raise bad_request("the Content-Length header is not a number")
    limit = app_context(request).settings.max_upload_bytes
    if int(length) > limit:
        raise ApiError(ErrorCode.PAYLOAD_TOO_LARGE, limit)


async def _by_access_key(request: Request, header: str) -> Principal:
    parsed = aksk.parse_authorization(header)
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
    principal, secret = found
    _check_body_length(request)
    message = aksk.string_to_sign(
        request.method,
        await request.body(),
        request.headers.get("content-type", ""),
        date,
        request.headers.get("host", ""),
        request.headers,
        request.url.path,
        request.query_params.multi_items(),
    )
    if not aksk.signature_matches(aksk.sign(secret, message), signature):
        raise ApiError(ErrorCode.NOT_LOGGED_IN, "The request signature does not match.")
    return principal


async def authenticate(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        return await _by_basic(request, header)
    if header.startswith(aksk.SCHEME):
        return await _by_access_key(request, header)
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
