"""What obfleet's tasks act on, named as the engine's task targets (engine/targets.py).

A service names them when it submits a task; deletes and conflict checks ask the engine which
running tasks act on a host, an obproxy's host and SQL port, an OBProxy cluster or an obproxy.
"""

from __future__ import annotations

from collections.abc import Iterable

from obfleet.engine.targets import Target
from obfleet.store.models.obproxy import ObproxyServer

HOST = "host"
OBPROXY_CLUSTER = "obproxy_cluster"
OBPROXY = "obproxy"
# An OBProxy's host and SQL port, "<host_id>:<sql_port>": what an install or a take-over acts
# on before its obproxy has a row (and an id).
OBPROXY_PORT = "obproxy_port"


def host(host_id: int) -> Target:
    return (HOST, host_id)


def obproxy_port_key(host_id: int, sql_port: int) -> str:
    return f"{host_id}:{sql_port}"


def obproxy_cluster(cluster_id: int) -> Target:
    return (OBPROXY_CLUSTER, cluster_id)


def new_obproxies(cluster_id: int, host_ids: Iterable[int], sql_port: int) -> list[Target]:
    """An install's or a take-over's: the cluster, and each host with the SQL port."""
    ids = list(host_ids)
    return [
        obproxy_cluster(cluster_id),
        *(host(host_id) for host_id in ids),
        *((OBPROXY_PORT, obproxy_port_key(host_id, sql_port)) for host_id in ids),
    ]


def obproxies(cluster_id: int, rows: Iterable[ObproxyServer]) -> list[Target]:
    """An operation's on recorded obproxies: the cluster, each obproxy and its host."""
    listed = list(rows)
    return [
        obproxy_cluster(cluster_id),
        *((OBPROXY, row.id) for row in listed),
        *(host(row.host_id) for row in listed),
    ]
