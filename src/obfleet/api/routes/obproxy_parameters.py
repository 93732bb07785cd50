"""Changing an OBProxy cluster's parameters (extension: OCP's UI does it, its API has no call for
it). Reading them is OCP's own GET clusters/{id}/parameters, in routes/obproxy.py."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query
from pydantic import Field, model_validator

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


class ParameterChangeIn(RequestModel):
    """A parameter to set to `value`, or with `reset: true` to put back to OBProxy's default."""

    name: str = Field(max_length=128)
    value: str | None = Field(None, max_length=4096)
    reset: bool = False

    @model_validator(mode="after")
    def _value_or_reset(self) -> ParameterChangeIn:
        if (self.value is None) != self.reset:
            raise ValueError(f"'{self.name}': give either a value or reset: true")
        return self


class ParametersIn(RequestModel):
    model_config = example(
        {
            "parameters": [
                {"name": "client_max_connections", "value": "8192"},
                {"name": "syslog_level", "reset": True},
            ],
            "startupParameters": [{"name": "proxy_mem_limited", "value": "2G"}],
        }
    )

    # A list left out is not touched; see update_parameters for what a list given does.
    parameters: list[ParameterChangeIn] | None = Field(None, max_length=500)
    startup_parameters: list[ParameterChangeIn] | None = Field(None, max_length=500)


def _changes(items: list[ParameterChangeIn] | None) -> list[service.Change] | None:
    return None if items is None else [(p.name, p.value) for p in items]


@router.put(
    "/clusters/{cluster_id}/parameters",
    response_model=Envelope[StartedTaskOut],
    tags=["extension"],
    summary="Change the parameters of an OBProxy cluster (extension; answers with the Update "
    "obproxy parameter task, which restarts the obproxies one at a time when startup "
    "parameters change)",
    description="`mode=merge` (the default, as OCP's console): only the parameters named "
    'change; `{"name": ..., "reset": true}` puts one back to OBProxy\'s default (and out of '
    "the cluster's record). `mode=replace`: each list given replaces the recorded one, and a "
    "parameter it leaves out goes back to its default.",
)
def update_parameters(
    cluster_id: int,
    body: ParametersIn,
    session: SessionDep,
    mode: Literal["merge", "replace"] = Query("merge"),
    principal: Principal = Depends(WRITE),
) -> EnvelopeResponse:
    """Change the cluster's runtime parameters (applied live) and startup parameters (applied by
    restarting the OBProxies one at a time): only those named, or each list given whole with
    `mode=replace`. The answer is the "Update obproxy parameter" task."""
    task_id = service.update(
        session,
        cluster_id,
        startup=_changes(body.startup_parameters),
        runtime=_changes(body.parameters),
        replace=mode == "replace",
        principal=principal,
    )
    return ok(StartedTaskOut.load(session, task_id))
