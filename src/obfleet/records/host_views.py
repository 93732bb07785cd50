"""What a host's view shows, read for a whole page at once: the host's own columns, and the
OBProxies running on the page's hosts in one more query.

Rows are plain column tuples read through the tables' Core columns, as a cluster page's are
(records/obproxy_views.py): a page of hosts as ORM objects spent more on loading and tracking
the objects than on reading them, and an empty page as much as the rest of its request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, Select, literal, select
from sqlalchemy.orm import Session

from obfleet.store.base import as_stored
from obfleet.store.models.hosts import Host
from obfleet.store.models.obproxy import ObproxyCluster, ObproxyServer
from obfleet.store.rows import RowsOfIds, Values, grouped

HOST = Host.__table__.c
SERVER = ObproxyServer.__table__.c
CLUSTER = ObproxyCluster.__table__.c
# What OCP's ServiceSummary calls an OBProxy; the only service obfleet puts on a host.
OB_PROXY = "OB_PROXY"

HOST_COLUMNS = (
    HOST.id,
    HOST.name,
    HOST.alias,
    HOST.description,
    HOST.operating_system,
    HOST.operating_system_release,
    HOST.architecture,
    HOST.serial_number,
    HOST.inner_ip_address,
    HOST.ssh_port,
    HOST.kind,
    HOST.status,
    HOST.idc_name,
    HOST.type_name,
    HOST.credential_id,
    HOST.host_key,
    as_stored(HOST.create_time),
    as_stored(HOST.update_time),
)


def host_rows() -> Select[Any]:
    """The hosts' view columns, to filter, order and page."""
    return select(*HOST_COLUMNS)


def host_row(session: Session, host_id: int) -> Row[Any]:
    """One host's view columns (it must exist)."""
    return session.execute(host_rows().where(HOST.id == host_id)).one()


# Made once: building a statement anew per request cost as much as running it.
SERVICES_OF = RowsOfIds(
    select(
        SERVER.host_id,
        CLUSTER.name,
        SERVER.version,
        literal(OB_PROXY).label("type"),
        SERVER.package_id.label("software_package_id"),
    )
    .join_from(ObproxyServer.__table__, ObproxyCluster.__table__, CLUSTER.id == SERVER.cluster_id)
    .order_by(SERVER.id),
    SERVER.host_id,
)


def services_of(session: Session, host_ids: Sequence[int]) -> dict[int, list[Values]]:
    """The OBProxies on each of `host_ids` (as OCP's ServiceSummary columns), in id order."""
    return grouped(SERVICES_OF.rows(session, host_ids))
