"""What the config server knows about OceanBase clusters: their root servers (ObRootServiceInfo).

Two sources: obfleet's own cluster records, and the registrations posted to `/services`. What
an operator recorded through the API wins: a registration under a recorded cluster's name is
never answered (and none is accepted, obfleet.configserver.registrations), so no one posting to
the open config server can change the servers OBProxies are sent to for a recorded cluster.
Registrations are kept per (cluster name, cluster id): a primary and its standbys share a name
and differ in id, which is why one name can answer several clusters.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from obfleet.configserver.errors import internal
from obfleet.records.ob_clusters import root_server_dicts
from obfleet.store.models.configserver import RootServiceRegistration
from obfleet.store.models.ob_clusters import ObCluster

# strconv.ParseInt / Atoi: an optional sign and decimal digits, within int64.
INTEGER = re.compile(r"[+-]?[0-9]{1,19}")
INT64 = range(-(2**63), 2**63)


@dataclass(frozen=True)
class RootServiceInfo:
    cluster: str
    cluster_id: int
    type: str
    rs_list: list[dict[str, Any]]
    readonly_rs_list: list[dict[str, Any]]
    timestamp: int  # microseconds

    def to_json(self) -> dict[str, Any]:
        """ob-configserver's object (`model/ob_rootservice_info.go`), ObRegion* filled in."""
        return {
            "ObClusterId": self.cluster_id,
            "ObRegionId": self.cluster_id,
            "ObCluster": self.cluster,
            "ObRegion": self.cluster,
            "ReadonlyRsList": self.readonly_rs_list,
            "RsList": self.rs_list,
            "Type": self.type,
            "timestamp": self.timestamp,
        }

    def content(self) -> dict[str, Any]:
        """Everything but the timestamp: an observer re-registering the same servers must not
        look like a change to the OBProxies polling the config version."""
        answer = self.to_json()
        del answer["timestamp"]
        return answer


def from_record(cluster: ObCluster) -> RootServiceInfo:
    return RootServiceInfo(
        cluster=cluster.name,
        cluster_id=cluster.ob_cluster_id,
        type=cluster.type,
        rs_list=root_server_dicts(cluster),
        readonly_rs_list=[],
        timestamp=int(cluster.update_time.timestamp() * 1_000_000),
    )


def from_registration(row: RootServiceRegistration) -> RootServiceInfo:
    return RootServiceInfo(
        cluster=row.name,
        cluster_id=row.ob_cluster_id,
        type=row.type,
        rs_list=row.rs_list,
        readonly_rs_list=row.readonly_rs_list,
        timestamp=row.timestamp,
    )


def primary(infos: list[RootServiceInfo]) -> RootServiceInfo:
    """ob-configserver's pick among clusters sharing a name: a PRIMARY first, then the newest.
    max() keeps the first of equals, as its loop does."""
    return max(infos, key=lambda info: (info.type == "PRIMARY", info.timestamp))


def known(
    session: Session, names: Collection[str] | None = None, cluster_id: int = 0
) -> dict[str, list[RootServiceInfo]]:
    """Every cluster under each name (all names when `names` is None), ordered by name and id;
    `cluster_id` other than 0 keeps only that id."""
    records = select(ObCluster)
    registered = select(RootServiceRegistration).where(
        RootServiceRegistration.name.not_in(select(ObCluster.name))
    )
    if names is not None:
        records = records.where(ObCluster.name.in_(names))
        registered = registered.where(RootServiceRegistration.name.in_(names))
    if cluster_id:
        records = records.where(ObCluster.ob_cluster_id == cluster_id)
        registered = registered.where(RootServiceRegistration.ob_cluster_id == cluster_id)
    merged = {(c.name, c.ob_cluster_id): from_record(c) for c in session.scalars(records)}
    for row in session.scalars(registered):
        merged[(row.name, row.ob_cluster_id)] = from_registration(row)
    by_name: dict[str, list[RootServiceInfo]] = {}
    for key in sorted(merged):
        by_name.setdefault(key[0], []).append(merged[key])
    return by_name


@dataclass(frozen=True)
class ClusterQuery:
    """The query parameters of the ObRootServiceInfo-style actions (`getCommonParam`)."""

    name: str
    cluster_id: int  # 0: any cluster of that name
    version: int

    @property
    def wants_list(self) -> bool:
        """version 2 without a cluster id answers every cluster of the name, else the primary."""
        return self.version >= 2 and self.cluster_id <= 0


def _integer(text: str, what: str, doing: str) -> int:
    if INTEGER.fullmatch(text) and int(text) in INT64:
        return int(text)
    raise internal(f"{doing}: parse {what}: {text[:40]!r} is not an integer")


def cluster_query(params: Mapping[str, str], doing: str) -> ClusterQuery:
    """ObRegion / ObRegionId, when present, override ObCluster / ObClusterId (old names win,
    as in ob-configserver). `doing` prefixes the error, as its errors.Wrap does."""
    name = params["ObRegion"] if "ObRegion" in params else params.get("ObCluster", "")
    if not name:
        raise internal(f"{doing}: no obcluster or obregion")
    id_text = params["ObRegionId"] if "ObRegionId" in params else params.get("ObClusterId", "")
    cluster_id = _integer(id_text, "ob cluster id", doing) if id_text else 0
    version_text = params.get("version")
    version = 0 if version_text is None else _integer(version_text, "version", doing)
    return ClusterQuery(name, cluster_id, version)
