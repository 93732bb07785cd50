"""OBProxy cluster and obproxy rows: looking them up, recording them, and who holds each.

An obproxy's status is settled (RUNNING, UNAVAILABLE) or an operation's (CREATING, RESTARTING,
DELETING, ...). The task doing that operation holds the row: `task_id` names it while the status
is the operation's and is cleared when the row settles (`set_status`), so "is a running task
working on this obproxy" is read off the row, not out of task contexts.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from obfleet.errors import ApiError, ErrorCode, bad_request
from obfleet.obproxy import layout
from obfleet.store.models.credentials import Credential
from obfleet.store.models.obproxy import (
    ObproxyCluster,
    ObproxyServer,
    ObproxyStatus,
)
from obfleet.timefmt import utcnow


class RecordError(RuntimeError):
    """A row stands in the way of what a step was about to record; the message says which."""


class HeldElsewhere(RecordError):
    """A step would take an obproxy that another operation holds now."""


@dataclass(frozen=True)
class Placement:
    """Where one OBProxy lives: its cluster, host, ports and install path."""

    cluster_id: int
    host_id: int
    ip: str
    sql_port: int
    exporter_port: int
    home: str

    @property
    def ports(self) -> tuple[int, int]:
        return (self.sql_port, self.exporter_port)

    @classmethod
    def of(cls, row: ObproxyServer, home: str | None = None) -> Placement:
        """Where a recorded OBProxy lives (or would live in `home`, for an upgrade)."""
        where = home or row.install_path
        if not where:
            raise RecordError(f"obproxy {row.id} on {row.ip} has no recorded install path")
        return cls(row.cluster_id, row.host_id, row.ip, row.sql_port, row.exporter_port, where)


def get(session: Session, cluster_id: int) -> ObproxyCluster:
    cluster = session.get(ObproxyCluster, cluster_id)
    if cluster is None:
        raise ApiError(ErrorCode.OBPROXY_CLUSTER_NOT_FOUND, cluster_id)
    return cluster


def forget(session: Session, cluster_id: int) -> bool:
    """Delete the cluster record, its links and its root@proxysys credential. False when it
    was already gone; refused while OBProxy instances are still recorded."""
    cluster = session.get(ObproxyCluster, cluster_id)
    if cluster is None:
        return False
    remaining = session.scalars(
        select(ObproxyServer.id).where(ObproxyServer.cluster_id == cluster_id)
    ).all()
    if remaining:
        raise ApiError(
            ErrorCode.CONFLICT,
            f"OBProxy cluster {cluster.name} still has obproxies {', '.join(map(str, remaining))}",
        )
    credential_id = cluster.proxysys_credential_id
    session.delete(cluster)
    session.flush()
    if credential_id is not None:
        credential = session.get(Credential, credential_id)
        if credential is not None:
            session.delete(credential)
    return True


MAX_OBPROXY_IDS = 200
# Statuses an operation may start from; the others are an operation in progress.
SETTLED = (ObproxyStatus.RUNNING, ObproxyStatus.UNAVAILABLE)


def parse_ids(text: str) -> list[int]:
    """The `obproxyIds` of a path: "1,2,3" (OCP's example), each once."""
    parts = [p.strip() for p in text.split(",")]
    # ASCII digits only: str.isdigit() also takes "²" (which int() refuses) and the digits
    # of other scripts (which OCP's ids never use).
    # At most 18 of them, so every id fits the database's 64-bit integers.
    if not all(0 < len(p) <= 18 and p.isascii() and p.isdigit() and int(p) > 0 for p in parts):
        raise bad_request(f"obproxyIds must be a comma-separated list of ids, not {text[:100]!r}")
    ids = [int(p) for p in parts]
    if len(ids) > MAX_OBPROXY_IDS:
        raise bad_request(f"obproxyIds: at most {MAX_OBPROXY_IDS} obproxies at once")
    if len(set(ids)) != len(ids):
        raise bad_request("obproxyIds lists an obproxy twice")
    return ids


def obproxies_of(
    session: Session, cluster_id: int, ids: list[int], *, allowed: Collection[str] = SETTLED
) -> list[ObproxyServer]:
    """The cluster's obproxies `ids`, in that order, each in one of the `allowed` statuses
    (21002 for an id the cluster does not have, 21003 for one busy in another operation).
    The rows are locked for the caller's transaction, so two operations cannot both start."""
    get(session, cluster_id)
    rows = {
        row.id: row
        for row in session.scalars(
            select(ObproxyServer)
            .where(ObproxyServer.id.in_(ids), ObproxyServer.cluster_id == cluster_id)
            .with_for_update()
        )
    }
    for obproxy_id in ids:
        row = rows.get(obproxy_id)
        if row is None:
            raise ApiError(ErrorCode.OBPROXY_NOT_FOUND, obproxy_id)
        if row.status not in allowed:
            raise ApiError(ErrorCode.OBPROXY_STATE_INVALID, obproxy_id, row.status)
    return [rows[i] for i in ids]


def set_status(row: ObproxyServer, status: str, task_id: int | None) -> None:
    """The status, its operateStatus, and its holder: the task `task_id` holds an operation's
    status; a settled one is held by none. NORMAL when settled, OPERATING during an
    operation."""
    settled = status in SETTLED
    row.status = status
    row.operate_status = "NORMAL" if settled else "OPERATING"
    row.task_id = None if settled else task_id


def take_back(row: ObproxyServer, status: str, task_id: int) -> None:
    """A rollback taking an obproxy its task had already released (settled) back into the
    task's operation `status`. Another operation's status (say DELETING, after the operator
    deleted it in between) is refused, never overwritten: that operation owns the obproxy."""
    if row.status != status and row.status not in SETTLED:
        raise HeldElsewhere(
            f"obproxy {row.id} is {row.status}: another operation holds it now; "
            "roll back again once that operation has ended"
        )
    set_status(row, status, task_id)


def record_alive(session: Session, row: ObproxyServer) -> None:
    """RUNNING, seen now, with the cluster's current parameters."""
    set_status(row, ObproxyStatus.RUNNING, None)
    row.parameter_version = get(session, row.cluster_id).parameter_version
    row.last_active_time = utcnow()


def clash(session: Session, host_id: int, ports: Collection[int], home: str) -> str | None:
    """Why another recorded OBProxy on the host stands in the way (one of `ports` or the
    install path taken), or None."""
    rows = session.scalars(select(ObproxyServer).where(ObproxyServer.host_id == host_id)).all()
    for row in rows:
        taken = sorted({row.sql_port, row.exporter_port} & set(ports))
        if taken:
            return f"port {taken[0]} on host {row.ip} is used by obproxy {row.id}"
        if row.install_path == home:
            return f"{home} on host {row.ip} is the install path of obproxy {row.id}"
        if row.install_path and layout.overlaps(row.install_path, home):
            return (
                f"{home} on host {row.ip} lies in (or holds) {row.install_path}, the install "
                f"path of obproxy {row.id}"
            )
    return None


@dataclass(frozen=True)
class Exporter:
    """Where one obproxy serves its own Prometheus metrics (its `-l` port)."""

    obproxy_id: int
    cluster_id: int
    cluster_name: str
    ip: str
    exporter_port: int
    status: str


def exporters(session: Session) -> list[Exporter]:
    """Every recorded obproxy's exporter address, by cluster then obproxy id."""
    rows = session.execute(
        select(
            ObproxyServer.id,
            ObproxyCluster.id,
            ObproxyCluster.name,
            ObproxyServer.ip,
            ObproxyServer.exporter_port,
            ObproxyServer.status,
        )
        .join(ObproxyCluster, ObproxyCluster.id == ObproxyServer.cluster_id)
        .order_by(ObproxyCluster.id, ObproxyServer.id)
    )
    return [Exporter(*row) for row in rows]
