"""Deleting OBProxies: OCP's "Offline obproxy" task (stop and uninstall each, forget it, free
its host). Also the first part of deleting a cluster that still has obproxies.

Which obproxies a delete may start from (checked, and the rows marked DELETING/OPERATING, in
the request's transaction, rows locked; the steps are in flows/obproxy/offline.py):

| status                | delete?                                                              |
|-----------------------|----------------------------------------------------------------------|
| RUNNING, UNAVAILABLE  | yes                                                                  |
| CREATING              | yes, once no running task installs it (a failed install leaves it)   |
| DELETING              | yes, once no running task deletes it (the way out of a failed delete |
|                       | or of a rollback that could not bring it back)                       |
| RESTARTING, UPGRADING,| no (21003): its operation's task owns it, and its retry or rollback  |
| TAKINGOVER, ...       | brings it back to a settled status                                   |

"A running task works on it": the task holding the row (`obproxy_server.task_id`) is RUNNING,
or a RUNNING task acts on it (a task target: the obproxy, or, for an install or take-over that
knows no id yet, its host and SQL port). A FAILED task waits for a person: its leftovers can be
deleted.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from obfleet.engine.flow import TaskSubject
from obfleet.engine.states import TaskStatus
from obfleet.engine.targets import running_tasks_on
from obfleet.errors import ApiError, ErrorCode
from obfleet.flows.obproxy import offline as offline_flow
from obfleet.records import obproxy as records
from obfleet.records import targets
from obfleet.services.obproxy_operations import submit_on
from obfleet.services.users import Principal
from obfleet.store.models.obproxy import ObproxyCluster, ObproxyServer, ObproxyStatus
from obfleet.store.models.tasks import TaskInstance

OFFLINE_FROM = (*records.SETTLED, ObproxyStatus.CREATING, ObproxyStatus.DELETING)


def offline(session: Session, cluster_id: int, obproxy_ids: list[int], principal: Principal) -> int:
    """Submit "Offline obproxy" for the cluster's obproxies `obproxy_ids`; returns the task id.
    404 21001/21002 for an unknown cluster or obproxy, 409 21003 for one another operation
    holds; nothing is changed then."""
    rows = records.obproxies_of(session, cluster_id, obproxy_ids, allowed=OFFLINE_FROM)
    return _submit(session, records.get(session, cluster_id), rows, principal, False)


def offline_cluster(session: Session, cluster: ObproxyCluster, principal: Principal) -> int:
    """Submit "Offline obproxy" for every obproxy of `cluster`, whose Finish node then forgets
    the cluster (obproxy_need_delete_cluster=true); returns the task id."""
    ids = session.scalars(
        select(ObproxyServer.id)
        .where(ObproxyServer.cluster_id == cluster.id)
        .order_by(ObproxyServer.id)
    ).all()
    rows = records.obproxies_of(session, cluster.id, list(ids), allowed=OFFLINE_FROM)
    return _submit(session, cluster, rows, principal, True)


def _submit(
    session: Session,
    cluster: ObproxyCluster,
    rows: list[ObproxyServer],
    principal: Principal,
    delete_cluster: bool,
) -> int:
    _refuse_worked_on(session, rows)
    flow = offline_flow.build(cluster, rows, delete_cluster=delete_cluster)
    hosts = {row.host_id for row in rows}
    subject = TaskSubject(host_id=hosts.pop()) if len(hosts) == 1 else None
    return submit_on(
        session, flow, cluster.id, rows, ObproxyStatus.DELETING, principal, subject=subject
    )


def _refuse_worked_on(session: Session, rows: list[ObproxyServer]) -> None:
    # Read after the rows' lock: a concurrent delete that marked them DELETING has committed
    # its task by then (READ COMMITTED on the servers, one writer at a time on SQLite).
    for row in rows:
        task = _running_task_on(session, row)
        if task is not None:
            raise ApiError(
                ErrorCode.OBPROXY_STATE_INVALID,
                row.id,
                row.status,
                message=(
                    f"The OBProxy server with an ID of {row.id} is {row.status}: task "
                    f"{task} is still working on it. Wait until it ends; a failed one can be "
                    "deleted then."
                ),
            )


def _running_task_on(session: Session, row: ObproxyServer) -> str | None:
    """The running task working on `row`, as `N (name)`, or None."""
    if row.task_id is not None:
        holder = session.execute(
            select(TaskInstance.id, TaskInstance.name).where(
                TaskInstance.id == row.task_id, TaskInstance.status == TaskStatus.RUNNING
            )
        ).first()
        if holder is not None:
            return f"{holder.id} ({holder.name})"
    acting = [
        *running_tasks_on(session, targets.OBPROXY, [row.id]),
        *running_tasks_on(
            session, targets.OBPROXY_PORT, [targets.obproxy_port_key(row.host_id, row.sql_port)]
        ),
    ]
    return f"{acting[0].task_id} ({acting[0].name})" if acting else None
