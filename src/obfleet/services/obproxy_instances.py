"""Installing OBProxy instances on hosts: a cluster create with hosts, and batchAdd.

Everything an install needs is checked when it is asked for, so a request that cannot work is
refused with nothing stored, instead of failing on a host minutes later:

* the ports (1025-65535, different), the hosts (known, each once), the package (an uploaded
  OBPROXY_INSTALL_PACKAGE; 7514 otherwise);
* the hosts are ONLINE, and no OBProxy recorded on one holds those ports or the install path
  (<the cluster's install path>/obproxy-<version>, /home/admin/... by default as the RPM lays it
  out): two clusters share a host on other ports and install paths;
* no running install or take-over task targets the same host and SQL port: its row is recorded
  only once its task runs, so the recorded rows alone do not show it (check_not_targeted;
  take-over asks the same);
* the OceanBase clusters behind the OBProxy cluster all have a proxyro credential, and the same
  password: OBProxy has a single observer_sys_password for all of them;
* CONFIG_URL mode: OBFLEET_ADVERTISE_URL is set, since it is where the OBProxies read their
  clusters from (obfleet's config server).

The task is OCP's "Install obproxy" (flows/obproxy/install.py). A cluster create runs one
parallel branch per host in one task; batchAdd answers one task per host, as OCP's sample does.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from obfleet.engine.flow import TaskSubject, submit
from obfleet.engine.targets import running_tasks_on
from obfleet.errors import ApiError, ErrorCode, bad_request
from obfleet.flows.obproxy import install
from obfleet.flows.obproxy.install import Install
from obfleet.obproxy import catalog
from obfleet.records import ob_clusters, packages, targets
from obfleet.records.obproxy import clash, get
from obfleet.security.secrets import SecretBox
from obfleet.services.users import Principal
from obfleet.store.models.hosts import Host, HostStatus
from obfleet.store.models.ob_clusters import ObCluster
from obfleet.store.models.obproxy import ObproxyCluster
from obfleet.store.models.packages import SoftwarePackage

MIN_PORT, MAX_PORT = 1025, 65535
# Only a running task holds its host and port here. A FAILED one that recorded its obproxy is in
# the way through that row (the clash check); one an operator gave up on (its cluster deleted)
# must not block the port for ever, and if retried, its own Prepare refuses a row not its own.


@dataclass(frozen=True)
class Target:
    """Where to install, as the request gives it."""

    host_ids: list[int]
    sql_port: int | None
    exporter_port: int | None
    version: str | None  # the RPM file name of an uploaded package


@dataclass(frozen=True)
class Fields:
    """How a request names the install fields, so messages name what the caller sent."""

    where: str  # "obproxyInstallParam" (create) or "" (batchAdd, top level)
    exporter_port: str  # create's page says exportPort, batchAdd's exporterPort

    def name(self, field: str) -> str:
        return f"{self.where}.{field}" if self.where else field


CREATE_FIELDS = Fields("obproxyInstallParam", "exportPort")
BATCH_ADD_FIELDS = Fields("", "exporterPort")


def check_port(value: int | None, field_name: str) -> int:
    if value is None:
        raise bad_request(f"{field_name} is required to install obproxies")
    if not MIN_PORT <= value <= MAX_PORT:
        raise bad_request(f"{field_name} {value} is outside {MIN_PORT}-{MAX_PORT}")
    return value


def check_target(session: Session, target: Target, fields: Fields, install_path: str) -> Install:
    """Ports, hosts and package of an install; the first problem is refused."""
    sql_port = check_port(target.sql_port, fields.name("sqlPort"))
    exporter_port = check_port(target.exporter_port, fields.name(fields.exporter_port))
    if sql_port == exporter_port:
        both = f"sqlPort and {fields.exporter_port} must differ"
        raise bad_request(f"{fields.where}: {both}" if fields.where else both)
    if not target.host_ids:
        raise bad_request(f"{fields.name('hostIds')}: at least one host is required")
    if len(set(target.host_ids)) != len(target.host_ids):
        raise bad_request(f"{fields.name('hostIds')} lists a host twice")
    addresses = []
    for host_id in target.host_ids:
        host = session.get(Host, host_id)
        if host is None:
            raise ApiError(ErrorCode.HOST_NOT_FOUND, host_id)
        addresses.append(host.inner_ip_address)
    if not target.version:
        raise bad_request(f"{fields.name('version')} (the OBProxy RPM file name) is required")
    package = packages.by_file_name(session, target.version, packages.OBPROXY)
    return Install(
        list(target.host_ids), sql_port, exporter_port, package, install_path, tuple(addresses)
    )


def check_proxyro(session: Session, box: SecretBox, linked: list[ObCluster]) -> None:
    """The linked clusters share one proxyro password (none linked: nothing to share, a
    CONFIG_URL cluster's obproxies get it when they are restarted after a link)."""
    found = ob_clusters.proxyro_passwords(session, box, linked)
    missing = [name for name, password in found.items() if password is None]
    if missing:
        raise bad_request(
            f"OceanBase cluster(s) {', '.join(missing)} have no proxyro credential, which "
            "OBProxy needs to read their metadata: record one first"
        )
    if len(set(found.values())) > 1:
        raise bad_request(
            f"the OceanBase clusters {', '.join(found)} have different proxyro passwords, but "
            "clusters behind one OBProxy must share it (OBProxy has one observer_sys_password)"
        )


def check_host_online(session: Session, host_id: int, *, doing: str = "installed") -> Host:
    """The host, known and ONLINE (reached, key pinned: "Prepare host" passed); 7005, 7004."""
    host = session.get(Host, host_id)
    if host is None:
        raise ApiError(ErrorCode.HOST_NOT_FOUND, host_id)
    if host.status != HostStatus.ONLINE:
        raise ApiError(
            ErrorCode.HOST_IN_USE,
            f"{host_id} ({host.inner_ip_address})",
            f"It is {host.status}; obproxies are {doing} on ONLINE hosts only.",
        )
    return host


def targeted_by(session: Session, host_id: int, sql_port: int) -> str | None:
    """The running install or take-over task that acts on the host's SQL port, as
    `task N (name, status)`, or None."""
    key = targets.obproxy_port_key(host_id, sql_port)
    found = running_tasks_on(session, targets.OBPROXY_PORT, [key])
    return f"task {found[0].label}" if found else None


def check_not_targeted(session: Session, host_id: int, sql_port: int, what: str) -> None:
    """409 when a running install or take-over task already targets the host's SQL port: two
    tasks on one OBProxy would fail each other."""
    task = targeted_by(session, host_id, sql_port)
    if task is not None:
        raise ApiError(
            ErrorCode.CONFLICT,
            f"{what}: {task} already targets port {sql_port} on host {host_id}; wait until it ends",
        )


def check_hosts_ready(session: Session, install: Install) -> None:
    """Each host ONLINE and not in the way of another recorded OBProxy, nor of an unfinished
    install or take-over task."""
    ports = (install.sql_port, install.exporter_port)
    for host_id in install.host_ids:
        check_host_online(session, host_id)
        reason = clash(session, host_id, ports, install.home)
        if reason:
            raise ApiError(ErrorCode.CONFLICT, f"cannot install on host {host_id}: {reason}")
        check_not_targeted(session, host_id, install.sql_port, f"cannot install on host {host_id}")


def check_can_install(
    session: Session,
    box: SecretBox,
    install: Install,
    *,
    work_mode: str,
    linked: list[ObCluster],
    advertise_url: str | None,
) -> None:
    """What the hosts, the OBProxy cluster and obfleet must offer for the install to work."""
    check_proxyro(session, box, linked)
    check_hosts_ready(session, install)
    if work_mode == "CONFIG_URL" and not advertise_url:
        raise bad_request(
            "installing obproxies in CONFIG_URL mode needs OBFLEET_ADVERTISE_URL, the obfleet "
            "address the OBProxies read their clusters from: set it and restart obfleet, "
            "or use RS_LIST"
        )


def check_parameters(cluster: ObproxyCluster, package: SoftwarePackage) -> None:
    """The cluster's parameters were checked against the version it was created with; the
    package to add (or upgrade to) may be another version."""
    version = package.version
    try:
        for items, startup, field in (
            (cluster.startup_parameters, True, catalog.STARTUP_FIELD),
            (cluster.parameters, False, catalog.RUNTIME_FIELD),
        ):
            pairs = [(p["name"], p["value"]) for p in items]
            catalog.validate_parameters(pairs, startup=startup, field=field, version=version)
    except catalog.ParameterError as exc:
        raise bad_request(
            f"OBProxy cluster {cluster.name} cannot run {package.file_name}: {exc}"
        ) from exc


def _submit_one(
    session: Session, cluster: ObproxyCluster, checked: Install, host_id: int, principal: Principal
) -> int:
    return submit(
        session,
        install.build(cluster, checked, host_id=host_id),
        creator=principal.username,
        creator_id=principal.user_id,
        subject=TaskSubject(host_id=host_id),
        targets=targets.new_obproxies(cluster.id, [host_id], checked.sql_port),
    )


def batch_add(
    session: Session,
    box: SecretBox,
    cluster_id: int,
    target: Target,
    principal: Principal,
    *,
    advertise_url: str | None,
) -> list[int]:
    """Submit one "Install obproxy" task per host; returns the task ids, in host order."""
    cluster = get(session, cluster_id)
    checked = check_target(session, target, BATCH_ADD_FIELDS, cluster.install_path)
    check_parameters(cluster, checked.package)
    check_can_install(
        session,
        box,
        checked,
        work_mode=cluster.work_mode,
        linked=ob_clusters.linked(session, cluster),
        advertise_url=advertise_url,
    )
    return [_submit_one(session, cluster, checked, h, principal) for h in checked.host_ids]
