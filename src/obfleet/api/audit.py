"""The audit trail's one writer for the API: every request that may change something (any
method but GET, HEAD and OPTIONS, on a route with a permission rule) leaves one row, whatever
its outcome. The config server's open routes are left out: their callers are observers and
OBProxies, not users, and a POST there is mostly a read (GetObProxyConfig) or a routine
re-registration the config server keeps in its own tables.

The row is written when the answer's last byte is about to go out, so a client that reads the
trail right after its answer finds it there, and a failure that never produced an answer (a
crash) is recorded with status 500. What the row names comes from what the request already
established, never from its body (which may hold a secret):
- who: the user the auth dependency identified (the request's log fields), else nobody;
- what: the route's name and template, the resource its permission rule guards;
- which object: the route's first path parameter (`/credentials/{credential_id}`), else what the
  request made: the objects the service noted (`objectIds`), or the answer's `data.id`;
- the outcome: the status and the OCP error code of the answer;
- the tasks it submitted, and the trace id.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from obfleet.api.auth import Requires
from obfleet.api.context import client_address, route_template
from obfleet.appcontext import AppContext
from obfleet.logs import log_fields
from obfleet.records import audit
from obfleet.records.audit import Change

log = logging.getLogger("obfleet.audit")

READ_ONLY = frozenset({"GET", "HEAD", "OPTIONS"})
# An answer longer than this is not parsed for the created object's id (answers of changes are
# small; a longer one is a list nobody creates in one request).
MAX_PARSED_BODY = 256 * 1024


def _resource(route: Any) -> str | None:
    """The resource the route's permission rule guards (None for a public route)."""
    if not isinstance(route, APIRoute):
        return None
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        if isinstance(dependant.call, Requires):
            return dependant.call.resource.value
        pending.extend(dependant.dependencies)
    return None


def _answer(body: bytes) -> tuple[Any, int | None]:
    """The answer's `data` and OCP error code, when it is an envelope."""
    if not body or len(body) > MAX_PARSED_BODY:
        return None, None
    try:
        parsed = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(parsed, dict):
        return None, None
    error = parsed.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    return parsed.get("data"), code if isinstance(code, int) else None


def _object_id(scope: Scope, data: Any, fields: dict[str, Any]) -> str | None:
    params = scope.get("path_params") or {}
    if params:
        return str(next(iter(params.values())))
    made = fields.get("objectIds")
    if made:
        return ",".join(str(i) for i in dict.fromkeys(made))
    if fields.get("taskIds"):
        return None  # the answer is the task, not the object
    if isinstance(data, dict) and "id" in data:
        return str(data["id"])
    return None


def change_of(scope: Scope, status: int, body: bytes, fields: dict[str, Any]) -> Change:
    route = scope.get("route")
    data, error_code = _answer(body)
    return Change(
        action=getattr(route, "name", None) or "unmatched",
        method=scope["method"],
        route=route_template(scope),
        status=status,
        username=fields.get("user"),
        client_address=client_address(scope),
        object_type=_resource(route),
        object_id=_object_id(scope, data, fields),
        error_code=error_code,
        trace_id=fields.get("traceId"),
        task_ids=fields.get("taskIds", ()),
    )


async def write(ctx: AppContext, change: Change) -> None:
    def work() -> None:
        with ctx.db.transaction() as session:
            audit.record(session, change)

    try:
        await run_in_threadpool(work)
    except Exception as exc:  # the answer still goes out; the server log keeps the change
        log.error("could not record %s in the audit trail: %s", change, exc)


class AuditMiddleware:
    """Records every changing request (see the module docstring); inside RequestFactsMiddleware,
    whose log fields (trace id, user, tasks) it reads."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx: AppContext | None = getattr(scope["app"].state, "ctx", None)
        if (
            scope["type"] != "http"
            or scope["method"] in READ_ONLY
            or ctx is None
            or not ctx.settings.audit_enabled
        ):
            await self.app(scope, receive, send)
            return
        status = 500
        body = bytearray()
        recorded = False

        async def send_after_recording(message: Message) -> None:
            nonlocal status, recorded
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not recorded:
                if len(body) <= MAX_PARSED_BODY:
                    body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    recorded = True
                    await self._record(ctx, scope, status, bytes(body))
            await send(message)

        try:
            await self.app(scope, receive, send_after_recording)
        finally:
            if not recorded:  # no answer was sent: a crash, answered 500 further out
                await self._record(ctx, scope, 500, b"")

    @staticmethod
    async def _record(ctx: AppContext, scope: Scope, status: int, body: bytes) -> None:
        if _resource(scope.get("route")) is not None:  # a user's operation, not the config server
            await write(ctx, change_of(scope, status, body, log_fields()))
