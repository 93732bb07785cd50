"""Restarting OBProxies one at a time, so the cluster keeps serving: the "Restart obproxy" task
(flows/restart_obproxy.py). Also the start of every task that marks obproxies as busy in an
operation and restarts them one after the other (a startup parameter change)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from obfleet.engine.definition import Subtask
from obfleet.engine.flow import Flow, Node
from obfleet.flows import obproxy_cluster as cluster_steps
from obfleet.flows import restart_obproxy as steps
from obfleet.records import obproxy as records
from obfleet.services.obproxy_operations import submit_on
from obfleet.services.users import Principal
from obfleet.store.models.obproxy import ObproxyCluster, ObproxyServer, ObproxyStatus


def begin(
    flow: Flow, cluster: ObproxyCluster, rows: Sequence[ObproxyServer], status: ObproxyStatus
) -> None:
    """The task context of an operation on `rows` (OCP's keys where its samples have them);
    `submit_on` then marks the rows `status`, held by the task."""
    flow.set(cluster_steps.CLUSTER_ID, str(cluster.id))
    flow.set(cluster_steps.CLUSTER_NAME, cluster.name)
    flow.set("service_type", "OB_PROXY")
    flow.set("service_name", cluster.name)
    flow.set("prohibit_rollback", "false")
    flow.set(steps.OPERATION_STATUS, status)
    flow.set_list(steps.SERVER_IDS, [row.id for row in rows])
    flow.set_list(steps.HOST_IDS, [row.host_id for row in rows])
    flow.set_list(steps.PREVIOUS_STATUSES, [row.status for row in rows])


def add_rolling(flow: Flow, chain: Sequence[type[Subtask]], *, after: Node) -> Node:
    """One `chain` per obproxy of the context, each after the previous one (parallelIdx i picks
    obproxy i); returns the last node."""
    last = after
    for index in range(len(flow.context.list_map[steps.SERVER_IDS])):
        last = flow.chain(*chain, after=last, parallel_idx=index)
    return last


def restart(session: Session, cluster_id: int, obproxy_ids: list[int], principal: Principal) -> int:
    """Mark the obproxies RESTARTING and submit "Restart obproxy"; returns the task id. Allowed
    from RUNNING and UNAVAILABLE: restarting is how a crashed obproxy comes back."""
    cluster = records.get(session, cluster_id)
    rows = records.obproxies_of(session, cluster_id, obproxy_ids)
    flow = Flow("Restart obproxy")
    begin(flow, cluster, rows, ObproxyStatus.RESTARTING)
    prepare = flow.add(steps.PrepareRestart)
    last = add_rolling(flow, steps.RESTART_CHAIN, after=prepare)
    flow.add(steps.FinishRestart, after=last)
    return submit_on(session, flow, cluster_id, rows, ObproxyStatus.RESTARTING, principal)
