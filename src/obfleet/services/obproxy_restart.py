"""Restarting OBProxies one at a time, so the cluster keeps serving: the "Restart obproxy" task
(flows/obproxy/restart.py)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from obfleet.flows.obproxy import restart as restart_flow
from obfleet.records import obproxy as records
from obfleet.services.obproxy_operations import submit_on
from obfleet.services.users import Principal
from obfleet.store.models.obproxy import ObproxyStatus


def restart(session: Session, cluster_id: int, obproxy_ids: list[int], principal: Principal) -> int:
    """Mark the obproxies RESTARTING and submit "Restart obproxy"; returns the task id. Allowed
    from RUNNING and UNAVAILABLE: restarting is how a crashed obproxy comes back."""
    cluster = records.get(session, cluster_id)
    rows = records.obproxies_of(session, cluster_id, obproxy_ids)
    flow = restart_flow.build(cluster, rows)
    return submit_on(session, flow, cluster_id, rows, ObproxyStatus.RESTARTING, principal)
