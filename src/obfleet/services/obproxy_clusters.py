"""OBProxy clusters: what creating, changing and deleting one means, and the tasks it starts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from obfleet.engine.flow import submit
from obfleet.engine.targets import running_tasks_on
from obfleet.errors import ApiError, ErrorCode, bad_request
from obfleet.flows.obproxy import install as obproxy_install
from obfleet.flows.obproxy.install import Install
from obfleet.logs import note
from obfleet.obproxy import catalog, layout
from obfleet.records import credentials, targets
from obfleet.records.obproxy import get
from obfleet.records.obproxy_views import CLUSTER, cluster_rows
from obfleet.security.passwords import generate_password
from obfleet.security.secrets import SecretBox
from obfleet.services import obproxy_instances as instances
from obfleet.services import obproxy_offline
from obfleet.services.hosts import normalize_address
from obfleet.services.obproxy_password import check_proxysys_password
from obfleet.services.users import Principal
from obfleet.store.db import Database
from obfleet.store.models.ob_clusters import ObCluster
from obfleet.store.models.obproxy import ObproxyCluster, ObproxyLink

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,127}\Z")
USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}\Z")
WORK_MODES = ("CONFIG_URL", "RS_LIST")

__all__ = ["get"]

# Parameters obfleet sets itself on every OBProxy's command line, and where they come from.
MANAGED = {
    "listen_port": "it is obproxyInstallParam.sqlPort",
    "prometheus_listen_port": "it is obproxyInstallParam.exportPort",
    "app_name": "it is the OBProxy cluster's name",
    "rootservice_list": "it comes from the linked cluster's root servers",
    "rootservice_cluster_name": "it is the linked cluster's name",
    "obproxy_config_server_url": "it is the cluster's configUrl",
}
# Passwords: proxyro comes from the linked clusters' credentials, root@proxysys is generated per
# cluster and kept in the password box.
SECRET_RULE = "passwords come from the password box"


@dataclass(frozen=True)
class LinkIn:
    cluster_name: str
    ob_cluster_id: int
    username: str = "proxyro"


@dataclass(frozen=True)
class ClusterIn:
    name: str
    address: str | None
    port: int | None
    work_mode: str
    links: list[LinkIn]
    install: instances.Target
    startup_parameters: list[tuple[str, str]]
    parameters: list[tuple[str, str]]
    # Extensions: where its obproxies live and who they run as (obproxy/layout.py), and the
    # root@proxysys password (generated when not given).
    install_path: str = layout.DEFAULT_INSTALL_PATH
    run_user: str = layout.DEFAULT_RUN_USER
    proxysys_password: str | None = field(default=None, repr=False)


# --- validation ---------------------------------------------------------------------------


def _check_name(session: Session, name: str) -> None:
    if not NAME.match(name):
        raise bad_request(
            f"name '{name}' must start with a letter and use only letters, digits "
            "and underscores (at most 128 characters)"
        )
    if session.scalar(select(ObproxyCluster.id).where(ObproxyCluster.name == name)) is not None:
        raise ApiError(ErrorCode.OBPROXY_CLUSTER_EXISTS, name)


def resolve_links(session: Session, links: list[LinkIn], field_name: str) -> list[ObCluster]:
    """The OceanBase clusters the links name; obClusterId and clusterName must agree."""
    found: list[ObCluster] = []
    for i, link in enumerate(links):
        where = f"{field_name}[{i}]"
        if not USERNAME.match(link.username):
            raise bad_request(f"{where}.username '{link.username}' is not a valid user name")
        cluster = session.scalar(
            select(ObCluster).where(ObCluster.ob_cluster_id == link.ob_cluster_id)
        )
        if cluster is None:
            raise ApiError(
                ErrorCode.OB_CLUSTER_NOT_FOUND,
                link.ob_cluster_id,
                message=f"{where}: no OceanBase cluster with obClusterId "
                f"{link.ob_cluster_id} is recorded; import it first",
            )
        if cluster.name != link.cluster_name:
            raise bad_request(
                f"{where}: obClusterId {link.ob_cluster_id} is cluster "
                f"'{cluster.name}', not '{link.cluster_name}'"
            )
        if cluster in found:
            raise bad_request(f"{where}: cluster '{cluster.name}' is listed twice")
        found.append(cluster)
    return found


def check_address(address: str | None) -> str | None:
    """The cluster's access address: a host name or an IP address (canonical form, as hosts
    are recorded), or None for none (an empty string clears it)."""
    if address is None or not address.strip():
        return None
    return normalize_address(address, "address")


def check_layout(install_path: str, run_user: str) -> None:
    """installPath and runUser as obproxy/layout.py takes them."""
    for name, check, value in (
        ("installPath", layout.check_install_path, install_path),
        ("runUser", layout.check_run_user, run_user),
    ):
        try:
            check(value)
        except layout.LayoutError as exc:
            raise bad_request(f"{name}: {exc}") from None


def _check_port(port: int | None) -> None:
    if port is not None and not 1 <= port <= 65535:
        raise bad_request(f"port {port} is outside 1-65535")


def _check_work_mode(work_mode: str, links: list[LinkIn]) -> None:
    """CONFIG_URL clusters may start with no OceanBase cluster (OCP's guide: the connectable
    cluster "is optional when Startup Method is ConfigUrl"): their obproxies read the list from
    obfleet's config server, empty until one is linked. RS_LIST obproxies start from the root
    servers of the one cluster they connect to."""
    if work_mode not in WORK_MODES:
        raise bad_request(f"workMode '{work_mode}' must be CONFIG_URL or RS_LIST")
    if work_mode == "RS_LIST" and not links:
        raise bad_request(
            "obLinks: an RS_LIST cluster needs the OceanBase cluster it connects to, whose root "
            "servers its obproxies start with (only a CONFIG_URL cluster can start with none)"
        )
    if work_mode == "RS_LIST" and len(links) != 1:
        raise bad_request(
            "obLinks: an RS_LIST cluster connects to exactly one OceanBase "
            f"cluster, {len(links)} given (use CONFIG_URL for several)"
        )


def check_parameters(
    startup: list[tuple[str, str]], runtime: list[tuple[str, str]], version: str | None
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    try:
        startup = catalog.validate_parameters(
            startup, startup=True, field="startupParameters", version=version
        )
        runtime = catalog.validate_parameters(
            runtime, startup=False, field="parameters", version=version
        )
    except catalog.ParameterError as exc:
        raise bad_request(str(exc)) from exc
    refuse_managed([name for name, _ in startup + runtime], version)
    return startup, runtime


def refuse_managed(names: list[str], version: str | None) -> None:
    """400 for a parameter obfleet sets itself (a port, a name, a password)."""
    for name in names:
        info = catalog.get(name, version)
        if name in MANAGED or (info is not None and info.secret):
            raise bad_request(
                f"'{name}' is managed by obfleet and cannot be given as a "
                f"parameter: {MANAGED.get(name, SECRET_RULE)}"
            )


# --- operations ---------------------------------------------------------------------------


def _record(
    session: Session,
    box: SecretBox,
    request: ClusterIn,
    linked: list[ObCluster],
    principal: Principal,
    startup: list[tuple[str, str]],
    runtime: list[tuple[str, str]],
) -> ObproxyCluster:
    proxysys = credentials.create(
        session,
        box,
        name=f"proxysys_{request.name}",
        target_type="OBPROXY",
        auth_type="PASSWORD",
        username="root@proxysys",
        secret=request.proxysys_password or generate_password(),
        description=f"root@proxysys of OBProxy cluster {request.name}",
    )
    # A generated password can be revealed once; a given one is known to whoever gave it.
    proxysys.revealable = request.proxysys_password is None
    cluster = ObproxyCluster(
        name=request.name,
        address=request.address,
        port=request.port,
        work_mode=request.work_mode,
        install_path=request.install_path,
        run_user=request.run_user,
        proxysys_credential_id=proxysys.id,
        startup_parameters=[{"name": n, "value": v} for n, v in startup],
        parameters=[{"name": n, "value": v} for n, v in runtime],
        creator_id=principal.user_id,
        creator_name=principal.username,
        links=[
            ObproxyLink(ob_cluster_id=c.id, username=link.username)
            for c, link in zip(linked, request.links, strict=True)
        ],
    )
    session.add(cluster)
    session.flush()
    return cluster


def _install(session: Session, request: ClusterIn) -> Install | None:
    if not request.install.host_ids:
        return None
    return instances.check_target(
        session, request.install, instances.CREATE_FIELDS, request.install_path
    )


@dataclass(frozen=True)
class _Checked:
    """A create's request as validation left it: what the write phase records."""

    request: ClusterIn  # its address in canonical form
    linked: list[ObCluster]  # detached: only their ids are used
    install: Install | None
    startup: list[tuple[str, str]]
    runtime: list[tuple[str, str]]


