"""OCP's OBProxy instance endpoints: adding OBProxies to a cluster on more hosts (batchAdd)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import AliasChoices, Field

from obfleet.api.auth import require
from obfleet.api.deps import CtxDep, SessionDep
from obfleet.api.envelope import Envelope, EnvelopeResponse, ok
from obfleet.api.schema import ApiModel
from obfleet.engine.views import load_task_view
from obfleet.security.roles import Resource
from obfleet.services import obproxy_instances as service
from obfleet.services.users import Principal

router = APIRouter(prefix="/api/v2/obproxy", tags=["obproxy"])
WRITE = require(Resource.OBPROXY, write=True)


class BatchAddIn(ApiModel):
    host_ids: list[int] = Field(max_length=200)
    sql_port: int | None = None
    # batchAdd's page says exporterPort, the create page exportPort: take both.
    exporter_port: int | None = Field(
        None, validation_alias=AliasChoices("exporterPort", "exportPort", "exporter_port")
    )
    version: str | None = Field(None, max_length=255)


@router.post(
    "/clusters/{cluster_id}/obproxies/batchAdd",
    response_model=Envelope[dict[str, Any]],
    summary="Add OBProxy instances (answers with one Install obproxy task per host)",
)
def batch_add(
    cluster_id: int,
    body: BatchAddIn,
    ctx: CtxDep,
    session: SessionDep,
    principal: Principal = Depends(WRITE),
) -> EnvelopeResponse:
    target = service.Target(body.host_ids, body.sql_port, body.exporter_port, body.version)
    task_ids = service.batch_add(
        session,
        ctx.secrets,
        cluster_id,
        target,
        principal,
        advertise_url=ctx.settings.advertise_url,
    )
    return ok({"contents": [load_task_view(session, task_id) for task_id in task_ids]})
