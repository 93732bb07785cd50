"""An obproxy row through the tasks that change it: recorded by an install or a take-over
(held by that task, which keeps the row's id, engine/kept.py), proven its own, RUNNING, taken
back by a rollback, restored or deleted by an offline. Each function works in its caller's
transaction; a RecordError says which row stands in the way, and why.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from obfleet.engine.kept import keep, kept
from obfleet.records.host_access import get_host
from obfleet.records.obproxy import (
    SETTLED,
    HeldElsewhere,
    Placement,
    RecordError,
    clash,
    record_alive,
    set_status,
    take_back,
)
from obfleet.store.models.obproxy import ObproxyOrigin, ObproxyServer, ObproxyStatus
from obfleet.store.models.packages import SoftwarePackage
from obfleet.timefmt import utcnow

CREATING, DELETING = ObproxyStatus.CREATING, ObproxyStatus.DELETING
TAKINGOVER, RUNNING = ObproxyStatus.TAKINGOVER, ObproxyStatus.RUNNING


@dataclass(frozen=True)
class Recorded:
    """An obproxy row as a step read it."""

    id: int
    status: str
    version: str | None  # <version>-<build>, as recorded
    placement: Placement

    @property
    def label(self) -> str:
        return f"obproxy {self.id} ({self.placement.ip}:{self.placement.sql_port})"


def recorded(session: Session, cluster_id: int, obproxy_id: int) -> Recorded | None:
    row = session.get(ObproxyServer, obproxy_id)
    if row is None or row.cluster_id != cluster_id:
        return None
    return Recorded(row.id, row.status, row.version, Placement.of(row))


def in_cluster(session: Session, cluster_id: int, obproxy_id: int) -> ObproxyServer:
    """The cluster's obproxy `obproxy_id`, which a task working on it needs still recorded."""
    row = session.get(ObproxyServer, obproxy_id)
    if row is None or row.cluster_id != cluster_id:
        raise RecordError(f"obproxy {obproxy_id} is no longer recorded in cluster {cluster_id}")
    return row


def existing_package(session: Session, package_id: int | None) -> int | None:
    """The package id, unless the package was deleted since (it was no longer in use): a row
    keeps no dangling id."""
    return package_id if package_id and session.get(SoftwarePackage, package_id) else None


def home_users(session: Session, host_id: int, home: str) -> list[int]:
    """The recorded obproxies whose install path `home` is on the host."""
    return list(
        session.scalars(
            select(ObproxyServer.id).where(
                ObproxyServer.host_id == host_id, ObproxyServer.install_path == home
            )
        )
    )


# --- the rows an install or a take-over records -------------------------------------------------


def recorded_at(session: Session, placement: Placement) -> ObproxyServer | None:
    """The obproxy recorded on the placement's host and SQL port (unique), of any cluster."""
    return session.scalar(
        select(ObproxyServer).where(
            ObproxyServer.host_id == placement.host_id, ObproxyServer.sql_port == placement.sql_port
        )
    )


def own_server_id(session: Session, task_id: int, key: str) -> int | None:
    """The obproxy id this task kept under `key` (engine/kept.py): a run sees the id an
    earlier run of the same subtask kept even though that run failed."""
    value = kept(session, task_id, key)
    return int(value) if value and value.isdigit() else None


def record_new(
    session: Session,
    placement: Placement,
    status: ObproxyStatus,
    task_id: int,
    key: str,
    *,
    origin: ObproxyOrigin,
    package_id: int | None,
    version: str | None,
) -> int:
    """Record the obproxy about to be installed or taken over at `placement`, held by the task
    `task_id`, unless another recorded one holds its ports or install path; and keep its id
    under `key` in the same transaction, so that this task's later runs and rollback know the
    row as their own."""
    reason = clash(session, placement.host_id, placement.ports, placement.home)
    if reason:
        raise RecordError(reason)
    row = ObproxyServer(
        cluster_id=placement.cluster_id,
        host_id=placement.host_id,
        package_id=package_id,
        ip=placement.ip,
        sql_port=placement.sql_port,
        exporter_port=placement.exporter_port,
        install_path=placement.home,
        version=version,
        origin=origin,
    )
    set_status(row, status, task_id)
    session.add(row)
    session.flush()
    keep(session, task_id, key, str(row.id))
    return row.id


def own_row(session: Session, server_id: str | None) -> ObproxyServer | None:
    """The row this task created (by the id it kept), if it is still recorded."""
    return session.get(ObproxyServer, int(server_id)) if server_id else None