def _validate(
    session: Session, box: SecretBox, request: ClusterIn, advertise_url: str | None
) -> _Checked:
    """Every check of a create, in the order its errors are answered: reads only."""
    _check_name(session, request.name)
    request = replace(request, address=check_address(request.address))
    _check_port(request.port)
    _check_work_mode(request.work_mode, request.links)
    check_layout(request.install_path, request.run_user)
    if request.proxysys_password is not None:
        check_proxysys_password(request.proxysys_password, "proxysysPassword")
    linked = resolve_links(session, request.links, "obLinks")
    install = _install(session, request)
    version = install.package.version if install else None
    startup, runtime = check_parameters(request.startup_parameters, request.parameters, version)
    if install is not None:
        instances.check_can_install(
            session,
            box,
            install,
            work_mode=request.work_mode,
            linked=linked,
            advertise_url=advertise_url,
        )
    return _Checked(request, linked, install, startup, runtime)


def _write(session: Session, box: SecretBox, checked: _Checked, principal: Principal) -> int:
    """Record the checked cluster and submit its task. The name's uniqueness is the database's
    (a unique column); the hosts are checked again here, where installs on them take turns."""
    if checked.install is not None:
        instances.check_hosts_ready(session, checked.install)
    request, install = checked.request, checked.install
    cluster = _record(
        session, box, request, checked.linked, principal, checked.startup, checked.runtime
    )
    note("objectIds", cluster.id)  # the request's audit record names the cluster it made
    acts_on = (
        targets.new_obproxies(cluster.id, install.host_ids, install.sql_port)
        if install
        else [targets.obproxy_cluster(cluster.id)]
    )
    return submit(
        session,
        obproxy_install.build(cluster, install),
        creator=principal.username,
        creator_id=principal.user_id,
        targets=acts_on,
    )


