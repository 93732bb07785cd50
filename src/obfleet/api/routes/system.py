"""OCP's "other" module: server time, application info and status. Open without auth.

Their pages show bare answers, not the envelope: time and status as plain text, info as a
plain JSON object. obfleet answers exactly so, for clients that parse them.
"""

from __future__ import annotations

import platform

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import text

from obfleet import __version__
from obfleet.api.auth import public
from obfleet.api.deps import CtxDep
from obfleet.api.schemas.system import InfoOut
from obfleet.timefmt import iso, utcnow

router = APIRouter(tags=["other"], dependencies=[Depends(public)])
BUILD_TIME = utcnow()


@router.get("/api/v2/time", response_class=PlainTextResponse, summary="Query server time")
def server_time() -> PlainTextResponse:
    """The server's time, as plain text in ISO-8601 with its offset. Open to anyone: a client checks
    its clock against it before signing AK/SK requests."""
    return PlainTextResponse(iso(utcnow()))


@router.get("/api/v2/info", response_model=InfoOut, summary="Query application information")
def info() -> JSONResponse:
    """Build information: name, version and build time, as a bare JSON object (no envelope), as OCP
    answers it. Open to anyone."""
    body = InfoOut(
        artifact="obfleet",
        build_python_version=platform.python_version(),
        build_time=BUILD_TIME,
        build_version=__version__,
        group="obfleet",
        name="obfleet",
    )
    return JSONResponse(body.model_dump(mode="json", by_alias=True))


def _unavailable(ctx: CtxDep) -> list[str]:
    broken = []
    try:
        with ctx.db.session() as session:
            session.execute(text("SELECT 1"))
    except Exception:  # any failure means the metadb is not usable
        broken.append("metadb")
    engine = ctx.engine
    if engine is not None and not getattr(engine, "healthy", True):
        broken.append("taskengine")
    return broken


@router.get("/api/v2/status", response_class=PlainTextResponse, summary="Query application status")
@router.get("/api/status", response_class=PlainTextResponse, include_in_schema=False)
def status(
    ctx: CtxDep,
    include_unavailable_component: bool = Query(False, alias="includeUnavailableComponent"),
) -> PlainTextResponse:
    """`RUNNING` when the metadb and the task engine work, else `UNAVAILABLE` (with
    includeUnavailableComponent, which ones are not), as plain text. Open to anyone: load balancers
    check it."""
    broken = _unavailable(ctx)
    if not broken:
        return PlainTextResponse("okay")
    body = "bad " + ",".join(broken) if include_unavailable_component else "bad"
    return PlainTextResponse(body, status_code=503)
