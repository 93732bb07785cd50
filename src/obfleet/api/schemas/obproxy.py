"""OCP's OBProxy module: ObproxyCluster (with its obLinks, obproxies, versions and topo),
ParameterInfo and ObproxyClusterParameter."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import Field
from sqlalchemy import Row
from sqlalchemy.orm import Session

from obfleet.api.rowmemo import EncodedRows, page_rows
from obfleet.api.schema import ApiModel, OcpTime, WireRow
from obfleet.obproxy.catalog import ParameterInfo
from obfleet.obproxy.configurl import config_urls
from obfleet.records.obproxy_views import (
    LINKS_OF,
    OBPROXIES_OF,
    ClusterParts,
    cluster_row,
    cluster_rows,
)
from obfleet.services.obproxy_parameters import ClusterParameter, ValueGroup


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
    def wire(
        cls, cluster: Row[Any], parts: ClusterParts, url_of: Callable[[str], str]
    ) -> dict[str, Any]:
        """`cluster`: a row of its view columns (cluster_rows()); `parts`: its links and
        obproxies, loaded with those of the rest of its page; `url_of`: a config URL by name."""
        cluster_id, name, work_mode = _CLUSTER_KEYS(cluster)
        wire = CLUSTER_WIRE.dump(cluster)
        wire["configUrl"] = url_of(name) if work_mode == "CONFIG_URL" else None
        wire["obLinks"] = list(map(LINK_WIRE.dump, parts.links.get(cluster_id, ())))
        servers = parts.obproxies.get(cluster_id)
        if not servers:
            # Most clusters of a large page: a Counter costs more than the rest of such a one.
            wire["versions"], wire["topo"], wire["obproxies"] = [], [], []
            return wire
        versions = Counter(v for v in map(_SERVER_VERSION, servers) if v)
        idcs = Counter(i for i in map(_SERVER_IDC, servers) if i)
        wire["versions"] = [{"version": v, "count": n} for v, n in sorted(versions.items())]
        wire["topo"] = [{"idcName": i, "count": n} for i, n in sorted(idcs.items())]
        wire["obproxies"] = list(map(SERVER_WIRE.dump, servers))
        return wire

    @classmethod
    def load(cls, session: Session, cluster_id: int, base_url: str) -> dict[str, Any]:
        """One cluster as this session sees it, its own changes included."""
        session.flush()
        shown: dict[str, Any] = cls.page(session, [cluster_row(session, cluster_id)], base_url)[0]
        return shown

    @classmethod
    def page(
        cls,
        session: Session,
        rows: Sequence[Row[Any]],
        base_url: str,
        kept: EncodedRows | None = None,
    ) -> list[Any]:
        """A page of clusters' view rows, their links and obproxies read in two queries; with
        `kept`, a cluster whose values are those its kept JSON was built from is not built
        again."""
        ids = list(map(_CLUSTER_ID, rows))
        parts = ClusterParts.load(session, ids)
        url_of = config_urls(base_url)

        def build(positions: Sequence[int]) -> list[dict[str, Any]]:
            return [cls.wire(rows[position], parts, url_of) for position in positions]

        # Everything a cluster shows comes from these: its row, its parts' rows (with their
        # OceanBase clusters' and hosts' columns) and, for configUrl, the base URL.
        links, servers = parts.links, parts.obproxies
        keyed = [
            (i, (tuple(row), links.get(i), servers.get(i), base_url))
            for i, row in zip(ids, rows, strict=True)
        ]
        return page_rows(kept, session, keyed, build)


SERVER_WIRE = WireRow(ObproxyServerOut, OBPROXIES_OF.selected_columns.keys())
# A link's row (ClusterParts.links) names its columns after the tables they come from.
LINK_WIRE = WireRow(
    ObLinkOut,
    LINKS_OF.selected_columns.keys(),
    source={
        "cluster_id": "ob_cluster_id",
        "cluster_name": "name",
        "ob_cluster_id": "ob_cluster_number",
        "cluster_type": "type",
    },
)
CLUSTER_WIRE = WireRow(
    ObproxyClusterOut,
    cluster_rows().selected_columns.keys(),
    skip={"config_url", "ob_links", "versions", "topo", "obproxies"},
)
# The row's values the wire form builds on, by position (a Row's attributes cost ten times more).
_CLUSTER_KEYS = CLUSTER_WIRE.columns("id", "name", "work_mode")
_CLUSTER_ID = CLUSTER_WIRE.columns("id")
_SERVER_VERSION = SERVER_WIRE.columns("version")
_SERVER_IDC = SERVER_WIRE.columns("idc_name")


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
