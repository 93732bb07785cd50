"""Looking up and forgetting OBProxy cluster records: shared by the API and the task steps."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from obfleet.errors import ApiError, ErrorCode
from obfleet.store.models.credentials import Credential
from obfleet.store.models.obproxy import ObproxyCluster, ObproxyServer


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
