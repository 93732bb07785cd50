"""An OBProxy cluster's parameters: changing them (an extension: OCP's UI can, its API cannot)
and showing the value each obproxy really has (OCP's GET clusters/{id}/parameters).

**Changing.** `update` takes new `startupParameters` and/or `parameters` lists; a list left out
stays as recorded, a list given replaces the recorded one. Both are validated exactly as a
cluster create validates them (`obproxy_clusters.check_parameters`), against the version of
every obproxy of the cluster. The request records the lists, raises the cluster's parameter
version when they changed, marks every obproxy of the cluster (refused with 21003 while any is
busy in another operation, so no install, restart or other change can interleave) and submits
"Update obproxy parameter" (flows/obproxy/parameters.py): runtime changes are set on every
obproxy in parallel; a startup change restarts them one at a time. A parameter removed from a
list goes back to its default. The same lists sent again change nothing in the record, and the
task sets them again wherever an obproxy drifted.

**Showing.** `cluster_parameters` lists the recorded parameters in OCP's ObproxyClusterParameter
shape; `valueString` is the recorded value and `values` groups the obproxies by the value their
own `show proxyconfig` shows (read from all of them at once, with a short timeout), so drift is
visible as a second value. An obproxy that cannot be read is shown in an entry of its own with
`value: null` and `error` saying why; one that does not know the parameter (another version) in
an entry with `value: null` and no error.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from obfleet.errors import bad_request
from obfleet.flows.obproxy import parameters as parameters_flow
from obfleet.obproxy import catalog
from obfleet.obproxy.admin import AdminError, ProxysysClient
from obfleet.obproxy.parameter_lists import ParameterLists
from obfleet.records import credentials
from obfleet.records import obproxy as records
from obfleet.security.secrets import SecretBox
from obfleet.services import obproxy_clusters
from obfleet.services.obproxy_operations import submit_on
from obfleet.services.users import Principal
from obfleet.store.models.obproxy import ObproxyCluster, ObproxyServer

READ_TIMEOUT_S = 3.0  # per obproxy, for connect and for the answer
MAX_READERS = 32  # obproxies read at once


# --- changing ----------------------------------------------------------------------------------


def _validated(
    rows: list[ObproxyServer], startup: list[tuple[str, str]], runtime: list[tuple[str, str]]
) -> ParameterLists:
    """The lists as create validates them, for every version the cluster's obproxies run."""
    versions: list[str | None] = [*sorted({row.version for row in rows if row.version})]
    for version in versions or [None]:
        checked = obproxy_clusters.check_parameters(startup, runtime, version)
    return ParameterLists(tuple(checked[0]), tuple(checked[1]))


def update(
    session: Session,
    cluster_id: int,
    *,
    startup: list[tuple[str, str]] | None,
    runtime: list[tuple[str, str]] | None,
    principal: Principal,
) -> int:
    """Record the new lists and submit "Update obproxy parameter"; returns the task id."""
    records.get(session, cluster_id)
    # Locked: two changes of one cluster (with no obproxies to lock) must not both start from
    # the same version.
    cluster = session.get(ObproxyCluster, cluster_id, with_for_update=True, populate_existing=True)
    assert cluster is not None
    if startup is None and runtime is None:
        raise bad_request("give parameters, startupParameters or both")
    rows = records.obproxies_of(session, cluster_id, [row.id for row in cluster.obproxies])
    before = ParameterLists.of(cluster.startup_parameters, cluster.parameters)
    after = _validated(
        rows,
        list(before.startup) if startup is None else startup,
        list(before.runtime) if runtime is None else runtime,
    )
    old_version = cluster.parameter_version
    if after != before:
        cluster.startup_parameters = [{"name": n, "value": v} for n, v in after.startup]
        cluster.parameters = [{"name": n, "value": v} for n, v in after.runtime]
        cluster.parameter_version = old_version + 1
    flow = parameters_flow.build(cluster, rows, before, after, old_version)
    status = parameters_flow.status(before, after)
    return submit_on(session, flow, cluster_id, rows, status, principal)


