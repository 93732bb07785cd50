"""The body of an AK/SK-signed request, read once through its digest before the app sees it.

The signature covers the body's MD5, so it can be checked only once the whole body is in. Held
in memory, the body of a request that turns out forged would cost what its sender chose (the
package upload takes up to OBFLEET_MAX_UPLOAD_BYTES). So the headers are checked first (form,
Date, length, a known access key: obfleet.api.auth.signed_headers), and a request refused there
goes on with its body unread; otherwise the body is read here, chunk by chunk, through MD5 into
a spool that stays in memory only up to IN_MEMORY bytes and goes on in a temporary file beside
the packages (removed when the request ends). The signature is checked against that digest, the
outcome left in the request's state for obfleet.api.auth, and the app reads the body from the
spool as it would have from the client.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from typing import IO

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from obfleet.api.auth import SIGNED, signed_headers, signed_principal
from obfleet.api.deps import app_context
from obfleet.errors import ApiError, ErrorCode, bad_request
from obfleet.security import aksk

IN_MEMORY = 1024 * 1024
CHUNK = 64 * 1024


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


def _check_length(headers: dict[bytes, bytes], limit: int) -> None:
    """Refuse, before reading it, a body of unknown length or one over the upload limit."""
    if b"transfer-encoding" in headers:
        raise LengthRequired()
    length = headers.get(b"content-length")
    if length is None:
        return  # no body
    if not length.isdigit():
        raise bad_request("the Content-Length header is not a number")
    if int(length) > limit:
        raise ApiError(ErrorCode.PAYLOAD_TOO_LARGE, limit)


async def _spool(receive: Receive, spool: IO[bytes]) -> tuple[str, Message | None]:
    """Read the body into `spool`; its MD5 as the signature shows it, and the disconnect that
    ended it early, if one did."""
    digest = hashlib.md5(usedforsecurity=False)
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return aksk.content_md5_of(digest, spool.tell()), message
        chunk = message.get("body", b"")
        digest.update(chunk)
        spool.write(chunk)
        if not message.get("more_body", False):
            return aksk.content_md5_of(digest, spool.tell()), None


def _replayed(spool: IO[bytes], ended: Message | None) -> Iterator[Message]:
    """The body's messages again, from the spool, and the disconnect that ended it early."""
    size = spool.tell()
    spool.seek(0)
    while True:
        chunk = spool.read(CHUNK)
        last = spool.tell() >= size
        yield {"type": "http.request", "body": chunk, "more_body": not last or bool(ended)}
        if last:
            break
    if ended is not None:
        yield ended


class SignedBodyMiddleware:
    """For an AK/SK-signed request: the headers checked first (a request refused there is
    passed on with its body unread), then the body spooled through MD5 and the signature
    checked; what was found is left in the request's state for obfleet.api.auth."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"]) if scope["type"] == "http" else {}
        if not headers.get(b"authorization", b"").startswith(aksk.SCHEME.encode()):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        state = scope.setdefault("state", {})
        settings = app_context(request).settings
        try:
            _check_length(headers, settings.max_upload_bytes)
            signed = await signed_headers(request)
        except ApiError as exc:
            state[SIGNED] = exc
            await self.app(scope, receive, send)
            return
        settings.packages_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.SpooledTemporaryFile(IN_MEMORY, dir=str(settings.packages_dir)) as spool:
            md5, ended = await _spool(receive, spool)
            try:
                state[SIGNED] = signed_principal(request, signed, md5)
            except ApiError as exc:
                state[SIGNED] = exc
            replayed = _replayed(spool, ended)

            async def replay() -> Message:
                # After the body, what the client sends next (its disconnect).
                return next(replayed, None) or await receive()

            await self.app(scope, replay, send)
