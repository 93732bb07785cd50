"""OCP's OBProxy module: ObproxyCluster (with its obLinks, obproxies, versions and topo),
ParameterInfo and ObproxyClusterParameter."""

from __future__ import annotations

from collections import Counter

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from obfleet.api.schema import ApiModel, OcpTime
from obfleet.obproxy.catalog import ParameterInfo
from obfleet.obproxy.configurl import config_url
from obfleet.services.obproxy_clusters import link_clusters
from obfleet.services.obproxy_parameters import ClusterParameter, ValueGroup
from obfleet.store.models.hosts import Host
from obfleet.store.models.ob_clusters import ObCluster
from obfleet.store.models.obproxy import ObproxyCluster, ObproxyLink, ObproxyServer


class ObproxyServerOut(ApiModel):
    """OCP's Obproxy: one OBProxy instance of a cluster."""

    id: int
    cluster_id: int
    host_id: int
    idc_name: str | None
    last_active_time: OcpTime | None
    parameter_version: int
    ip: str
    sql_port: int
    exporter_port: int
    version: str | None
    status: str
    operate_status: str
    architecture: str | None

    @classmethod
    def of(cls, server: ObproxyServer, idc_name: str | None) -> ObproxyServerOut:
        return cls(
            id=server.id,
            cluster_id=server.cluster_id,
            host_id=server.host_id,
            idc_name=idc_name,
            last_active_time=server.last_active_time,
            parameter_version=server.parameter_version,
            ip=server.ip,
            sql_port=server.sql_port,
            exporter_port=server.exporter_port,
            version=server.version,
            status=server.status,
            operate_status=server.operate_status,
            architecture=server.architecture,
        )


class ObLinkOut(ApiModel):
    """An OceanBase cluster the OBProxy cluster connects to."""

    cluster_id: int
    cluster_name: str
    username: str
    status: str
    connections: float = 0.0  # OCP counts live connections; obfleet does not
    ob_cluster_id: int
    cluster_type: str

    @classmethod
    def of(cls, link: ObproxyLink, ob: ObCluster) -> ObLinkOut:
        return cls(
            cluster_id=link.ob_cluster_id,
            cluster_name=ob.name,
            username=link.username,
            status=ob.status,
            ob_cluster_id=ob.ob_cluster_id,
            cluster_type=ob.type,
        )


class VersionCountOut(ApiModel):
    version: str
    count: int


class IdcCountOut(ApiModel):
    idc_name: str
    count: int


class ObproxyClusterOut(ApiModel):
    """OCP's ObproxyCluster."""

    id: int
    name: str
    parameter_version: int
    creator_id: int | None
    creator_name: str | None
    create_time: OcpTime
    update_time: OcpTime
    config_url: str | None = Field(
        description="The config server URL the obproxies read their clusters from; null for an "
        "RS_LIST cluster, whose obproxies are given the root servers instead."
    )
    address: str | None
    port: int | None
    work_mode: str
    # Extensions: the install layout and the root@proxysys credential (revealable once when
    # obfleet generated it: POST /api/v2/credentials/{id}/reveal).
    install_path: str
    run_user: str
    proxysys_credential_id: int | None
    ob_links: list[ObLinkOut]
    versions: list[VersionCountOut]
    topo: list[IdcCountOut]
    obproxies: list[ObproxyServerOut]

    @classmethod
    def of(cls, session: Session, cluster: ObproxyCluster, base_url: str) -> ObproxyClusterOut:
        obs = link_clusters(session, cluster)
        servers = _servers(session, cluster)
        versions = Counter(s.version for s in servers if s.version)
        idcs = Counter(s.idc_name for s in servers if s.idc_name)
        return cls(
            id=cluster.id,
            name=cluster.name,
            parameter_version=cluster.parameter_version,
            creator_id=cluster.creator_id,
            creator_name=cluster.creator_name,
            create_time=cluster.create_time,
            update_time=cluster.update_time,
            config_url=config_url(base_url, cluster.name)
            if cluster.work_mode == "CONFIG_URL"
            else None,
            address=cluster.address,
            port=cluster.port,
            work_mode=cluster.work_mode,
            install_path=cluster.install_path,
            run_user=cluster.run_user,
            proxysys_credential_id=cluster.proxysys_credential_id,
            ob_links=[ObLinkOut.of(link, obs[link.ob_cluster_id]) for link in cluster.links],
            versions=[VersionCountOut(version=v, count=n) for v, n in sorted(versions.items())],
            topo=[IdcCountOut(idc_name=i, count=n) for i, n in sorted(idcs.items())],
            obproxies=servers,
        )


def _servers(session: Session, cluster: ObproxyCluster) -> list[ObproxyServerOut]:
    """The cluster's obproxies, each with the IDC of its host (hosts loaded in one query)."""
    host_ids = [s.host_id for s in cluster.obproxies]
    hosts = (
        {h.id: h for h in session.scalars(select(Host).where(Host.id.in_(host_ids)))}
        if host_ids
        else {}
    )
    return [
        ObproxyServerOut.of(s, hosts[s.host_id].idc_name if s.host_id in hosts else None)
        for s in cluster.obproxies
    ]


class ParameterInfoOut(ApiModel):
    """OCP's ParameterInfo: the metadata of one OBProxy parameter, plus (an extension) the
    OBProxy releases whose config header defines it so, and what a bare number means."""

    id: int
    name: str
    version: str
    type: str
    allowed_string_values: str
    max_value: str | None
    min_value: str | None
    default_value: str
    need_restart: bool
    readonly: bool
    description: str
    explanation: str | None
    versions: list[str]
    unit: str | None

    @classmethod
    def of(cls, info: ParameterInfo, version: str | None) -> ParameterInfoOut:
        """``version`` (a String in OCP) is the OBProxy version asked for, else the first
        release the catalog knows the entry from."""
        return cls(
            id=info.id,
            name=info.name,
            version=version if version is not None else info.versions[0],
            type=info.type,
            allowed_string_values=info.allowed_string_values,
            max_value=info.max_value,
            min_value=info.min_value,
            default_value=info.default_value,
            need_restart=info.need_restart,
            readonly=info.readonly,
            description=info.description,
            explanation=info.explanation,
            versions=list(info.versions),
            unit=info.unit,
        )


class ParameterValueOut(ApiModel):
    value: str | None
    obproxies: list[str]
    # Only on an obproxy that could not be read; left out elsewhere, as OCP has no such key.
    error: str | None = Field(None, exclude_if=lambda error: error is None)

    @classmethod
    def of(cls, group: ValueGroup) -> ParameterValueOut:
        return cls(value=group.value, obproxies=group.obproxies, error=group.error)


class ClusterParameterOut(ApiModel):
    """OCP's ObproxyClusterParameter: a parameter and the values the obproxies show; `drift`
    (an extension) says whether any obproxy shows another value than `valueString`."""

    name: str
    description: str
    need_reboot: bool
    values: list[ParameterValueOut]
    value_string: str
    drift: bool

    @classmethod
    def of(cls, parameter: ClusterParameter) -> ClusterParameterOut:
        return cls(
            name=parameter.name,
            description=parameter.description,
            need_reboot=parameter.need_reboot,
            values=[ParameterValueOut.of(group) for group in parameter.values],
            value_string=parameter.value_string,
            drift=parameter.drift,
        )
