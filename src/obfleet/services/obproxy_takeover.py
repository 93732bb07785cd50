"""Taking over OBProxies that already run on hosts: found, checked and recorded; nothing is
installed or restarted.

`POST .../clusters/{id}/takeOver` with `hosts[{hostId, sqlPort}]` answers one "Take over
obproxy" task per host in `data.contents`, as batchAdd does (OCP's sample for this page is a
copy of batchAdd's; the name is obfleet's). The steps are in flows/obproxy/takeover.py.

Refused with nothing stored: an unknown cluster (21001) or host (7005), a host that is not
ONLINE (7004), a sqlPort outside 1025-65535 or listed twice, a (host, port) where an obproxy
is already recorded or that another recorded obproxy uses as its exporter port (409), or that an
unfinished (RUNNING or FAILED) install or take-over task already targets (409), OceanBase
clusters behind the OBProxy cluster without one shared proxyro password (400), and an
extension `proxysysCredentialId` that is not an OBPROXY credential (7601 / 400).

root@proxysys: obfleet logs in with the cluster's password; a taken-over OBProxy may have
another one. The task then tries the password of the OBPROXY credential the request gives for
that host (extension, `hosts[].proxysysCredentialId`: the secret never travels in the task),
then an empty one (OBProxy's default), and once the OBProxy is recorded gives it the cluster's
password (`alter proxyconfig set obproxy_sys_password`), so that it is managed like every other
obproxy of the cluster. A rollback sets the old one back.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from obfleet.engine.flow import TaskSubject, submit
from obfleet.errors import ApiError, ErrorCode, bad_request
from obfleet.flows.obproxy import takeover
from obfleet.records import credentials, host_access, ob_clusters, targets
from obfleet.records import obproxy as records
from obfleet.security.secrets import SecretBox
from obfleet.services import obproxy_instances as instances
from obfleet.services.users import Principal
from obfleet.store.models.obproxy import ObproxyCluster, ObproxyServer


@dataclass(frozen=True)
class TakeOverHost:
    host_id: int
    sql_port: int
    # Extension: an OBPROXY credential holding the OBProxy's current root@proxysys password.
    proxysys_credential_id: int | None = None


def _check(session: Session, hosts: list[TakeOverHost]) -> None:
    seen: set[tuple[int, int]] = set()
    for index, entry in enumerate(hosts):
        field = f"hosts[{index}]"
        instances.check_port(entry.sql_port, f"{field}.sqlPort")
        if (entry.host_id, entry.sql_port) in seen:
            raise bad_request(
                f"{field}: host {entry.host_id} port {entry.sql_port} is listed twice"
            )
        seen.add((entry.host_id, entry.sql_port))
        host = instances.check_host_online(session, entry.host_id, doing="taken over")
        taken = session.scalar(
            select(ObproxyServer).where(
                ObproxyServer.host_id == entry.host_id,
                or_(
                    ObproxyServer.sql_port == entry.sql_port,
                    ObproxyServer.exporter_port == entry.sql_port,
                ),
            )
        )
        if taken is not None:
            cluster = session.get(ObproxyCluster, taken.cluster_id)
            what = "SQL" if taken.sql_port == entry.sql_port else "exporter"
            raise ApiError(
                ErrorCode.CONFLICT,
                f"{field}: port {entry.sql_port} on {host.inner_ip_address} is the {what} port "
                f"of obproxy {taken.id} of OBProxy cluster "
                f"{cluster.name if cluster else taken.cluster_id}, already recorded",
            )
        instances.check_not_targeted(session, entry.host_id, entry.sql_port, field)
        if entry.proxysys_credential_id is not None:
            credentials.get(session, entry.proxysys_credential_id, "OBPROXY")


def _submit_one(
    session: Session, cluster: ObproxyCluster, entry: TakeOverHost, principal: Principal
) -> int:
    address = host_access.get_host(session, entry.host_id).inner_ip_address
    flow = takeover.build(
        cluster, entry.host_id, address, entry.sql_port, entry.proxysys_credential_id
    )
    return submit(
        session,
        flow,
        creator=principal.username,
        creator_id=principal.user_id,
        subject=TaskSubject(host_id=entry.host_id),
        targets=targets.new_obproxies(cluster.id, [entry.host_id], entry.sql_port),
    )


def take_over(
    session: Session,
    box: SecretBox,
    cluster_id: int,
    hosts: list[TakeOverHost],
    principal: Principal,
) -> list[int]:
    """Submit one "Take over obproxy" task per host entry; returns the task ids, in order."""
    cluster = records.get(session, cluster_id)
    if not hosts:
        raise bad_request("hosts: at least one host is required")
    _check(session, hosts)
    instances.check_proxyro(session, box, ob_clusters.linked(session, cluster))
    return [_submit_one(session, cluster, entry, principal) for entry in hosts]
