"""OceanBase cluster records: OCP's cluster list, plus get-one, import and forget (extensions)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query
from pydantic import AliasChoices, Field, field_validator

from obfleet.api.auth import require
from obfleet.api.deps import CtxDep, SessionDep
from obfleet.api.envelope import Contents, Envelope, EnvelopeResponse, contents, ok
from obfleet.api.paging import Page, PageRequest, page_request, paginate
from obfleet.api.schema import RequestModel, example
from obfleet.api.schemas.ob_clusters import ObClusterOut, ObServerOut
from obfleet.errors import bad_request
from obfleet.records import ob_clusters as service
from obfleet.security.roles import Resource
from obfleet.services.users import Principal
from obfleet.store.models.ob_clusters import ObCluster

router = APIRouter(prefix="/api/v2/ob/clusters", tags=["ob clusters"])
READ = Depends(require(Resource.CLUSTER))
WRITE = require(Resource.CLUSTER, write=True)


class RootServerIn(RequestModel):
    address: str = Field(max_length=300, description="ip:rpcPort")
    role: Literal["LEADER", "FOLLOWER"] = "FOLLOWER"
    # The import body says sqlPort; OCP's responses say sql_port: take either.
    sql_port: int = Field(validation_alias=AliasChoices("sqlPort", "sql_port"))


class ImportIn(RequestModel):
    model_config = example(
        {
            "name": "obcluster",
            "obClusterId": 1,
            "type": "PRIMARY",
            "rootServers": [{"address": "10.0.0.1:2882", "role": "LEADER", "sqlPort": 2881}],
            "obVersion": "4.2.1.0",
            "proxyroCredentialId": 2,
            "proxyroPassword": "Proxyro_pw_1",
        }
    )

    name: str = Field(max_length=128)
    ob_cluster_id: int
    type: Literal["PRIMARY", "STANDBY"] = "PRIMARY"
    root_servers: list[RootServerIn] = Field(max_length=64)
    ob_version: str | None = Field(None, max_length=64)
    proxyro_credential_id: int | None = None
    proxyro_password: str | None = Field(None, max_length=1024)

    @field_validator("ob_version")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        if value is not None and not all(c.isalnum() or c in ".-_" for c in value):
            raise ValueError("obVersion may hold only letters, digits, '.', '-' and '_'")
        return value


@router.get(
    "",
    dependencies=[READ],
    response_model=Envelope[Page[ObClusterOut]],
    summary="Query the cluster list",
)
def list_clusters(
    session: SessionDep,
    page: PageRequest = Depends(page_request),
    name: str | None = Query(None, max_length=128),
    status: list[str] | None = Query(None),
    with_standby: bool = Query(True, alias="withStandby"),
) -> EnvelopeResponse:
    """The OceanBase clusters obfleet knows (imported with /api/v2/ob/clusters/import), a page at a
    time, by name and status; standby clusters unless withStandby is false."""
    stmt = service.query(name, status)
    if not with_standby:
        stmt = stmt.where(ObCluster.type == "PRIMARY")
    sortable = {"id": ObCluster.id, "name": ObCluster.name, "obClusterId": ObCluster.ob_cluster_id}
    return ok(paginate(session, stmt, page, sortable, ObCluster.id, ObClusterOut.of))


@router.post(
    "/import",
    response_model=Envelope[ObClusterOut],
    tags=["extension"],
    summary="Record an existing OceanBase cluster (extension)",
)
def import_cluster(
    body: ImportIn, ctx: CtxDep, session: SessionDep, principal: Principal = Depends(WRITE)
) -> EnvelopeResponse:
    """Record an OceanBase cluster that already runs, by its root servers, so OBProxy clusters can
    link to it. The proxyro user's password (or a credential holding it) lets the OBProxies log in;
    obfleet neither deploys nor changes the cluster."""
    if body.proxyro_password == "":
        raise bad_request("proxyroPassword must not be empty")
    cluster = service.import_cluster(
        session,
        ctx.secrets,
        name=body.name,
        ob_cluster_id=body.ob_cluster_id,
        type=body.type,
        root_servers=[service.RootServer(s.address, s.role, s.sql_port) for s in body.root_servers],
        ob_version=body.ob_version,
        proxyro_credential_id=body.proxyro_credential_id,
        proxyro_password=body.proxyro_password,
        creator=principal.username,
    )
    return ok(ObClusterOut.of(cluster))


@router.get(
    "/{cluster_id}",
    dependencies=[READ],
    response_model=Envelope[ObClusterOut],
    tags=["extension"],
    summary="Query one cluster (extension)",
)
def get_cluster(cluster_id: int, session: SessionDep) -> EnvelopeResponse:
    """One recorded OceanBase cluster with its root servers."""
    return ok(ObClusterOut.of(service.get(session, cluster_id)))


class ProxyroPatch(RequestModel):
    model_config = example({"proxyroCredentialId": 3})

    proxyro_credential_id: int = Field(
        description="An OB_CLUSTER credential of the password box: the proxyro user's password."
    )


@router.patch(
    "/{cluster_id}",
    dependencies=[Depends(WRITE)],
    response_model=Envelope[ObClusterOut],
    tags=["extension"],
    summary="Give the cluster's proxyro user another credential (extension)",
)
def update_cluster(
    cluster_id: int,
    body: ProxyroPatch,
    ctx: CtxDep,
    session: SessionDep,
) -> EnvelopeResponse:
    """Set the credential of the password box (an OB_CLUSTER one) that holds the cluster's proxyro
    password. Refused (409) while OBProxy clusters link to the cluster and the credential's
    password differs from the current one: their OBProxies hold the current password."""
    cluster = service.set_proxyro_credential(
        session, ctx.secrets, cluster_id, body.proxyro_credential_id
    )
    return ok(ObClusterOut.of(cluster))


@router.get(
    "/{cluster_id}/servers",
    dependencies=[READ],
    response_model=Envelope[Contents[ObServerOut]],
    summary="Query the servers of a cluster (its recorded root servers)",
)
def list_servers(
    cluster_id: int,
    session: SessionDep,
    region_name: str | None = Query(None, alias="regionName", max_length=128),
    idc_name: str | None = Query(None, alias="idcName", max_length=128),
) -> EnvelopeResponse:
    """The OceanBase cluster's servers as obfleet knows them: its recorded root servers. What
    obfleet cannot know of them (host id, zone, status, start and stop times) is null; a
    filter by region or IDC is refused rather than answered with a guess."""
    cluster = service.get(session, cluster_id)
    if region_name is not None or idc_name is not None:
        # An empty answer would say the region has no servers; obfleet does not know.
        raise bad_request(
            "regionName and idcName cannot filter: obfleet does not know the regions and IDCs "
            "of a cluster's servers (it records their addresses only)"
        )
    servers = [ObServerOut.of(cluster, s) for s in service.root_servers(cluster)]
    return ok(contents(servers))


@router.delete(
    "/{cluster_id}",
    dependencies=[Depends(WRITE)],
    response_model=Envelope[None],
    tags=["extension"],
    summary="Forget a cluster record (extension; the cluster itself is untouched)",
)
def delete_cluster(cluster_id: int, session: SessionDep) -> EnvelopeResponse:
    """Forget an OceanBase cluster record. Refused (409) while an OBProxy cluster links to it; the
    cluster itself is untouched."""
    service.delete(session, cluster_id)
    return ok()