def delete_own_row(
    session: Session, server_id: str | None, statuses: Collection[str]
) -> int | None:
    """Delete the row this task created, if it still is in one of this task's `statuses`;
    its id, or None when it is gone already."""
    row = own_row(session, server_id)
    if row is None:
        return None
    if row.status not in statuses:
        raise HeldElsewhere(
            f"obproxy {row.id} is {row.status}: another operation holds it now; "
            "roll back again once that operation has ended"
        )
    session.delete(row)
    return row.id


def record_running(session: Session, row: ObproxyServer | None, placement: Placement) -> int:
    """The obproxy's row RUNNING/NORMAL and alive now, with the architecture it runs on (the
    host's, else its package's); the row gone in the meantime is an error."""
    if row is None:
        raise RecordError(f"obproxy on {placement.ip}:{placement.sql_port} is no longer recorded")
    architecture = get_host(session, placement.host_id).architecture
    package = session.get(SoftwarePackage, row.package_id) if row.package_id else None
    row.architecture = architecture or (package.architecture if package else None)
    record_alive(session, row)
    return row.id


def held_elsewhere(row: ObproxyServer, doing: str) -> HeldElsewhere:
    """The error for a row at this task's host and SQL port that is not this task's own."""
    return HeldElsewhere(
        f"{row.ip}:{row.sql_port} is already recorded as obproxy {row.id} (another task is "
        f"{doing} or it runs there); this task leaves it alone"
    )


def record_creating(
    session: Session, placement: Placement, package_id: int, task_id: int, key: str
) -> int:
    """The install's row at `placement`: recorded CREATING now, or the one an earlier run of
    this task recorded (and kept under `key`)."""
    own = own_server_id(session, task_id, key)
    row = recorded_at(session, placement)
    if row is None:
        return record_new(
            session,
            placement,
            CREATING,
            task_id,
            key,
            origin=ObproxyOrigin.INSTALL,
            package_id=package_id,
            version=None,
        )
    if row.id != own or row.cluster_id != placement.cluster_id:
        raise held_elsewhere(row, "installing it")
    if row.status != CREATING:
        raise HeldElsewhere(
            f"obproxy {row.id} on {row.ip}:{row.sql_port}, recorded by this task, is "
            f"{row.status} now: another operation holds it"
        )
    return row.id


def mark_checked(session: Session, server_id: str | None) -> None:
    """The install path is proven this row's own: empty, ports free, before anything shipped."""
    row = own_row(session, server_id)
    if row is None:
        raise RecordError(f"obproxy {server_id} recorded by this task is no longer recorded")
    row.install_checked = True


def record_installed(
    session: Session, row: ObproxyServer | None, placement: Placement, version: str
) -> int:
    """The install's row RUNNING on `version`; refused when another operation holds it."""
    if row is not None:
        if row.status != CREATING and row.status not in SETTLED:
            raise HeldElsewhere(
                f"obproxy {row.id} on {row.ip}:{row.sql_port} is {row.status}: another "
                "operation holds it now"
            )
        row.version = version
    return record_running(session, row, placement)


def unrecord_installed(row: ObproxyServer, task_id: int) -> None:
    """An install's rollback takes its row back as DELETING (its Prepare then deletes it)."""
    if row.status == CREATING:  # never released: still this install's own
        set_status(row, DELETING, task_id)
    else:
        take_back(row, DELETING, task_id)


def record_taking_over(
    session: Session,
    placement: Placement,
    version: str,
    package_id: int | None,
    task_id: int,
    key: str,
) -> int:
    """The take-over's row at `placement`: recorded TAKINGOVER now, or the one an earlier run
    of this task recorded (and kept under `key`)."""
    own = own_server_id(session, task_id, key)
    row = recorded_at(session, placement)
    if row is not None and row.cluster_id != placement.cluster_id:
        raise RecordError(
            f"{placement.ip}:{placement.sql_port} is recorded as obproxy {row.id} of another "
            f"OBProxy cluster (id {row.cluster_id})"
        )
    if row is not None:
        if row.id != own or row.status != TAKINGOVER:
            raise held_elsewhere(row, "taking it over")
        return row.id
    return record_new(
        session,
        placement,
        TAKINGOVER,
        task_id,
        key,
        origin=ObproxyOrigin.TAKE_OVER,
        package_id=existing_package(session, package_id),
        version=version,
    )


def record_taken_over(session: Session, row: ObproxyServer | None, placement: Placement) -> int:
    """The take-over's row RUNNING; refused when another operation holds it."""
    if row is not None and row.status not in (TAKINGOVER, RUNNING):
        raise HeldElsewhere(
            f"obproxy {row.id} on {row.ip}:{row.sql_port} is {row.status}: another "
            "operation holds it now"
        )
    return record_running(session, row, placement)


# --- rolling operations (restart, parameter change, upgrade) ------------------------------------


