"""Records of existing OceanBase clusters: import, look up, forget."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from obfleet.errors import ApiError, ErrorCode, bad_request
from obfleet.records import credentials
from obfleet.security.secrets import SecretBox
from obfleet.store.models.ob_clusters import ObCluster
from obfleet.store.models.obproxy import ObproxyCluster, ObproxyLink
from obfleet.store.refs import referencing_tables

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,127}\Z")
HOSTNAME = re.compile(
    r"^(?=.{1,253}\Z)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z"
)


@dataclass(frozen=True)
class RootServer:
    address: str  # ip:rpcPort
    role: str
    sql_port: int

    @property
    def ip(self) -> str:
        return self.address.rpartition(":")[0]

    @property
    def rpc_port(self) -> int:
        return int(self.address.rpartition(":")[2])


def _check_host(host: str, field: str) -> None:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not HOSTNAME.match(host):
            raise bad_request(
                f"{field}: '{host}' is neither an IP address nor a host name"
            ) from None


def _check_port(port: int, field: str) -> None:
    if not 1 <= port <= 65535:
        raise bad_request(f"{field}: port {port} is outside 1-65535")


def check_root_servers(servers: list[RootServer]) -> None:
    if not servers:
        raise bad_request("rootServers: at least one root server is required")
    for i, server in enumerate(servers):
        field = f"rootServers[{i}]"
        host, sep, port = server.address.rpartition(":")
        if not sep or not port.isdigit():
            raise bad_request(f"{field}.address: '{server.address}' must be ip:rpcPort")
        _check_host(host, f"{field}.address")
        _check_port(int(port), f"{field}.address")
        _check_port(server.sql_port, f"{field}.sqlPort")
    if sum(s.role == "LEADER" for s in servers) > 1:
        raise bad_request("rootServers: only one root server can be the LEADER")
    if len({s.address for s in servers}) != len(servers):
        raise bad_request("rootServers: an address is listed twice")


def _check_unique(session: Session, name: str, ob_cluster_id: int) -> None:
    clash = session.scalars(
        select(ObCluster).where(
            or_(ObCluster.name == name, ObCluster.ob_cluster_id == ob_cluster_id)
        )
    ).first()
    if clash is None:
        return
    if clash.name == name:
        raise ApiError(ErrorCode.OB_CLUSTER_EXISTS, f"A cluster named {name} is already recorded.")
    raise ApiError(
        ErrorCode.OB_CLUSTER_EXISTS,
        f"A cluster with obClusterId {ob_cluster_id} is already recorded ({clash.name}).",
    )


def import_cluster(
    session: Session,
    box: SecretBox,
    *,
    name: str,
    ob_cluster_id: int,
    type: str,
    root_servers: list[RootServer],
    ob_version: str | None,
    proxyro_credential_id: int | None,
    proxyro_password: str | None,
    creator: str,
) -> ObCluster:
    if not NAME.match(name):
        raise bad_request(
            f"name '{name}' must start with a letter and use only letters, digits "
            "and underscores (at most 128 characters)"
        )
    if ob_cluster_id <= 0:
        raise bad_request("obClusterId must be a positive integer")
    if proxyro_credential_id is not None and proxyro_password is not None:
        raise bad_request("give proxyroCredentialId or proxyroPassword, not both")
    check_root_servers(root_servers)
    _check_unique(session, name, ob_cluster_id)
    if proxyro_credential_id is not None:
        credentials.get(session, proxyro_credential_id, target_type="OB_CLUSTER")
    elif proxyro_password is not None:
        proxyro_credential_id = credentials.create(
            session,
            box,
            name=f"proxyro_{name}",
            target_type="OB_CLUSTER",
            auth_type="PASSWORD",
            username="proxyro",
            secret=proxyro_password,
            description=f"proxyro of OceanBase cluster {name}",
        ).id
    cluster = ObCluster(
        name=name,
        ob_cluster_id=ob_cluster_id,
        type=type,
        ob_version=ob_version,
        root_servers=[
            {"address": s.address, "role": s.role, "sqlPort": s.sql_port} for s in root_servers
        ],
        proxyro_credential_id=proxyro_credential_id,
        creator=creator,
    )
    session.add(cluster)
    session.flush()
    return cluster


def set_proxyro_credential(
    session: Session, box: SecretBox, cluster_id: int, credential_id: int
) -> ObCluster:
    """Give the cluster's proxyro user another OB_CLUSTER credential from the password box.
    While OBProxy clusters link to it, their OBProxies hold the current password (and the
    clusters behind one OBProxy share it): only a credential with the same password is taken
    then (409)."""
    cluster = get(session, cluster_id)
    credentials.get(session, credential_id, target_type="OB_CLUSTER")
    users = linking_clusters(session, cluster)
    if users and cluster.proxyro_credential_id != credential_id:
        current = proxyro_passwords(session, box, [cluster])[cluster.name]
        if credentials.reveal(session, box, credential_id).secret != current:
            raise ApiError(
                ErrorCode.OB_CLUSTER_IN_USE,
                cluster.name,
                f"OBProxy clusters {', '.join(users)} link to it and their OBProxies use its "
                "current proxyro password; a credential with another password can be given "
                "once they are unlinked",
            )
    cluster.proxyro_credential_id = credential_id
    session.flush()
    return cluster


def linking_clusters(session: Session, cluster: ObCluster) -> list[str]:
    """The names of the OBProxy clusters that link to `cluster`."""
    return list(
        session.scalars(
            select(ObproxyCluster.name)
            .join(ObproxyLink, ObproxyLink.obproxy_cluster_id == ObproxyCluster.id)
            .where(ObproxyLink.ob_cluster_id == cluster.id)
            .order_by(ObproxyCluster.name)
        )
    )


def get(session: Session, cluster_id: int) -> ObCluster:
    cluster = session.get(ObCluster, cluster_id)
    if cluster is None:
        raise ApiError(ErrorCode.OB_CLUSTER_NOT_FOUND, cluster_id)
    return cluster


def by_name(session: Session, name: str) -> ObCluster:
    cluster = session.scalar(select(ObCluster).where(ObCluster.name == name))
    if cluster is None:
        raise ApiError(ErrorCode.OB_CLUSTER_NAME_NOT_FOUND, name)
    return cluster


def root_servers(cluster: ObCluster) -> list[RootServer]:
    return [RootServer(s["address"], s["role"], int(s["sqlPort"])) for s in cluster.root_servers]


def query(name: str | None, statuses: list[str] | None) -> Select[Any]:
    stmt = select(ObCluster)
    if name:
        stmt = stmt.where(ObCluster.name.contains(name, autoescape=True))
    if statuses:
        stmt = stmt.where(ObCluster.status.in_(statuses))
    return stmt


def delete(session: Session, cluster_id: int) -> None:
    cluster = get(session, cluster_id)
    users = [t for t in referencing_tables(session, ObCluster.__tablename__, cluster_id)]
    if users:
        raise ApiError(
            ErrorCode.OB_CLUSTER_IN_USE,
            cluster.name,
            f"OBProxy links still use it ({', '.join(users)}); remove them first",
        )
    session.delete(cluster)


def root_server_dicts(cluster: ObCluster) -> list[dict[str, Any]]:
    """rootServers as OCP's cluster list shows them (the sample spells sql_port)."""
    return [
        {"address": s.address, "role": s.role, "sql_port": s.sql_port}
        for s in root_servers(cluster)
    ]


def linked(session: Session, cluster: ObproxyCluster) -> list[ObCluster]:
    """The OceanBase clusters an OBProxy cluster links to, in link order."""
    ids = [link.ob_cluster_id for link in cluster.links]
    found = {c.id: c for c in session.scalars(select(ObCluster).where(ObCluster.id.in_(ids)))}
    return [found[i] for i in ids if i in found]


def proxyro_passwords(
    session: Session, box: SecretBox, clusters: Iterable[ObCluster]
) -> dict[str, str | None]:
    """Each OceanBase cluster's proxyro password by cluster name (None: no credential)."""
    return {
        c.name: None
        if c.proxyro_credential_id is None
        else credentials.reveal(session, box, c.proxyro_credential_id).secret
        for c in clusters
    }
