"""The ob-configserver API at /services (extension): OBProxies in CONFIG_URL mode read their
clusters from it and observers started with `obconfig_url` register with it. Reads are open, like
ob-configserver's; writes are checked in obfleet.configserver.access (no OCP login: observers
have none).

HTTP only; the actions live in obfleet.configserver. Every answer, errors included, is
ob-configserver's envelope `{Code, Message, Success, Data, Trace, Server, Cost}` (not OCP's),
with `Code` as the HTTP status.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from obfleet.api.auth import public
from obfleet.api.context import current
from obfleet.api.deps import CtxDep
from obfleet.api.envelope import SERVER
from obfleet.configserver import Call, answer, answer_at_hand
from obfleet.configserver.access import write_policy
from obfleet.configserver.cache import Outcome
from obfleet.configserver.registrations import MAX_BODY
from obfleet.configserver.service import ACTIONS

router = APIRouter(tags=["config server (extension)"], dependencies=[Depends(public)])
PATH = "/services"


class ConfigServerEnvelope(BaseModel):
    """Documentation only: the answers are written directly."""

    Code: int
    Message: str
    Success: bool
    Data: Any = None
    Trace: str
    Server: str
    Cost: int


def _param(name: str, description: str, required: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": {"type": "string"},
    }


PARAMETERS = [
    _param("Action", "What to do; see the operation's description.", required=True),
    _param("ObCluster", "OceanBase cluster name (ObRegion: the old spelling, which wins)."),
    _param("ObRegion", "OceanBase cluster name, old spelling."),
    _param("ObClusterId", "OceanBase cluster id (ObRegionId: the old spelling, which wins)."),
    _param("ObRegionId", "OceanBase cluster id, old spelling."),
    _param("version", "2: answer every cluster of the name as a list unless an id is given."),
    _param("VersionOnly", "true: GetObProxyConfig answers only {Version}."),
    _param("ObproxyClusterName", "GetObProxyConfig: only the clusters linked to it."),
    _param("ClusterName", "DeleteObRootServiceInfoByClusterName: the name to forget."),
]
RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ConfigServerEnvelope, "description": text}
    for code, text in (
        (400, "illegal argument (unknown action, missing or invalid parameter)"),
        (
            403,
            "forbidden (a write from an address not allowed, without the Token, or for a"
            " cluster recorded through the API)",
        ),
        (404, "resource not found (unknown cluster or OBProxy cluster)"),
        (409, "conflict (a newer registration stands, or the registration limit is reached)"),
        (500, "internal error (also ob-configserver's answer to an unparseable parameter)"),
    )
}


def _first_values(request: Request) -> dict[str, str]:
    """Gin's c.Query reads the first value of a repeated parameter; Starlette's the last."""
    params: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        params.setdefault(key, value)
    return params


async def _body(request: Request) -> bytes:
    """Read one byte past the limit at most: enough to refuse an oversized body unread."""
    chunks, size = [], 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY:
            break
    return b"".join(chunks)


def _reply(request: Request, outcome: Outcome) -> Response:
    """The envelope around an answer whose `Data` is already JSON (and may have been encoded
    for an earlier request): only Trace, Server and Cost are this request's."""
    facts = current()
    server = request.scope.get("server")  # the address this request reached, as ob-configserver
    head = {"Code": outcome.code, "Message": outcome.message, "Success": outcome.code == 200}
    tail = {
        "Trace": facts.trace_id,
        "Server": server[0] if server else SERVER,
        "Cost": facts.duration_ms(),
    }
    content = b"".join(
        (
            _dumps(head)[:-1],
            b',"Data":',
            outcome.data,
            b",",
            _dumps(tail)[1:],
        )
    )
    return Response(content, status_code=outcome.http_status, media_type="application/json")


def _dumps(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


async def services(request: Request, ctx: CtxDep) -> Response:
    base_url = (ctx.settings.advertise_url or str(request.base_url)).rstrip("/")
    body = await _body(request) if request.method == "POST" else b""
    call = Call(
        _first_values(request),
        base_url,
        request.client.host if request.client else "",
        write_policy(ctx.settings),
        body,
    )
    staleness_s = ctx.settings.configserver_staleness_s
    # OBProxies poll: their usual answer is served here, on the event loop, never queued
    # behind the handlers' worker threads (obfleet.api.threads).
    outcome = answer_at_hand(ctx.db, request.method, call, staleness_s=staleness_s)
    if outcome is None:
        outcome = await run_in_threadpool(
            answer, ctx.db, request.method, call, staleness_s=staleness_s
        )
    if ctx.metrics is not None:
        ctx.metrics.configserver_answered(
            _action_label(call.params.get("Action", "")), request.method, outcome.http_status
        )
    return _reply(request, outcome)


def _action_label(action: str) -> str:
    """The Action as a metric label: only the known ones, so a client cannot grow the
    metric's series without bound by sending made-up actions."""
    return action if any(action in known for known in ACTIONS.values()) else "other"


def _route(method: str, summary: str, description: str) -> None:
    extra: dict[str, Any] = {"parameters": PARAMETERS}
    if method == "POST":  # ObRootServiceInfo's registration; the other actions ignore a body
        extra["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    router.add_api_route(
        PATH,
        services,
        methods=[method],
        summary=summary,
        description=description,
        response_model=ConfigServerEnvelope,
        responses=RESPONSES,
        openapi_extra=extra,
        operation_id=f"configserver_{method.lower()}",
    )


_route(
    "GET",
    "ob-configserver queries (extension)",
    "`Action`: `ObRootServiceInfo` (a cluster's root servers), `GetObProxyConfig` (the clusters "
    "an OBProxy reads, with `Version`), `GetObRootServiceInfoUrlTemplate`, `ObIDCRegionInfo`.",
)
_route(
    "POST",
    "ob-configserver registrations (extension)",
    "`Action`: `ObRootServiceInfo` (an observer registers its root servers: the JSON body "
    "`{ObCluster, ObClusterId, Type, RsList:[{address, role, sql_port}], ReadonlyRsList, "
    "timestamp}`), `GetObProxyConfig`, `GetObRootServiceInfoUrlTemplate`, and OCP's "
    "`ObRootServiceRegister` and `DeleteObRootServiceInfoByClusterName` that OBD sends.",
)
_route(
    "DELETE",
    "ob-configserver deregistration (extension)",
    "`Action=ObRootServiceInfo` with `version=2` and `ObClusterId`: forget that registration; "
    "obfleet's own record of the cluster, if any, answers again.",
)
