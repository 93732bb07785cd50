"""OCP's OBProxy management module: clusters, their OceanBase links, parameters, instances."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import AliasChoices, Field

from obfleet.api.auth import require
from obfleet.api.deps import CtxDep, SessionDep
from obfleet.api.envelope import Contents, Envelope, EnvelopeResponse, contents, ok
from obfleet.api.paging import Page, PageRequest, fetch_page, page_request, paged
from obfleet.api.rowmemo import cluster_rows_kept
from obfleet.api.schema import RequestModel, example
from obfleet.api.schemas.obproxy import ClusterParameterOut, ObproxyClusterOut, ParameterInfoOut
from obfleet.api.schemas.tasks import StartedTaskOut
from obfleet.api.threads import run_remote
from obfleet.errors import bad_request
from obfleet.obproxy import catalog, layout
from obfleet.records.obproxy_views import CLUSTER
from obfleet.security.roles import Resource
from obfleet.services import obproxy_clusters as service
from obfleet.services import obproxy_parameters as parameters
from obfleet.services import obproxy_password
from obfleet.services.obproxy_instances import Target as InstallTarget
from obfleet.services.users import Principal

router = APIRouter(prefix="/api/v2/obproxy", tags=["obproxy"])
READ = Depends(require(Resource.OBPROXY))
WRITE = require(Resource.OBPROXY, write=True)


class ObLinkIn(RequestModel):
    cluster_name: str = Field(max_length=128)
    ob_cluster_id: int
    username: str = Field("proxyro", max_length=64)


class ParameterIn(RequestModel):
    name: str = Field(max_length=128)
    value: str = Field(max_length=4096)


class InstallParamIn(RequestModel):
    host_ids: list[int] = Field(default_factory=list, max_length=200)
    sql_port: int | None = None
    # The create page says exportPort, batchAdd and newer clients say exporterPort: take both.
    export_port: int | None = Field(
        None, validation_alias=AliasChoices("exportPort", "exporterPort", "export_port")
    )
    version: str | None = Field(None, max_length=255)


class ClusterCreateIn(RequestModel):
    model_config = example(
        {
            "name": "proxy1",
            "address": "10.0.0.100",
            "port": 2883,
            "workMode": "CONFIG_URL",
            "obLinks": [{"clusterName": "obcluster", "obClusterId": 1, "username": "proxyro"}],
            "obproxyInstallParam": {
                "hostIds": [1, 2],
                "sqlPort": 2883,
                "exportPort": 2884,
                "version": "obproxy-ce-4.2.3.0-3.el7.x86_64.rpm",
            },
            "startupParameters": [{"name": "proxy_mem_limited", "value": "2G"}],
            "parameters": [{"name": "syslog_level", "value": "WARN"}],
            "installPath": "/home/admin",
            "runUser": "admin",
            "proxysysPassword": "Proxy_Sys_88",
        }
    )

    name: str = Field(max_length=128)
    address: str | None = Field(None, max_length=255)
    port: int | None = Field(None, ge=1, le=65535)
    work_mode: Literal["CONFIG_URL", "RS_LIST"] = "CONFIG_URL"
    # Optional for CONFIG_URL (OCP's guide); an RS_LIST cluster needs its one cluster.
    ob_links: list[ObLinkIn] = Field(default_factory=list, max_length=100)
    obproxy_install_param: InstallParamIn | None = None
    startup_parameters: list[ParameterIn] = Field(default_factory=list, max_length=500)
    parameters: list[ParameterIn] = Field(default_factory=list, max_length=500)
    # Extensions: where the obproxies live (<installPath>/obproxy-<version>), who they run as,
    # and the root@proxysys password (generated, and revealable once, when not given).
    install_path: str = Field(layout.DEFAULT_INSTALL_PATH, max_length=255)
    run_user: str = Field(layout.DEFAULT_RUN_USER, max_length=64)
    proxysys_password: str | None = Field(None, max_length=128)


class ChangePasswordIn(RequestModel):
    """Extension: the new root@proxysys password of the cluster's obproxies."""

    model_config = example({"password": "New_Proxy_Sys_88"})

    password: str = Field(max_length=128)


class ClusterPatchIn(RequestModel):
    model_config = example({"address": "10.0.0.100", "port": 2883})

    address: str | None = Field(None, max_length=255)
    port: int | None = Field(None, ge=1, le=65535)


def _links(items: list[ObLinkIn]) -> list[service.LinkIn]:
    return [service.LinkIn(i.cluster_name, i.ob_cluster_id, i.username) for i in items]


