"""A change of an OBProxy cluster's root@proxysys password, as the metadb holds it: the cluster's
credential and a spare one that trade passwords when the change switches (the task keeps that
it did under a key of its own, engine/kept.py, in the same transaction), and the obproxies the
change holds.

Before the switch the cluster's credential has the old password and the spare the new one;
after it, the other way round. Each function works in its caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from obfleet.engine.kept import keep, kept
from obfleet.records import credentials
from obfleet.records import obproxy as records
from obfleet.records.obproxy import RecordError
from obfleet.security.secrets import SecretBox
from obfleet.store.models.obproxy import ObproxyServer


@dataclass(frozen=True)
class Change:
    """One password change: its task, its cluster and the spare credential."""

    task_id: int
    cluster_id: int
    spare_id: int
    switched_key: str  # the context key kept "true" once the cluster's has the new password


@dataclass(frozen=True)
class Passwords:
    old: str = field(repr=False)
    new: str = field(repr=False)


def _cluster_credential(session: Session, change: Change) -> int:
    cluster = records.get(session, change.cluster_id)
    if cluster.proxysys_credential_id is None:
        raise RecordError(f"OBProxy cluster {cluster.name} has no root@proxysys credential")
    return cluster.proxysys_credential_id


def switched(session: Session, change: Change) -> bool:
    return kept(session, change.task_id, change.switched_key) == "true"


def passwords(session: Session, box: SecretBox, change: Change) -> Passwords:
    """The old and the new password, wherever the switch left each."""
    current = credentials.reveal(session, box, _cluster_credential(session, change)).secret
    spare = credentials.reveal(session, box, change.spare_id).secret
    if switched(session, change):
        return Passwords(old=spare, new=current)
    return Passwords(old=current, new=spare)


def switch(session: Session, change: Change, to: bool) -> bool:
    """The cluster's credential and the spare trade passwords, unless the switch already is
    `to` (True: the cluster's has the new one); whether they traded."""
    if switched(session, change) == to:
        return False
    credentials.trade_secrets(session, _cluster_credential(session, change), change.spare_id)
    keep(session, change.task_id, change.switched_key, "true" if to else "false")
    return True


def release(session: Session, change: Change, ids: Sequence[int], marked: str) -> list[str]:
    """Each obproxy the change still holds (`marked`) RUNNING/NORMAL, alive now."""
    said = []
    for obproxy_id in ids:
        row = session.get(ObproxyServer, obproxy_id)
        if row is not None and row.status == marked and row.task_id == change.task_id:
            records.record_alive(session, row)
            said.append(f"obproxy {row.id} on {row.ip}:{row.sql_port} is RUNNING")
    return said


def hold_again(session: Session, change: Change, ids: Sequence[int], marked: str) -> list[str]:
    """A rollback taking the obproxies back into the change (`marked`)."""
    said = []
    for obproxy_id in ids:
        row = session.get(ObproxyServer, obproxy_id)
        if row is not None:
            records.take_back(row, marked, change.task_id)
            said.append(f"obproxy {row.id} is {marked} again")
    return said
