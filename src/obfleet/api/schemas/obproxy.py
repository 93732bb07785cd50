"""OCP's OBProxy module: ObproxyCluster (with its obLinks, obproxies, versions and topo),
ParameterInfo and ObproxyClusterParameter."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Self

from pydantic import Field
from sqlalchemy import Row
from sqlalchemy.orm import Session

from obfleet.api.schema import ApiModel, OcpTime
from obfleet.obproxy.catalog import ParameterInfo
from obfleet.obproxy.configurl import config_url
from obfleet.records.obproxy_views import ClusterParts
from obfleet.services.obproxy_parameters import ClusterParameter, ValueGroup
from obfleet.store.models.obproxy import ObproxyCluster


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
    def of(cls, link: Row[Any]) -> ObLinkOut:
        """`link`: a row of ClusterParts.links."""
        return cls(
            cluster_id=link.ob_cluster_id,
            cluster_name=link.name,
            username=link.username,
            status=link.status,
            ob_cluster_id=link.ob_cluster_number,
            cluster_type=link.type,
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
    def of(cls, cluster: ObproxyCluster | Row[Any], parts: ClusterParts, base_url: str) -> Self:
        """`cluster`: the cluster's row (or a row of its view columns); `parts`: its links and
        obproxies, loaded with those of the rest of its page."""
        servers = parts.obproxies.get(cluster.id, [])
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
            ob_links=[ObLinkOut.of(link) for link in parts.links.get(cluster.id, [])],
            versions=[VersionCountOut(version=v, count=n) for v, n in sorted(versions.items())],
            topo=[IdcCountOut(idc_name=i, count=n) for i, n in sorted(idcs.items())],
            obproxies=[ObproxyServerOut.model_validate(s) for s in servers],
        )

    @classmethod
    def load(cls, session: Session, cluster: ObproxyCluster, base_url: str) -> Self:
        return cls.of(cluster, ClusterParts.load(session, [cluster.id]), base_url)

    @classmethod
    def of_page(cls, session: Session, rows: Sequence[Row[Any]], base_url: str) -> list[Self]:
        """A page of clusters' view rows, their links and obproxies read in two queries."""
        parts = ClusterParts.load(session, [r.id for r in rows])
        return [cls.of(r, parts, base_url) for r in rows]


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