def _pairs(items: list[ParameterIn]) -> list[tuple[str, str]]:
    return [(p.name, p.value) for p in items]


def _base_url(ctx: CtxDep, request: Request) -> str:
    return (ctx.settings.advertise_url or str(request.base_url)).rstrip("/")


@router.post(
    "/clusters",
    response_model=Envelope[StartedTaskOut],
    summary="Create an OBProxy cluster (answers with the Install obproxy task)",
)
def create_cluster(
    body: ClusterCreateIn, ctx: CtxDep, principal: Principal = Depends(WRITE)
) -> EnvelopeResponse:
    """Create an OBProxy cluster linked to OceanBase clusters, and with obproxyInstallParam install
    OBProxy on the given hosts. The answer is the "Install obproxy" task: watch it with
    /api/v2/tasks/instances/{id}."""
    # No request session: the service validates in a read session and commits a short write
    # transaction of its own; the answer is read after that commit, outside it.
    install = body.obproxy_install_param or InstallParamIn.model_validate({})
    request = service.ClusterIn(
        name=body.name,
        address=body.address,
        port=body.port,
        work_mode=body.work_mode,
        links=_links(body.ob_links),
        install=InstallTarget(
            install.host_ids, install.sql_port, install.export_port, install.version
        ),
        startup_parameters=_pairs(body.startup_parameters),
        parameters=_pairs(body.parameters),
        install_path=body.install_path,
        run_user=body.run_user,
        proxysys_password=body.proxysys_password,
    )
    task_id = service.create(
        ctx.db, ctx.secrets, request, principal, advertise_url=ctx.settings.advertise_url
    )
    with ctx.db.session() as session:
        return ok(StartedTaskOut.load(session, task_id))


@router.get(
    "/clusters",
    dependencies=[READ],
    response_model=Envelope[Page[ObproxyClusterOut]],
    summary="Query OBProxy clusters",
)
def list_clusters(
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    page: PageRequest = Depends(page_request),
    name: str | None = Query(None, max_length=128),
) -> EnvelopeResponse:
    """OBProxy clusters with their OBProxies and linked OceanBase clusters, a page at a time,
    optionally by name."""
    base = _base_url(ctx, request)
    sortable = {"id": CLUSTER.id, "name": CLUSTER.name, "createTime": CLUSTER.create_time}
    rows, total = fetch_page(session, service.query(name), page, sortable, CLUSTER.id)
    shown = ObproxyClusterOut.page(session, rows, base, cluster_rows_kept(ctx.db))
    return ok(paged(shown, page, total))


@router.get(
    "/clusters/{cluster_id}",
    dependencies=[READ],
    response_model=Envelope[ObproxyClusterOut],
    summary="Query details about an OBProxy cluster",
)
def get_cluster(
    cluster_id: int, request: Request, ctx: CtxDep, session: SessionDep
) -> EnvelopeResponse:
    """One OBProxy cluster: its work mode, the OceanBase clusters it serves and every OBProxy with
    its host, ports, version and status."""
    cluster = service.get(session, cluster_id)
    return ok(ObproxyClusterOut.load(session, cluster.id, _base_url(ctx, request)))


@router.patch(
    "/clusters/{cluster_id}",
    dependencies=[Depends(WRITE)],
    response_model=Envelope[ObproxyClusterOut],
    summary="Update the address and port of an OBProxy cluster",
)
def update_cluster(
    cluster_id: int, body: ClusterPatchIn, request: Request, ctx: CtxDep, session: SessionDep
) -> EnvelopeResponse:
    """Change the address and port clients use to reach the OBProxy cluster (a load balancer in
    front of it, for instance). Nothing is restarted."""
    cluster = service.update(session, cluster_id, address=body.address, port=body.port)
    return ok(ObproxyClusterOut.load(session, cluster.id, _base_url(ctx, request)))


@router.delete(
    "/clusters/{cluster_id}",
    response_model=Envelope[StartedTaskOut],
    summary="Delete an OBProxy cluster (answers with the Offline obproxy task)",
)
def delete_cluster(
    cluster_id: int, session: SessionDep, principal: Principal = Depends(WRITE)
) -> EnvelopeResponse:
    """Delete an OBProxy cluster: its OBProxies are stopped and uninstalled by the "Offline obproxy"
    task in the answer, then the cluster is forgotten."""
    task_id = service.delete(session, cluster_id, principal)
    return ok(StartedTaskOut.load(session, task_id))