def create(
    db: Database,
    box: SecretBox,
    request: ClusterIn,
    principal: Principal,
    *,
    advertise_url: str | None = None,
) -> int:
    """Record the cluster and submit its "Install obproxy" task; returns the task id, committed.

    `advertise_url` is OBFLEET_ADVERTISE_URL: installing in CONFIG_URL mode needs it.

    Validation reads in a read session, before the write transaction: every other writer
    waits for that one (on SQLite, for the whole file), so it holds only the inserts. What
    changed in between (a cluster of the same name made, a linked OceanBase cluster deleted)
    fails the write, a constraint or a check; the create is then validated again, so that it
    gets the same answer as if it had come a moment later."""
    with db.session() as session:
        checked = _validate(session, box, request, advertise_url)
    try:
        with db.transaction() as session:
            return _write(session, box, checked, principal)
    except (ApiError, IntegrityError):
        with db.session() as session:
            _validate(session, box, request, advertise_url)
        raise


def update(
    session: Session, cluster_id: int, *, address: str | None, port: int | None
) -> ObproxyCluster:
    """PATCH: a given address (an empty one clears it) or port replaces the recorded one."""
    cluster = get(session, cluster_id)
    _check_port(port)
    if address is not None:
        cluster.address = check_address(address)
    if port is not None:
        cluster.port = port
    session.flush()
    return cluster


