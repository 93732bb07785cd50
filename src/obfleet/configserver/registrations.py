"""Registrations: root-service lists that observers (and OBD) post to the config server.

Observers started with `obconfig_url` POST `Action=ObRootServiceInfo` with their root servers;
OBD, facing a config server that is not ob-configserver, reserves a name with the OCP-style
`ObRootServiceRegister` and clears it with `DeleteObRootServiceInfoByClusterName`.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from sqlalchemy import delete, func, select
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.orm import Session

from obfleet.configserver.errors import ConfigServerError, illegal_argument, internal
from obfleet.configserver.rootservice import INT64, ClusterQuery, RootServiceInfo
from obfleet.store.models.configserver import RootServiceRegistration
from obfleet.store.models.ob_clusters import ObCluster
from obfleet.timefmt import utcnow

# ob-configserver keeps a registration in a 64 KiB column; a bigger body is not an observer's.
MAX_BODY = 64 * 1024
PORT = re.compile(r"[0-9]{1,5}")


class _GoJson(BaseModel):
    """Decoded as Go's encoding/json decodes into a struct: unknown keys ignored, the case of
    known keys ignored, no coercion between strings and numbers."""

    model_config = ConfigDict(extra="ignore", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _any_case(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        fields = {name.lower(): name for name in cls.model_fields}
        return {fields.get(str(key).lower(), key): value for key, value in data.items()}


class _Server(_GoJson):
    address: str = ""
    role: str = ""
    sql_port: int = 0


class _Posted(_GoJson):
    ObClusterId: int = 0
    ObRegionId: int = 0
    ObCluster: str = ""
    ObRegion: str = ""
    ReadonlyRsList: list[_Server] | None = None
    RsList: list[_Server] | None = None
    Type: str = ""
    timestamp: int = 0


def now_us() -> int:
    return time.time_ns() // 1000


def bind(body: bytes) -> _Posted:
    """The posted ObRootServiceInfo, or ob-configserver's 500 for a body it cannot bind."""
    if len(body) > MAX_BODY:
        raise illegal_argument(f"the body is larger than {MAX_BODY} bytes")
    try:
        return _Posted.model_validate(json.loads(body))
    except (ValueError, ValidationError, RecursionError) as exc:
        # RecursionError: nesting deeper than the interpreter's stack (Go's decoder stops at
        # 10000 levels with an error, which ob-configserver answers as any other bind error).
        cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise internal(f"bind rootservice query parameter: {cause}") from exc


def _servers(posted: list[_Server] | None, field: str) -> list[dict[str, Any]]:
    servers = []
    for i, server in enumerate(posted or []):
        host, _, port = server.address.rpartition(":")
        if not host or not PORT.fullmatch(port) or not 0 < int(port) < 65536:
            raise illegal_argument(f"{field}[{i}].address {server.address[:80]!r} is not ip:port")
        if not 0 <= server.sql_port < 65536 or len(server.role) > 16:
            raise illegal_argument(f"{field}[{i}] has an invalid sql_port or role")
        servers.append(
            {"address": server.address, "role": server.role, "sql_port": server.sql_port}
        )
    return servers


def check_name(name: str) -> None:
    """obfleet's own check of a cluster name: it must fit the registration table, and be text
    that logs and URLs can carry."""
    if len(name) > 128 or not name.isprintable():
        raise illegal_argument("ob cluster name must be at most 128 printable characters")


def to_info(posted: _Posted, query: ClusterQuery) -> RootServiceInfo:
    """ob-configserver's checks (name; Type from version 2), then obfleet's own: the values
    must fit the registration table (and Go's int64 fields), and a cluster id is positive as
    in its schema."""
    for field, value in (
        ("ObClusterId", posted.ObClusterId),
        ("ObRegionId", posted.ObRegionId),
        ("timestamp", posted.timestamp),
    ):
        if value not in INT64:
            raise illegal_argument(f"{field} is out of range for a 64-bit integer")
    name = posted.ObCluster or posted.ObRegion  # Fill(): either spelling names the cluster
    cluster_id = posted.ObClusterId if posted.ObClusterId > 0 else posted.ObRegionId
    if not name:
        raise illegal_argument("ob cluster name is required")
    if query.version > 1 and not posted.Type:
        raise illegal_argument("ob cluster type is required when version > 1")
    check_name(name)
    if cluster_id <= 0:
        raise illegal_argument("ob cluster id must be a positive integer")
    if len(posted.Type) > 16:
        raise illegal_argument("ob cluster type is at most 16 characters")
    return RootServiceInfo(
        cluster=name,
        cluster_id=cluster_id,
        type=posted.Type,
        rs_list=_servers(posted.RsList, "RsList"),
        readonly_rs_list=_servers(posted.ReadonlyRsList, "ReadonlyRsList"),
        timestamp=posted.timestamp or now_us(),
    )


