"""Starting an operation on recorded obproxies: the task submitted, and the rows held by it."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from obfleet.engine.flow import Flow, TaskSubject, submit
from obfleet.records import obproxy as records
from obfleet.records import targets
from obfleet.services.users import Principal
from obfleet.store.models.obproxy import ObproxyServer, ObproxyStatus


def submit_on(
    session: Session,
    flow: Flow,
    cluster_id: int,
    rows: Sequence[ObproxyServer],
    status: ObproxyStatus,
    principal: Principal,
    *,
    subject: TaskSubject | None = None,
) -> int:
    """Submit `flow` acting on the cluster's obproxies `rows`, and mark each `status`/OPERATING,
    held by the new task, in the caller's transaction: the health checker leaves them alone and
    no other operation can start on them until the task settles them. Returns the task id."""
    task_id = submit(
        session,
        flow,
        creator=principal.username,
        creator_id=principal.user_id,
        subject=subject,
        targets=targets.obproxies(cluster_id, rows),
    )
    for row in rows:
        records.set_status(row, status, task_id)
    session.flush()
    return task_id