def delete(session: Session, cluster_id: int, principal: Principal) -> int:
    """Submit "Offline obproxy" for the whole cluster; returns the task id. A cluster with
    obproxies gets the full task (stop, uninstall and forget each, then the cluster); an empty
    one only Start node -> Finish node, as OCP's sample.

    Refused (4007) while a task of the cluster runs: deleting it under its running Install
    task would leave that task acting on a cluster that is gone. After a FAILED install, the
    delete is how an operator gives up on it (its leftovers are forgotten, hosts left alone)."""
    cluster = get(session, cluster_id)
    _refuse_running_tasks(session, cluster)
    return obproxy_offline.offline_cluster(session, cluster, principal)


def _refuse_running_tasks(session: Session, cluster: ObproxyCluster) -> None:
    """4007 while a task acting on the cluster (every OBProxy task names its cluster) runs."""
    pending = [
        task.label for task in running_tasks_on(session, targets.OBPROXY_CLUSTER, [cluster.id])
    ]
    if pending:
        raise ApiError(
            ErrorCode.TASK_STATE_INVALID,
            message=(
                f"OBProxy cluster {cluster.name} cannot be deleted while its tasks run: "
                f"{', '.join(pending)}. Let them end (or cancel them) first."
            ),
        )


def add_links(session: Session, box: SecretBox, cluster_id: int, links: list[LinkIn]) -> None:
    """Link more OceanBase clusters: CONFIG_URL clusters only. Once the cluster has obproxies,
    the whole new set of linked clusters must share one proxyro password (their one
    observer_sys_password), as an install requires; a cluster without any is checked when
    obproxies are added, as a create without hosts is."""
    cluster = get(session, cluster_id)
    if cluster.work_mode == "RS_LIST":
        raise bad_request(
            f"OBProxy cluster {cluster.name} works in RS_LIST mode and connects to exactly one "
            "OceanBase cluster; only CONFIG_URL clusters can add more"
        )
    if not links:
        raise bad_request("the body must list at least one ObLink")
    linked = resolve_links(session, links, "obLinks")
    existing = link_clusters(session, cluster)
    for ob in linked:
        if ob.id in existing:
            raise ApiError(
                ErrorCode.CONFLICT, f"OBProxy cluster {cluster.name} already connects to {ob.name}"
            )
    ordered = [existing[lk.ob_cluster_id] for lk in cluster.links if lk.ob_cluster_id in existing]
    if cluster.obproxies:
        instances.check_proxyro(session, box, ordered + linked)
    for ob, link in zip(linked, links, strict=True):
        cluster.links.append(ObproxyLink(ob_cluster_id=ob.id, username=link.username))
    session.flush()


def remove_link(session: Session, cluster_id: int, ob_cluster_name: str) -> None:
    cluster = get(session, cluster_id)
    names = link_clusters(session, cluster)
    link = next(
        (lk for lk in cluster.links if names[lk.ob_cluster_id].name == ob_cluster_name), None
    )
    if link is None:
        raise ApiError(
            ErrorCode.OB_CLUSTER_NAME_NOT_FOUND,
            ob_cluster_name,
            message=(
                f"OBProxy cluster {cluster.name} does not connect to a cluster named "
                f"{ob_cluster_name}"
            ),
        )
    if cluster.work_mode == "RS_LIST":
        raise bad_request(
            f"OBProxy cluster {cluster.name} works in RS_LIST mode: its only OceanBase cluster "
            "cannot be removed"
        )
    if len(cluster.links) == 1:
        raise bad_request(
            f"{ob_cluster_name} is the only OceanBase cluster OBProxy cluster {cluster.name} "
            "connects to, and it must connect to at least one: link another first"
        )
    cluster.links.remove(link)
    session.flush()


def query(name: str | None) -> Select[Any]:
    """The clusters' view rows (obproxy_views.CLUSTER_COLUMNS), by name."""
    stmt = cluster_rows()
    if name:
        stmt = stmt.where(CLUSTER.name.contains(name, autoescape=True))
    return stmt


def link_clusters(session: Session, cluster: ObproxyCluster) -> dict[int, ObCluster]:
    ids = [link.ob_cluster_id for link in cluster.links]
    found = session.scalars(select(ObCluster).where(ObCluster.id.in_(ids))).all() if ids else []
    return {c.id: c for c in found}