def check_not_recorded(session: Session, name: str) -> None:
    """Refuse a change to a name that an operator recorded through the API: that record alone
    says where the cluster's servers are (obfleet.configserver.rootservice)."""
    if session.scalar(select(ObCluster.id).where(ObCluster.name == name).limit(1)) is not None:
        raise ConfigServerError(
            403, f"forbidden: {name} is recorded through obfleet's API, which alone changes it"
        )


def _check_room(session: Session, info: RootServiceInfo, max_clusters: int) -> None:
    """Refuse a new (name, cluster id) once `max_clusters` are registered."""
    key = (RootServiceRegistration.name == info.cluster) & (
        RootServiceRegistration.ob_cluster_id == info.cluster_id
    )
    if session.scalar(select(RootServiceRegistration.id).where(key)) is not None:
        return
    registered = session.scalar(select(func.count()).select_from(RootServiceRegistration))
    if (registered or 0) >= max_clusters:
        raise ConfigServerError(
            409,
            f"conflict: at most {max_clusters} clusters can be registered"
            " (OBFLEET_CONFIGSERVER_MAX_CLUSTERS); delete one first",
        )


def _upsert(dialect: str, values: dict[str, Any], changes: dict[str, Any]) -> Any:
    """Insert, or replace the row of the same (name, cluster id) unless its timestamp is newer,
    in one statement, so replicas racing on the same cluster cannot collide on the unique key
    nor let an older registration win."""
    table = RootServiceRegistration.__table__.c
    if dialect == "mysql":
        upsert = mysql.insert(RootServiceRegistration).values(values)
        newer = upsert.inserted.timestamp >= table.timestamp
        # MySQL assigns left to right, later ones seeing earlier ones: timestamp goes last.
        return upsert.on_duplicate_key_update(
            [(name, func.if_(newer, upsert.inserted[name], table[name])) for name in changes]
        )
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(RootServiceRegistration).values(values)
    return stmt.on_conflict_do_update(
        index_elements=["name", "ob_cluster_id"],
        set_=changes,
        where=stmt.excluded.timestamp >= table.timestamp,
    )


def save(session: Session, info: RootServiceInfo, max_clusters: int) -> None:
    """Record a registration; refused when a newer one of that cluster stands, or when it
    would be one cluster too many."""
    _check_room(session, info, max_clusters)
    now = utcnow()
    changes = {
        "type": info.type,
        "rs_list": info.rs_list,
        "readonly_rs_list": info.readonly_rs_list,
        "update_time": now,
        "timestamp": info.timestamp,
    }
    values = {"name": info.cluster, "ob_cluster_id": info.cluster_id, "create_time": now, **changes}
    session.execute(_upsert(session.get_bind().dialect.name, values, changes))
    stored = session.scalar(
        select(RootServiceRegistration.timestamp).where(
            RootServiceRegistration.name == info.cluster,
            RootServiceRegistration.ob_cluster_id == info.cluster_id,
        )
    )
    if stored is not None and stored > info.timestamp:
        raise ConfigServerError(
            409, f"conflict: a registration of {info.cluster} with a newer timestamp stands"
        )


def forget(session: Session, name: str, cluster_id: int | None = None) -> None:
    """Drop the registrations of a name (only that cluster id's when given); obfleet's own
    record of the cluster, if any, answers again. A delete that matches nothing leaves the
    config-server generation (and so every replica's cache) where it was."""
    stmt = delete(RootServiceRegistration).where(RootServiceRegistration.name == name)
    if cluster_id is not None:
        stmt = stmt.where(RootServiceRegistration.ob_cluster_id == cluster_id)
    session.execute(stmt)


def reserve(session: Session, name: str, cluster_id: int, max_clusters: int) -> None:
    """OCP's ObRootServiceRegister: an empty root-service list under a name not yet known,
    filled in when the new cluster's observers post theirs. A name already registered, or
    that an obfleet cluster record has, is taken: a reservation would stand in for the record
    (it is newer) and answer an empty root-service list for a running cluster."""
    check_name(name)
    registered = select(RootServiceRegistration.id).where(RootServiceRegistration.name == name)
    recorded = select(ObCluster.id).where(ObCluster.name == name)
    if any(session.scalar(taken.limit(1)) is not None for taken in (registered, recorded)):
        # OBD reads this Code (and retries after DeleteObRootServiceInfoByClusterName when told
        # to force), but gives up on any HTTP status other than 200.
        raise ConfigServerError(409, f"conflict: {name} is already registered", http_status=200)
    save(session, RootServiceInfo(name, cluster_id, "PRIMARY", [], [], now_us()), max_clusters)
