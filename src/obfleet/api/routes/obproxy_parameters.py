"""Changing an OBProxy cluster's parameters (extension: OCP's UI does it, its API has no call for
it). Reading them is OCP's own GET clusters/{id}/parameters, in routes/obproxy.py."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import Field

from obfleet.api.auth import require
from obfleet.api.deps import SessionDep
from obfleet.api.envelope import Envelope, EnvelopeResponse, ok
from obfleet.api.schema import RequestModel, example
from obfleet.api.schemas.tasks import StartedTaskOut
from obfleet.security.roles import Resource
from obfleet.services import obproxy_parameters as service
from obfleet.services.users import Principal

router = APIRouter(prefix="/api/v2/obproxy", tags=["obproxy"])
WRITE = require(Resource.OBPROXY, write=True)


class ParameterIn(RequestModel):
    name: str = Field(max_length=128)
    value: str = Field(max_length=4096)


class ParametersIn(RequestModel):
    model_config = example(
        {
            "parameters": [{"name": "client_max_connections", "value": "8192"}],
            "startupParameters": [{"name": "proxy_mem_limited", "value": "2G"}],
        }
    )

    # A list left out stays as recorded; a list given replaces the recorded one.
    parameters: list[ParameterIn] | None = Field(None, max_length=500)
    startup_parameters: list[ParameterIn] | None = Field(None, max_length=500)


def _pairs(items: list[ParameterIn] | None) -> list[tuple[str, str]] | None:
    return None if items is None else [(p.name, p.value) for p in items]


@router.put(
    "/clusters/{cluster_id}/parameters",
    response_model=Envelope[StartedTaskOut],
    tags=["extension"],
    summary="Change the parameters of an OBProxy cluster (extension; answers with the Update "
    "obproxy parameter task, which restarts the obproxies one at a time when startup "
    "parameters change)",
)
def update_parameters(
    cluster_id: int, body: ParametersIn, session: SessionDep, principal: Principal = Depends(WRITE)
) -> EnvelopeResponse:
    """Set the cluster's runtime parameters (applied live) and startup parameters (applied by
    restarting the OBProxies one at a time). A list left out stays as recorded; a list given
    replaces it. The answer is the "Update obproxy parameter" task."""
    task_id = service.update(
        session,
        cluster_id,
        startup=_pairs(body.startup_parameters),
        runtime=_pairs(body.parameters),
        principal=principal,
    )
    return ok(StartedTaskOut.load(session, task_id))
