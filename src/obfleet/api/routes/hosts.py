"""OCP's host module: list, get, batchCreate (answers with "Prepare host" tasks), delete; and
(extension) running a host's "Prepare host" again."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, Query
from pydantic import Field
from sqlalchemy import Select
from sqlalchemy.orm import Session

from obfleet.api.auth import require
from obfleet.api.deps import CtxDep, SessionDep
from obfleet.api.envelope import Contents, Envelope, EnvelopeResponse, contents, ok
from obfleet.api.paging import Page, PageRequest, fetch_page, page_request, paged
from obfleet.api.schema import RequestModel, example
from obfleet.api.schemas.hosts import HostOut
from obfleet.api.schemas.tasks import StartedTaskOut
from obfleet.logs import note
from obfleet.records.host_access import get_host
from obfleet.records.host_views import HOST, host_row
from obfleet.security.roles import Resource
from obfleet.services import hosts as service
from obfleet.services.users import Principal

router = APIRouter(prefix="/api/v2/compute/hosts", tags=["hosts"])
READ = Depends(require(Resource.HOST))
WRITE = require(Resource.HOST, write=True)
SORTABLE = {
    "id": HOST.id,
    "name": HOST.name,
    "innerIpAddress": HOST.inner_ip_address,
    "status": HOST.status,
    "createTime": HOST.create_time,
    "updateTime": HOST.update_time,
}


class HostBasicDataIn(RequestModel):
    inner_ip_address: str = Field(max_length=255)
    serial_number: str | None = Field(None, max_length=64)


class BatchCreateIn(RequestModel):
    model_config = example(
        {
            "hostBasicDataList": [{"innerIpAddress": "10.0.0.11", "serialNumber": "SN-0011"}],
            "sshPort": 22,
            "kind": "DEDICATED_PHYSICAL_MACHINE",
            "credentialId": 1,
            "idcId": 1,
            "typeId": 1,
            "alias": "proxy-hosts",
            "description": "OBProxy hosts in rack 3",
        }
    )

    host_basic_data_list: list[HostBasicDataIn]
    ssh_port: int = 22
    kind: Literal["DEDICATED_PHYSICAL_MACHINE", "DEDICATED_CONTAINER"]
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
    model_config = example({"hostIdList": [1, 2]})

    host_id_list: list[int] = Field(max_length=2000)


def _page(session: Session, stmt: Select[Any], req: PageRequest) -> dict[str, Any]:
    """One page of hosts, their services loaded in one query for the whole page."""
    rows, total = fetch_page(session, stmt, req, SORTABLE, HOST.id)
    return paged(HostOut.page(session, rows), req, total)


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
    """Hosts, a page at a time, filtered by status, a keyword (name or address) and the services
    they run."""
    stmt = service.query(status, keyword, included_service_type, excluded_service_type)
    return ok(_page(session, stmt, page))


@router.get(
    "/{host_id}",
    dependencies=[READ],
    response_model=Envelope[HostOut],
    summary="Query details about a host",
)
def get_host_details(host_id: int, session: SessionDep) -> EnvelopeResponse:
    """One host: its address, SSH port, status, credential and the facts read from it (operating
    system, architecture, CPUs, memory)."""
    host = get_host(session, host_id)
    return ok(HostOut.page(session, [host_row(session, host.id)])[0])


@router.post(
    "/batchCreate",
    response_model=Envelope[Contents[StartedTaskOut]],
    summary='Add hosts (answers with one "Prepare host" task per host)',
)
def batch_create(
    body: BatchCreateIn, session: SessionDep, principal: Principal = Depends(WRITE)
) -> EnvelopeResponse:
    """Record hosts reached over SSH with a HOST credential. Each host gets a "Prepare host" task
    that logs in, pins the host key, reads the host's facts and marks it ONLINE; the answer lists
    those tasks."""
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
    return ok(contents([StartedTaskOut.load(session, task_id) for task_id in task_ids]))


@router.post(
    "/{host_id}/prepare",
    response_model=Envelope[StartedTaskOut],
    tags=["extension"],
    summary='Run "Prepare host" again (extension)',
)
def prepare_again(
    host_id: int, session: SessionDep, principal: Principal = Depends(WRITE)
) -> EnvelopeResponse:
    """Run the host's "Prepare host" task again: after the last one failed and its cause was
    fixed on the host, or when the host changed (its facts are read anew). Refused (409) while a
    task acting on the host runs. The host key pinned at first contact stays pinned."""
    return ok(StartedTaskOut.load(session, service.prepare_again(session, host_id, principal)))


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
    """Forget a host. Refused (409) while an OBProxy runs on it or a task acts on it; nothing on the
    host is touched."""
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
    """Forget several hosts at once: all of them, or none when one is in use."""
    for host_id in body.host_id_list:  # the objects the audit trail names, even if refused
        note("objectIds", host_id)
    return _deleted(ctx, background, service.delete(session, body.host_id_list))
