"""What an OBProxy cluster's view shows beside its own row, read for a whole page at once.

A page of clusters costs two queries here however many clusters it holds: their links (each
with its OceanBase cluster's columns) and their obproxies (each with its host's IDC). Rows are
plain column tuples, not ORM objects, read through the tables' Core columns, so the ORM does not
even compile the statements: a view only reads them, and a page of 2,000 clusters would
otherwise spend most of its time building and tracking objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Select, select
from sqlalchemy.orm import Session

from obfleet.store.base import as_stored
from obfleet.store.models.hosts import Host
from obfleet.store.models.ob_clusters import ObCluster
from obfleet.store.models.obproxy import ObproxyCluster, ObproxyLink, ObproxyServer
from obfleet.store.rows import RowsOfIds, Values, grouped

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
    # Times as stored: a view only shows them (timefmt.iso), and SQLAlchemy's processing of
    # each into an aware datetime cost more than the rest of reading the row.
    as_stored(CLUSTER.create_time),
    as_stored(CLUSTER.update_time),
    CLUSTER.address,
    CLUSTER.port,
    CLUSTER.work_mode,
    CLUSTER.install_path,
    CLUSTER.run_user,
    CLUSTER.proxysys_credential_id,
)


# Any selected row: a statement of many columns, of whatever types.
Rows = Select[*tuple[Any, ...]]


def cluster_rows() -> Rows:
    """The clusters' view columns, to filter, order and page."""
    return select(*CLUSTER_COLUMNS)


def cluster_row(session: Session, cluster_id: int) -> Row[Any]:
    """One cluster's view columns (it must exist)."""
    return session.execute(cluster_rows().where(CLUSTER.id == cluster_id)).one()


@dataclass(frozen=True)
class ClusterParts:
    """The links and obproxies of some clusters, each list in id order, by cluster id."""

    links: dict[int, list[Values]]
    obproxies: dict[int, list[Values]]

    @classmethod
    def load(cls, session: Session, cluster_ids: Sequence[int]) -> ClusterParts:
        """Those of `cluster_ids` (and maybe of others: pick by cluster id)."""
        if not cluster_ids:
            return cls({}, {})
        return cls(
            grouped(LINKS_OF.rows(session, cluster_ids)),
            grouped(OBPROXIES_OF.rows(session, cluster_ids)),
        )


# Both made once: building a statement anew per request cost as much as running it.
LINKS_OF = RowsOfIds(
    select(
        LINK.obproxy_cluster_id,
        LINK.ob_cluster_id,
        LINK.username,
        OB.name,
        OB.status,
        OB.ob_cluster_id.label("ob_cluster_number"),
        OB.type,
    )
    .join_from(ObproxyLink.__table__, ObCluster.__table__, OB.id == LINK.ob_cluster_id)
    .order_by(LINK.id),
    LINK.obproxy_cluster_id,
)
OBPROXIES_OF = RowsOfIds(
    select(
        SERVER.cluster_id,
        SERVER.id,
        SERVER.host_id,
        as_stored(SERVER.last_active_time),
        SERVER.parameter_version,
        SERVER.ip,
        SERVER.sql_port,
        SERVER.exporter_port,
        SERVER.version,
        SERVER.status,
        SERVER.operate_status,
        SERVER.architecture,
        HOST.idc_name,
    )
    .outerjoin_from(ObproxyServer.__table__, Host.__table__, HOST.id == SERVER.host_id)
    .order_by(SERVER.id),
    SERVER.cluster_id,
)