@router.post(
    "/clusters/{cluster_id}/changePassword",
    response_model=Envelope[StartedTaskOut],
    tags=["extension"],
    summary="Change the root@proxysys password on every obproxy, one at a time (extension)",
)
def change_password(
    cluster_id: int,
    body: ChangePasswordIn,
    ctx: CtxDep,
    session: SessionDep,
    principal: Principal = Depends(WRITE),
) -> EnvelopeResponse:
    """Set a new root@proxysys password (OCP's password rule) on the cluster's obproxies one
    after the other, then switch the cluster's credential; a failed change rolls back to the
    old password. The only way to change that credential."""
    task_id = obproxy_password.change_password(
        session, ctx.secrets, cluster_id, body.password, principal
    )
    return ok(StartedTaskOut.load(session, task_id))


@router.post(
    "/clusters/{cluster_id}/obLinks/batchAdd",
    dependencies=[Depends(WRITE)],
    response_model=Envelope[None],
    summary="Add OceanBase clusters the OBProxy cluster can connect to",
)
def add_links(
    cluster_id: int,
    ctx: CtxDep,
    session: SessionDep,
    body: list[ObLinkIn] = Body(
        max_length=100,
        examples=[[{"clusterName": "obcluster2", "obClusterId": 2, "username": "proxyro"}]],
    ),
) -> EnvelopeResponse:
    """Let the OBProxy cluster serve more OceanBase clusters (CONFIG_URL mode: the config server
    tells the OBProxies)."""
    service.add_links(session, ctx.secrets, cluster_id, _links(body))
    return ok()


@router.delete(
    "/clusters/{cluster_id}/obLinks/{ob_cluster_name}",
    dependencies=[Depends(WRITE)],
    response_model=Envelope[None],
    summary="Remove an OceanBase cluster the OBProxy cluster connects to",
)
def remove_link(cluster_id: int, ob_cluster_name: str, session: SessionDep) -> EnvelopeResponse:
    """Stop serving an OceanBase cluster through this OBProxy cluster."""
    service.remove_link(session, cluster_id, ob_cluster_name)
    return ok()


@router.get(
    "/parameterInfo",
    dependencies=[READ],
    response_model=Envelope[Contents[ParameterInfoOut]],
    summary="Query the metadata of OBProxy parameters",
    description="Without `version`: every parameter of every OBProxy release the catalog was "
    "generated from (the union), each entry with `versions`, the releases that define it so; a "
    "parameter that changed between releases has an entry per form. With `version`: the "
    "parameters of that OBProxy version. `name` filters by exact name.",
)
def parameter_info(
    name: str | None = Query(None, max_length=128), version: str | None = Query(None, max_length=64)
) -> EnvelopeResponse:
    """What obfleet knows of OBProxy parameters: type, default, whether a change needs a restart,
    and a description; optionally one parameter, for one OBProxy version."""
    try:
        infos = catalog.catalog(version)
    except ValueError as exc:
        raise bad_request(f"version '{version}': {exc}") from exc
    if name:
        infos = [i for i in infos if i.name == name]
    return ok(contents([ParameterInfoOut.of(i, version) for i in infos]))


@router.get(
    "/clusters/{cluster_id}/parameters",
    dependencies=[READ],
    response_model=Envelope[Contents[ClusterParameterOut]],
    summary="Query the parameters of an OBProxy cluster",
    description="Each parameter set through obfleet or that an obproxy shows at another value "
    "than OBProxy's default for its version, read live from every obproxy (`show "
    "proxyconfig`); `all=true` lists every parameter of the versions the cluster runs. "
    "`valueString` is the value set through obfleet, else the most shared live value; `values` "
    "groups the obproxies by the value each shows (one that cannot be read has `value: null` "
    "and `error`); `drift` (an extension) says whether any obproxy shows another value than "
    "`valueString`. Passwords are never listed.",
)
async def cluster_parameters(
    cluster_id: int,
    request: Request,
    ctx: CtxDep,
    every: bool = Query(False, alias="all"),
) -> EnvelopeResponse:
    def read() -> list[ClusterParameterOut]:
        with ctx.db.session() as session:
            cluster = service.get(session, cluster_id)
            found = parameters.cluster_parameters(cluster, ctx.secrets, every=every)
            return [ClusterParameterOut.of(parameter) for parameter in found]

    # It waits on every OBProxy (seconds when one is down): not in a handler thread.
    return ok(contents(await run_remote(request, read)))
