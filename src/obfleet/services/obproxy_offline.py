"""Deleting OBProxies: OCP's "Offline obproxy" task (stop and uninstall each, forget it, free
its host). Also the first part of deleting a cluster that still has obproxies.

Which obproxies a delete may start from (checked, and the rows marked DELETING/OPERATING, in
the request's transaction, rows locked; the steps are in flows/offline_obproxy.py):

| status                | delete?                                                              |
|-----------------------|----------------------------------------------------------------------|
| RUNNING, UNAVAILABLE  | yes                                                                  |
| CREATING              | yes, once no running task installs it (a failed install leaves it)   |
| DELETING              | yes, once no running task deletes it (the way out of a failed delete |
|                       | or of a rollback that could not bring it back)                       |
| RESTARTING, UPGRADING,| no (21003): its operation's task owns it, and its retry or rollback  |
| TAKINGOVER, ...       | brings it back to a settled status                                   |

"A running task works on it": a task whose status is RUNNING (it still has work it may start
on its own; a FAILED task waits for a person) and whose context names the obproxy: by id in
`obproxy_server_ids` / `obproxy_server_id`, or, for install tasks that know no id yet, by
its cluster, host and SQL port.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from obfleet.engine.flow import TaskSubject, submit
from obfleet.errors import ApiError, ErrorCode
from obfleet.flows import offline_obproxy as steps
from obfleet.flows.obproxy_cluster import CLUSTER_ID
from obfleet.services import obproxy_records as records
from obfleet.services.users import Principal
from obfleet.store.models.obproxy import ObproxyCluster, ObproxyServer
from obfleet.store.models.tasks import TaskInstance

OFFLINE_FROM = ("RUNNING", "UNAVAILABLE", "CREATING", "DELETING")


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
    obproxies = [(row.id, row.host_id, row.status) for row in rows]
    for row in rows:
        records.set_status(row, steps.DELETING)
    session.flush()
    flow = steps.offline_flow(
        cluster_id=cluster.id,
        cluster_name=cluster.name,
        obproxies=obproxies,
        delete_cluster=delete_cluster,
    )
    hosts = {row.host_id for row in rows}
    return submit(
        session,
        flow,
        creator=principal.username,
        creator_id=principal.user_id,
        subject=TaskSubject(host_id=hosts.pop()) if len(hosts) == 1 else None,
    )


def _refuse_worked_on(session: Session, rows: list[ObproxyServer]) -> None:
    # Read after the rows' lock: a concurrent delete that marked them DELETING has committed
    # its task by then (READ COMMITTED on the servers, one writer at a time on SQLite).
    running = session.execute(
        select(TaskInstance.id, TaskInstance.name, TaskInstance.context).where(
            TaskInstance.status == "RUNNING"
        )
    ).all()
    for row in rows:
        for task_id, name, context in running:
            if _names(context or {}, row):
                raise ApiError(
                    ErrorCode.OBPROXY_STATE_INVALID,
                    row.id,
                    row.status,
                    message=(
                        f"The OBProxy server with an ID of {row.id} is {row.status}: task "
                        f"{task_id} ({name}) is still working on it. Wait until it ends; a "
                        "failed one can be deleted then."
                    ),
                )


def _names(context: dict[str, Any], row: ObproxyServer) -> bool:
    """Whether a task's context is about the obproxy `row`."""
    strings: dict[str, str] = context.get("stringMap", {})
    lists: dict[str, list[str]] = context.get("listMap", {})
    if strings.get(CLUSTER_ID) != str(row.cluster_id):
        return False
    ids = lists.get(steps.SERVER_IDS)
    if ids is not None:
        return str(row.id) in ids
    if strings.get("obproxy_server_id") == str(row.id):
        return True
    hosts: Iterable[str] = lists.get(steps.HOST_IDS) or [strings.get("host_id", "")]
    port = strings.get(steps.SQL_PORT)
    return str(row.host_id) in hosts and port in (None, str(row.sql_port))
