"""Looking up and forgetting OBProxy cluster records: shared by the API and the task steps."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import Session

from obfleet.errors import ApiError, ErrorCode, bad_request
from obfleet.store.models.credentials import Credential
from obfleet.store.models.obproxy import ObproxyCluster, ObproxyServer
from obfleet.timefmt import utcnow


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
SETTLED = ("RUNNING", "UNAVAILABLE")


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


def set_status(row: ObproxyServer, status: str) -> None:
    """The status and its operateStatus: NORMAL when settled, OPERATING during an operation."""
    row.status = status
    row.operate_status = "NORMAL" if status in SETTLED else "OPERATING"


class HeldElsewhere(RuntimeError):
    """A rollback would take back an obproxy that another operation holds now."""


def take_back(row: ObproxyServer, status: str) -> None:
    """A rollback taking an obproxy its task had already released (settled) back into the
    task's operation `status`. Another operation's status (say DELETING, after the operator
    deleted it in between) is refused, never overwritten: that operation owns the obproxy."""
    if row.status != status and row.status not in SETTLED:
        raise HeldElsewhere(
            f"obproxy {row.id} is {row.status}: another operation holds it now; "
            "roll back again once that operation has ended"
        )
    set_status(row, status)


def record_alive(session: Session, row: ObproxyServer) -> None:
    """RUNNING, seen now, with the cluster's current parameters."""
    set_status(row, "RUNNING")
    row.parameter_version = get(session, row.cluster_id).parameter_version
    row.last_active_time = utcnow()
