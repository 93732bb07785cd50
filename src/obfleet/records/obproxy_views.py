"""What an OBProxy cluster's view shows beside its own row, read for a whole page at once.

A page of clusters costs two queries here however many clusters it holds: their links (each
with its OceanBase cluster's columns) and their obproxies (each with its host's IDC). Rows are
plain column tuples, not ORM objects, read through the tables' Core columns, so the ORM does not
even compile the statements: a view only reads them, and a page of 2,000 clusters would
otherwise spend most of its time building and tracking objects.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Select, select
from sqlalchemy.orm import Session

from obfleet.store.models.hosts import Host
from obfleet.store.models.ob_clusters import ObCluster
from obfleet.store.models.obproxy import ObproxyCluster, ObproxyLink, ObproxyServer

CLUSTER = ObproxyCluster.__table__.c
LINK = ObproxyLink.__table__.c
OB = ObCluster.__table__.c
SERVER = ObproxyServer.__table__.c
HOST = Host.__table__.c
# The cluster's own columns a view shows (not its parameters: those have their own page).
CLUSTER_COLUMNS = (
    CLUSTER.id,
    CLUSTER.name,
    CLUSTER.parameter_version,
    CLUSTER.creator_id,
    CLUSTER.creator_name,
    CLUSTER.create_time,
    CLUSTER.update_time,
    CLUSTER.address,
    CLUSTER.port,
    CLUSTER.work_mode,
)


# Any selected row: a statement of many columns, of whatever types.
Rows = Select[*tuple[Any, ...]]


def cluster_rows() -> Rows:
    """The clusters' view columns, to filter, order and page."""
    return select(*CLUSTER_COLUMNS)


@dataclass(frozen=True)
class ClusterParts:
    """The links and obproxies of some clusters, each list in id order, by cluster id."""

    links: dict[int, list[Row[Any]]]
    obproxies: dict[int, list[Row[Any]]]

    @classmethod
    def load(cls, session: Session, cluster_ids: Sequence[int]) -> ClusterParts:
        if not cluster_ids:
            return cls({}, {})
        links = select(
            ObproxyLink.obproxy_cluster_id,
            ObproxyLink.ob_cluster_id,
            ObproxyLink.username,
            ObCluster.name,
            ObCluster.status,
            ObCluster.ob_cluster_id.label("ob_cluster_number"),
            ObCluster.type,
        ).join(ObCluster, ObCluster.id == ObproxyLink.ob_cluster_id)
        servers = select(
            ObproxyServer.cluster_id,
            ObproxyServer.id,
            ObproxyServer.host_id,
            ObproxyServer.last_active_time,
            ObproxyServer.parameter_version,
            ObproxyServer.ip,
            ObproxyServer.sql_port,
            ObproxyServer.exporter_port,
            ObproxyServer.version,
            ObproxyServer.status,
            ObproxyServer.operate_status,
            ObproxyServer.architecture,
            Host.idc_name,
        ).outerjoin(Host, Host.id == ObproxyServer.host_id)
        return cls(
            _grouped(
                session,
                links.where(ObproxyLink.obproxy_cluster_id.in_(cluster_ids)).order_by(
                    ObproxyLink.id
                ),
            ),
            _grouped(
                session,
                servers.where(ObproxyServer.cluster_id.in_(cluster_ids)).order_by(ObproxyServer.id),
            ),
        )


def _grouped(session: Session, stmt: Rows) -> dict[int, list[Row[Any]]]:
    """The rows of `stmt` by their first column (the cluster id)."""
    grouped: dict[int, list[Row[Any]]] = defaultdict(list)
    for row in session.execute(stmt):
        grouped[row[0]].append(row)
    return grouped
