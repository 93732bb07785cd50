"""A cap on request bodies, checked before anything reads them.

FastAPI reads a JSON body whole before a route's dependencies (authentication among them) run,
so without a cap anyone could make obfleet hold any amount in memory. No JSON body obfleet takes
comes near MAX_BODY_BYTES. The package upload streams to disk and checks its own, much larger,
limit (OBFLEET_MAX_UPLOAD_BYTES), so it is left to that.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from obfleet.api import envelope
from obfleet.errors import ApiError, ErrorCode

MAX_BODY_BYTES = 4 * 1024 * 1024
STREAMED = ("/api/v2/software-packages",)  # routes that read their body as a stream


class BodyLimitMiddleware:
    """413 for a body over `limit` bytes: at once when Content-Length says so, else as soon as
    the bytes received pass it (a chunked body: the app is cut off from the rest)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(STREAMED):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        received = 0
        over = False

        async def counted() -> Message:
            # Past the cap the app is told the client left: it stops reading, and what it
            # answers is dropped for the 413 below.
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def unless_over(message: Message) -> None:
            if not over:
                await send(message)

        try:
            await self.app(scope, counted, unless_over)
        except Exception:
            if not over:
                raise
        if over:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = envelope.error(ApiError(ErrorCode.PAYLOAD_TOO_LARGE, self.limit))
        await response(scope, receive, send)