# --- showing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """What one obproxy's `show proxyconfig` answered, or why it could not be read."""

    values: dict[str, str] | None
    error: str | None = None


def _clients(
    session: Session, box: SecretBox, cluster: ObproxyCluster
) -> dict[int, ProxysysClient | str]:
    """A root@proxysys client per obproxy, or the reason there is none."""
    if cluster.proxysys_credential_id is None:
        return dict.fromkeys((row.id for row in cluster.obproxies), "no root@proxysys credential")
    password = credentials.reveal(session, box, cluster.proxysys_credential_id).secret
    return {
        row.id: ProxysysClient(row.ip, row.sql_port, password, timeout=READ_TIMEOUT_S)
        for row in cluster.obproxies
    }


async def _read_one(client: ProxysysClient | str) -> Seen:
    if isinstance(client, str):
        return Seen(None, client)
    try:
        return Seen(await client.show_proxyconfig())
    except AdminError as exc:
        return Seen(None, str(exc))


async def _read_all(clients: dict[int, ProxysysClient | str]) -> dict[int, Seen]:
    # PyMySQL blocks: each read takes a thread of this loop's own pool, all at once.
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=min(MAX_READERS, len(clients)))
    )
    seen = await asyncio.gather(*(_read_one(client) for client in clients.values()))
    return dict(zip(clients, seen, strict=True))


def read_live(session: Session, box: SecretBox, cluster: ObproxyCluster) -> dict[int, Seen]:
    """Every obproxy's `show proxyconfig`, read concurrently; call it from a thread without a
    running event loop (a sync route runs in one)."""
    clients = _clients(session, box, cluster)
    if not clients:
        return {}
    return asyncio.run(_read_all(clients))


def _address_order(row: ObproxyServer) -> tuple[int, str, int]:
    try:
        return (int(ipaddress.ip_address(row.ip)), "", row.sql_port)
    except ValueError:
        return (-1, row.ip, row.sql_port)


def _labels(cluster: ObproxyCluster) -> dict[int, str]:
    """OCP lists obproxies by IP (by ip:sqlPort where two of the cluster share one), here in
    address order."""
    shared = Counter(row.ip for row in cluster.obproxies)
    return {
        row.id: row.ip if shared[row.ip] == 1 else f"{row.ip}:{row.sql_port}"
        for row in sorted(cluster.obproxies, key=_address_order)
    }


def _values(
    name: str, recorded: str, seen: dict[int, Seen], labels: dict[int, str]
) -> list[dict[str, Any]]:
    """The obproxies grouped by the value each shows, the most shared value first (then by
    value); the obproxies that could not be read last, one entry each, with the reason."""
    if not labels:
        return [{"value": recorded, "obproxies": []}]  # on no obproxy yet
    groups: dict[str | None, list[str]] = {}
    failures: list[dict[str, Any]] = []
    for server_id, label in labels.items():
        what = seen.get(server_id, Seen(None, "not read"))
        if what.values is None:
            failures.append({"value": None, "obproxies": [label], "error": what.error})
        else:
            groups.setdefault(what.values.get(name), []).append(label)
    ordered = sorted(groups.items(), key=lambda g: (-len(g[1]), g[0] is None, g[0] or ""))
    return [{"value": value, "obproxies": members} for value, members in ordered] + failures


def cluster_parameters(cluster: ObproxyCluster, box: SecretBox | None) -> list[dict[str, Any]]:
    """OCP's ObproxyClusterParameter for each recorded parameter; `values` as each obproxy
    shows it (without the secret box, nothing can be read: every obproxy is shown unread)."""
    labels = _labels(cluster)
    session = Session.object_session(cluster)
    if box is None or session is None:
        seen: dict[int, Seen] = {}
    else:
        seen = read_live(session, box, cluster)
    rows = []
    for item in cluster.startup_parameters + cluster.parameters:
        info = catalog.get(item["name"])
        rows.append(
            {
                "name": item["name"],
                "description": info.description if info else "",
                "needReboot": bool(info and info.need_restart),
                "values": _values(item["name"], item["value"], seen, labels),
                "valueString": item["value"],
            }
        )
    return rows
