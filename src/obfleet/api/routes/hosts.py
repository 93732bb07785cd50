"""OCP's host module: list, get, batchCreate (answers with "Prepare host" tasks), delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Depends, Query
from pydantic import Field
from sqlalchemy import Select
from sqlalchemy.orm import Session

from obfleet.api.auth import require
from obfleet.api.deps import CtxDep, SessionDep
from obfleet.api.envelope import Envelope, EnvelopeResponse, contents, ok
from obfleet.api.paging import Page, PageRequest, page_request, paginate
from obfleet.api.schema import ApiModel, OcpTime, RequestModel
from obfleet.engine.views import load_task_view
from obfleet.hosts.ssh import fingerprint
from obfleet.security.roles import Resource
from obfleet.services import hosts as service
from obfleet.services.host_access import get_host
from obfleet.services.users import Principal
from obfleet.store.models.hosts import Host

router = APIRouter(prefix="/api/v2/compute/hosts", tags=["hosts"])
READ = Depends(require(Resource.HOST))
WRITE = require(Resource.HOST, write=True)
SORTABLE = {
    "id": Host.id,
    "name": Host.name,
    "innerIpAddress": Host.inner_ip_address,
    "status": Host.status,
    "createTime": Host.create_time,
    "updateTime": Host.update_time,
}


class HostBasicDataIn(RequestModel):
    inner_ip_address: str = Field(max_length=255)
    serial_number: str | None = Field(None, max_length=64)


class BatchCreateIn(RequestModel):
    host_basic_data_list: list[HostBasicDataIn]
    ssh_port: int = 22
    kind: str = Field(max_length=64)
    credential_id: int
    idc_id: int | None = Field(
        None, description="Accepted and mapped to obfleet's one default IDC."
    )
    type_id: int | None = Field(
        None, description="Accepted and mapped to obfleet's one default host type."
    )
    alias: str | None = Field(None, max_length=128)
    description: str | None = Field(None, max_length=256)


class BatchDeleteIn(RequestModel):
    host_id_list: list[int] = Field(max_length=2000)


class ServiceSummaryOut(ApiModel):
    name: str
    version: str | None
    type: str
    software_package_id: int | None


class HostOut(ApiModel):
    """OCP's host object. No agent runs on obfleet's hosts, so the agent fields are null."""

    id: int
    name: str
    alias: str | None
    description: str | None
    operating_system: str | None
    operating_system_release: str | None
    architecture: str | None
    serial_number: str | None
    inner_ip_address: str
    ssh_port: int
    kind: str
    publish_ports: str | None = None
    services: list[ServiceSummaryOut]
    status: str
    idc_id: int
    idc_name: str
    idc_description: str | None = None
    type_id: int
    type_name: str
    type_description: str | None = None
    region_id: int
    region_name: str
    region_description: str | None = None
    host_agent_id: int | None = None
    host_agent_version: str | None = None
    host_agent_status: str | None = None
    credential_id: int = Field(description="Extension: the HOST credential obfleet logs in with.")
    host_key_fingerprint: str | None = Field(
        description="Extension: SHA256 fingerprint of the host key pinned at first contact."
    )
    create_time: OcpTime
    update_time: OcpTime


def render(host: Host, services: list[service.ServiceSummary]) -> HostOut:
    return HostOut(
        id=host.id,
        name=host.name,
        alias=host.alias,
        description=host.description,
        operating_system=host.operating_system,
        operating_system_release=host.operating_system_release,
        architecture=host.architecture,
        serial_number=host.serial_number,
        inner_ip_address=host.inner_ip_address,
        ssh_port=host.ssh_port,
        kind=host.kind,
        services=[ServiceSummaryOut.model_validate(s) for s in services],
        status=host.status,
        idc_id=service.DEFAULT_IDC.id,
        idc_name=host.idc_name,
        type_id=service.DEFAULT_TYPE.id,
        type_name=host.type_name,
        region_id=service.DEFAULT_REGION.id,
        region_name=service.DEFAULT_REGION.name,
        credential_id=host.credential_id,
        host_key_fingerprint=fingerprint(host.host_key) if host.host_key else None,
        create_time=host.create_time,
        update_time=host.update_time,
    )


def _page(session: Session, stmt: Select[Any], req: PageRequest) -> dict[str, Any]:
    """One page of hosts, their services loaded in one query for the whole page."""
    result = paginate(session, stmt, req, SORTABLE, Host.id, lambda host: host)
    hosts: list[Host] = result["contents"]
    services = service.services_of(session, [h.id for h in hosts])
    result["contents"] = [render(h, services[h.id]) for h in hosts]
    return result


@router.get(
    "",
    dependencies=[READ],
    response_model=Envelope[Page[HostOut]],
    summary="Query hosts",
)
def list_hosts(
    session: SessionDep,
    page: PageRequest = Depends(page_request),
    status: list[str] | None = Query(None, description="NEW, AVAILABLE, ONLINE, OFFLINE..."),
    keyword: str | None = Query(None, max_length=255),
    included_service_type: list[str] | None = Query(None, alias="includedServiceType"),
    excluded_service_type: list[str] | None = Query(None, alias="excludedServiceType"),
) -> EnvelopeResponse:
    stmt = service.query(status, keyword, included_service_type, excluded_service_type)
    return ok(_page(session, stmt, page))


@router.get(
    "/{host_id}",
    dependencies=[READ],
    response_model=Envelope[HostOut],
    summary="Query details about a host",
)
def get_host_details(host_id: int, session: SessionDep) -> EnvelopeResponse:
    host = get_host(session, host_id)
    return ok(render(host, service.services_of(session, [host.id])[host.id]))


@router.post(
    "/batchCreate",
    response_model=Envelope[dict[str, Any]],
    summary='Add hosts (answers with one "Prepare host" task per host)',
)
def batch_create(
    body: BatchCreateIn, session: SessionDep, principal: Principal = Depends(WRITE)
) -> EnvelopeResponse:
    request = service.BatchCreateIn(
        hosts=[
            service.HostIn(h.inner_ip_address, h.serial_number) for h in body.host_basic_data_list
        ],
        ssh_port=body.ssh_port,
        kind=body.kind,
        credential_id=body.credential_id,
        alias=body.alias,
        description=body.description,
    )
    task_ids = service.batch_create(session, request, principal)
    return ok(contents([load_task_view(session, task_id) for task_id in task_ids]))


def _deleted(ctx: CtxDep, background: BackgroundTasks, host_ids: list[int]) -> EnvelopeResponse:
    # After the response (and so after the commit): close the forgotten hosts' connections.
    background.add_task(service.forget_connections, ctx, host_ids)
    return ok()


@router.delete(
    "/{host_id}",
    dependencies=[Depends(WRITE)],
    response_model=Envelope[None],
    summary="Delete a host nothing runs on",
)
def delete_host(
    host_id: int, ctx: CtxDep, session: SessionDep, background: BackgroundTasks
) -> EnvelopeResponse:
    return _deleted(ctx, background, service.delete(session, [host_id]))


@router.post(
    "/batchDelete",
    dependencies=[Depends(WRITE)],
    response_model=Envelope[None],
    summary="Delete hosts nothing runs on (all or none)",
)
def batch_delete(
    body: BatchDeleteIn, ctx: CtxDep, session: SessionDep, background: BackgroundTasks
) -> EnvelopeResponse:
    return _deleted(ctx, background, service.delete(session, body.host_id_list))
