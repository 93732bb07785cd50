"""OCP's response envelope: {data, successful, timestamp, duration, status, traceId, server}."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel
from starlette.responses import Response

from obfleet.api.context import current
from obfleet.errors import ApiError
from obfleet.timefmt import iso, utcnow

T = TypeVar("T")

SERVER = socket.gethostname()


def _wire(value: Any) -> Any:
    """A response model's JSON form, for orjson, which meets it anywhere in the data: no walk
    over the data beforehand (a page of 2,000 clusters written from rows has no model)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _body(status: int, **fields: Any) -> dict[str, Any]:
    facts = current()
    return {
        **fields,
        "duration": facts.duration_ms(),
        "server": SERVER,
        "status": status,
        "successful": 200 <= status < 300,
        "timestamp": iso(utcnow()),
        "traceId": facts.trace_id,
    }


# Sorted keys, as OCP's Jackson mapper writes them; UTF-8 and compact, as json.dumps with
# ensure_ascii=False and (",", ":") wrote them before. orjson encodes a page of 2,000 clusters
# several times faster than json.dumps.
ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def _encode(content: Any) -> bytes:
    try:
        return orjson.dumps(content, default=_wire, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        # A key other than a string, written as json.dumps wrote it ({1: ...} as "1"):
        # orjson's option for such keys doubles the cost of every other answer (a page of
        # 2,000 tasks: 0.7 ms instead of 0.35), so only this answer pays it.
        return orjson.dumps(content, default=_wire, option=ORJSON_OPTIONS)


def encoded(content: Any) -> orjson.Fragment:
    """Part of an answer encoded ahead, as the answer would encode it: the envelope writes a
    Fragment's bytes as they are, sorted keys included. For keeping: copied to its own size,
    as orjson's answer holds on to its whole buffer (8 KiB at least: a kept row of 0.6 KiB
    took 8 KiB)."""
    return orjson.Fragment(bytes(memoryview(_encode(content))))


class EnvelopeResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _encode(content)


def ok(data: Any = None, status: int = 200) -> EnvelopeResponse:
    return EnvelopeResponse(_body(status, data=data), status_code=status)


def error(err: ApiError) -> EnvelopeResponse:
    body = _body(err.http_status, error={"code": err.error_code.code, "message": err.message})
    return EnvelopeResponse(body, status_code=err.http_status, headers=dict(err.headers))


def contents(items: Sequence[Any]) -> dict[str, Any]:
    """A non-paged list, as OCP's IterableResponse shows it."""
    return {"contents": list(items)}


# Documentation-only models, so the OpenAPI document shows the envelope around each payload.
class Envelope(BaseModel, Generic[T]):
    data: T | None = None
    successful: bool
    timestamp: str
    duration: int
    status: int
    traceId: str
    server: str


class Contents(BaseModel, Generic[T]):
    contents: list[T]
