"""Per-request facts the envelope needs (trace id, start time), set by a tiny ASGI middleware."""

from __future__ import annotations

import logging
import secrets
import time
from contextvars import ContextVar
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("obfleet.access")


@dataclass
class RequestFacts:
    trace_id: str = field(default_factory=lambda: secrets.token_hex(8))
    started: float = field(default_factory=time.perf_counter)

    def duration_ms(self) -> int:
        return int((time.perf_counter() - self.started) * 1000)


_current: ContextVar[RequestFacts | None] = ContextVar("obfleet_request", default=None)


def current() -> RequestFacts:
    facts = _current.get()
    if facts is None:  # outside a request (tests calling helpers directly)
        facts = RequestFacts()
        _current.set(facts)
    return facts


class RequestFactsMiddleware:
    """Gives each request a fresh 16-hex trace id, logs it with the outcome, echoes it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        facts = RequestFacts()
        token = _current.set(facts)
        status = 500

        async def send_with_trace(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-trace-id", facts.trace_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_trace)
        finally:
            log.info(
                "%s %s %s %dms traceId=%s",
                scope["method"],
                scope["path"],
                status,
                facts.duration_ms(),
                facts.trace_id,
            )
            _current.reset(token)