def settle(session: Session, obproxy_id: int, marked: str, alive: bool) -> bool:
    """The row still `marked` by the operation gets RUNNING or UNAVAILABLE as a login said;
    False when another status stands."""
    row = session.get(ObproxyServer, obproxy_id)
    if row is None or row.status != marked:
        return False
    set_status(row, RUNNING if alive else ObproxyStatus.UNAVAILABLE, None)
    if alive:
        row.last_active_time = utcnow()
    return True


def record_upgraded(
    session: Session, row: ObproxyServer, placement: Placement, version: str, package_id: int
) -> None:
    """The upgraded row: its new version, package and install path, RUNNING."""
    row.version = version
    row.package_id = existing_package(session, package_id)
    row.install_path = placement.home
    record_alive(session, row)


def unrecord_upgraded(
    session: Session,
    row: ObproxyServer,
    task_id: int,
    old: Placement,
    old_version: str | None,
    old_package_id: int | None,
) -> None:
    """An upgrade's rollback: the row UPGRADING again, on its old version, package and path."""
    take_back(row, ObproxyStatus.UPGRADING, task_id)
    row.version = old_version
    row.package_id = existing_package(session, old_package_id)
    row.install_path = old.home


# --- an offline -----------------------------------------------------------------------------------


def require_deleting(found: Recorded) -> None:
    if found.status != DELETING:
        raise HeldElsewhere(
            f"{found.label} is {found.status}, not DELETING: another operation has "
            "taken it over since this task was started; this task leaves it alone"
        )


def home_shared_with(session: Session, found: Recorded) -> str | None:
    """Another recorded obproxy on the same host with the same install path (never made by
    obfleet's installs, which refuse it; checked because rm -rf cannot be undone)."""
    other = session.scalar(
        select(ObproxyServer.id).where(
            ObproxyServer.host_id == found.placement.host_id,
            ObproxyServer.install_path == found.placement.home,
            ObproxyServer.id != found.id,
        )
    )
    return None if other is None else f"obproxy {other}"


def home_ownership(session: Session, obproxy_id: int, previous: str) -> tuple[bool, str]:
    """Whether what lives at the install path is this obproxy's own, and why."""
    row = session.get(ObproxyServer, obproxy_id)
    if row is None:
        return False, f"obproxy {obproxy_id} is no longer recorded"
    if previous in SETTLED or row.version is not None:
        return True, f"it ran as obproxy {row.id}"
    if row.install_checked:
        return True, (
            f"its install found {row.install_path} empty and the ports free before it shipped "
            "anything, so what is there now is its own"
        )
    return False, (
        f"it never ran and its install never found {row.install_path} on {row.ip} empty before "
        "shipping anything (it stopped at or before its check of the host), so whatever runs "
        "from or lies in it is not its own"
    )


def restore(session: Session, cluster_id: int, obproxy_id: int, status: str) -> str:
    """An offline's rollback: the row `status` again, as before the delete."""
    row = session.get(ObproxyServer, obproxy_id)
    if row is None or row.cluster_id != cluster_id:
        return f"obproxy {obproxy_id} is no longer recorded"
    if row.status != DELETING:
        return f"obproxy {obproxy_id} is {row.status} already; left as it is"
    # Back to a settled status, held by none; or to CREATING or DELETING, the status a failed
    # task left, which holds nothing until it is retried (its targets say so then).
    set_status(row, status, None)
    return f"obproxy {obproxy_id} is {status} again, as before the delete"


def delete_deleting(session: Session, cluster_id: int, ids: list[int]) -> list[str]:
    """Forget the DELETING rows `ids`; what was done, one line each."""
    said = []
    for obproxy_id in ids:
        row = session.get(ObproxyServer, obproxy_id)
        if row is None or row.cluster_id != cluster_id:
            said.append(f"obproxy {obproxy_id} was already deleted")
            continue
        if row.status != DELETING:
            raise HeldElsewhere(
                f"obproxy {obproxy_id} is {row.status}, not DELETING: another operation has "
                "taken it over; not deleting its record"
            )
        session.delete(row)
        said.append(
            f"obproxy {row.id} deleted: {row.ip}:{row.sql_port} (exporter {row.exporter_port}), "
            f"{row.install_path}"
        )
    return said


def remaining_on(session: Session, host_ids: list[int]) -> dict[int, list[int]]:
    """The obproxies still recorded on each host."""
    rows = session.execute(
        select(ObproxyServer.host_id, ObproxyServer.id).where(ObproxyServer.host_id.in_(host_ids))
    ).all()
    found: dict[int, list[int]] = {h: [] for h in host_ids}
    for host_id, obproxy_id in rows:
        found[host_id].append(obproxy_id)
    return found
