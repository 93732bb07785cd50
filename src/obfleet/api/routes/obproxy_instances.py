"""OCP's OBProxy instance endpoints: add (batchAdd), adopt (takeOver), delete, restart and
upgrade the OBProxies of a cluster. Each answers with the task that does it."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import AliasChoices, Field

from obfleet.api.auth import require
from obfleet.api.deps import CtxDep, SessionDep
from obfleet.api.envelope import Contents, Envelope, EnvelopeResponse, contents, ok
from obfleet.api.schema import RequestModel, example
from obfleet.api.schemas.tasks import StartedTaskOut
from obfleet.records.obproxy import parse_ids
from obfleet.security.roles import Resource
from obfleet.services import obproxy_instances as service
from obfleet.services import (
    obproxy_offline,
    obproxy_restart,
    obproxy_takeover,
    obproxy_upgrade,
)
from obfleet.services.users import Principal

router = APIRouter(prefix="/api/v2/obproxy", tags=["obproxy"])
WRITE = require(Resource.OBPROXY, write=True)


class BatchAddIn(RequestModel):
    model_config = example(
        {
            "hostIds": [3, 4],
            "sqlPort": 2883,
            "exporterPort": 2884,
            "version": "obproxy-ce-4.2.3.0-3.el7.x86_64.rpm",
        }
    )

    host_ids: list[int] = Field(max_length=200)
    sql_port: int | None = None
    # batchAdd's page says exporterPort, the create page exportPort: take both.
    exporter_port: int | None = Field(
        None, validation_alias=AliasChoices("exporterPort", "exportPort", "exporter_port")
    )
    version: str | None = Field(None, max_length=255)


@router.post(
    "/clusters/{cluster_id}/obproxies/batchAdd",
    response_model=Envelope[Contents[StartedTaskOut]],
    summary="Add OBProxy instances (answers with one Install obproxy task per host)",
)
def batch_add(
    cluster_id: int,
    body: BatchAddIn,
    ctx: CtxDep,
    session: SessionDep,
    principal: Principal = Depends(WRITE),
) -> EnvelopeResponse:
    """Install OBProxy on more hosts of the cluster, with the cluster's parameters. One "Install
    obproxy" task per host in the answer."""
    target = service.Target(body.host_ids, body.sql_port, body.exporter_port, body.version)
    task_ids = service.batch_add(
        session,
        ctx.secrets,
        cluster_id,
        target,
        principal,
        advertise_url=ctx.settings.advertise_url,
    )
    return ok(contents([StartedTaskOut.load(session, task_id) for task_id in task_ids]))


class TakeOverHostIn(RequestModel):
    host_id: int
    sql_port: int
    # Extension: an OBPROXY credential with the OBProxy's current root@proxysys password, when
    # it is neither the cluster's nor empty.
    proxysys_credential_id: int | None = None


class TakeOverIn(RequestModel):
    model_config = example({"hosts": [{"hostId": 3, "sqlPort": 2883, "proxysysCredentialId": 4}]})

    hosts: list[TakeOverHostIn] = Field(min_length=1, max_length=200)


class UpgradeIn(RequestModel):
    model_config = example({"shortRpmName": "obproxy-ce-4.3.0.0-1"})

    # V4.2's body: name-version-buildNumber, e.g. obproxy-ce-4.2.3.0-3; no body (V3.1) = the
    # newest uploaded OBProxy package.
    short_rpm_name: str | None = Field(None, max_length=255)


@router.post(
    "/clusters/{cluster_id}/takeOver",
    response_model=Envelope[Contents[StartedTaskOut]],
    summary="Take over OBProxies already running on hosts (one task per host)",
)
def take_over(
    cluster_id: int,
    body: TakeOverIn,
    ctx: CtxDep,
    session: SessionDep,
    principal: Principal = Depends(WRITE),
) -> EnvelopeResponse:
    """Adopt OBProxies that already run on recorded hosts: obfleet checks each one (its command
    line, its root@proxysys login) and records it in this cluster. One task per host in the
    answer."""
    hosts = [
        obproxy_takeover.TakeOverHost(h.host_id, h.sql_port, h.proxysys_credential_id)
        for h in body.hosts
    ]
    task_ids = obproxy_takeover.take_over(session, ctx.secrets, cluster_id, hosts, principal)
    return ok(contents([StartedTaskOut.load(session, task_id) for task_id in task_ids]))


@router.delete(
    "/clusters/{cluster_id}/obproxies/{obproxy_ids}",
    response_model=Envelope[StartedTaskOut],
    summary="Delete OBProxies: stop, uninstall and forget them (task Offline obproxy)",
)
def delete_obproxies(
    cluster_id: int,
    obproxy_ids: str,
    session: SessionDep,
    principal: Principal = Depends(WRITE),
) -> EnvelopeResponse:
    """Stop, uninstall and forget OBProxies of the cluster (ids comma-separated), with the "Offline
    obproxy" task in the answer."""
    task_id = obproxy_offline.offline(session, cluster_id, parse_ids(obproxy_ids), principal)
    return ok(StartedTaskOut.load(session, task_id))


@router.post(
    "/clusters/{cluster_id}/obproxies/{obproxy_ids}/restart",
    response_model=Envelope[StartedTaskOut],
    summary="Restart OBProxies, one at a time",
)
def restart_obproxies(
    cluster_id: int,
    obproxy_ids: str,
    session: SessionDep,
    principal: Principal = Depends(WRITE),
) -> EnvelopeResponse:
    """Restart OBProxies of the cluster (ids comma-separated) one at a time, each waited for until
    it logs in again before the next one stops."""
    task_id = obproxy_restart.restart(session, cluster_id, parse_ids(obproxy_ids), principal)
    return ok(StartedTaskOut.load(session, task_id))


@router.post(
    "/clusters/{cluster_id}/obproxies/{obproxy_ids}/upgrade",
    response_model=Envelope[StartedTaskOut],
    summary="Upgrade OBProxies to another uploaded package (rollback: the old one runs again)",
)
def upgrade_obproxies(
    cluster_id: int,
    obproxy_ids: str,
    session: SessionDep,
    body: UpgradeIn | None = None,
    principal: Principal = Depends(WRITE),
) -> EnvelopeResponse:
    """Upgrade OBProxies (ids comma-separated) one at a time to an uploaded package, by shortRpmName
    (the newest uploaded OBProxy package when the body is left out). Rolling the task back runs the
    old version again."""
    rpm = body.short_rpm_name if body else None
    task_id = obproxy_upgrade.upgrade(session, cluster_id, parse_ids(obproxy_ids), rpm, principal)
    return ok(StartedTaskOut.load(session, task_id))
