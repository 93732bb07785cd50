"""Per-request facts the envelope needs (trace id, start time), set by a tiny ASGI middleware,
which also binds the request's log fields, writes the access log and counts the request."""

from __future__ import annotations

import logging
import secrets
import time
from contextvars import ContextVar
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from obfleet.logs import bound
from obfleet.monitor.metrics import UNMATCHED

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


def route_template(scope: Scope) -> str:
    """The path pattern of the route that answered (`/api/v2/credentials/{credential_id}`):
    metrics and the audit trail group by it, never by the raw path."""
    route = scope.get("route")
    return str(getattr(route, "path", UNMATCHED))


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


class RequestFactsMiddleware:
    """Gives each request a fresh 16-hex trace id, logs it with the outcome (user, client
    address, never a header or the query string: either may carry a secret), echoes it back,
    and counts it in the app's metrics."""

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
            with bound(traceId=facts.trace_id):
                try:
                    await self.app(scope, receive, send_with_trace)
                finally:
                    log.info(
                        "%s %s %s %dms client=%s",
                        scope["method"],
                        scope["path"],
                        status,
                        facts.duration_ms(),
                        client_address(scope),
                    )
        finally:
            _current.reset(token)
            metrics = getattr(getattr(scope["app"].state, "ctx", None), "metrics", None)
            if metrics is not None:
                elapsed = time.perf_counter() - facts.started
                metrics.request_answered(route_template(scope), scope["method"], status, elapsed)
