"""An OBProxy cluster's parameters: changing them (an extension: OCP's UI can, its API cannot)
and showing the value each obproxy really has (OCP's GET clusters/{id}/parameters).

**Changing.** `update` takes `startupParameters` and/or `parameters` entries. By default (merge,
OCP's console behaviour) only the parameters named change: an entry with a value sets it, one
with value None (`reset: true`) takes it out of the cluster's lists so it goes back to OBProxy's
default; a runtime parameter reset that obfleet had not set is put back to its default on the
obproxies and stays unrecorded (a startup one is refused: obfleet never put it on the command
line). `replace=True` (`mode=replace`) is the old form: a list given replaces the recorded one.
The resulting lists are validated exactly as a cluster create validates them
(`obproxy_clusters.check_parameters`), against the version of every obproxy of the cluster. The
request records the lists, raises the cluster's parameter version when they changed, marks
every obproxy of the cluster (refused with 21003 while any is busy in another operation, so no
install, restart or other change can interleave) and submits "Update obproxy parameter"
(flows/obproxy/parameters.py): runtime changes are set on every obproxy in parallel; a startup
change restarts them one at a time. The same values sent again change nothing in the record,
and the task sets them again wherever an obproxy drifted.

**Showing.** `cluster_parameters` reads every obproxy's `show proxyconfig` at once (with a short
timeout) and lists each parameter set through obfleet or shown by an obproxy at another value
than OBProxy's default for that obproxy's version (``every``: each parameter of the versions
the cluster runs); passwords never. `value_string` is the recorded value, else the most shared
live value, else the default; `values` groups the obproxies by the value each shows, and `drift`
says whether one shows another value than `value_string`. An obproxy that cannot be read is
shown in a group of its own with value None and `error` saying why; one that does not show the
parameter (another version) in a group with value None and no error.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy.orm import Session

from obfleet.errors import bad_request
from obfleet.flows.obproxy import parameters as parameters_flow
from obfleet.obproxy import catalog
from obfleet.obproxy.admin import AdminError, ProxysysClient
from obfleet.obproxy.parameter_lists import Pairs, ParameterLists
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

# One entry of a change: a value, or None for "back to OBProxy's default" (a reset).
Change = tuple[str, str | None]


def _versions(rows: list[ObproxyServer]) -> list[str | None]:
    """Every version the cluster's obproxies run (None: no obproxy yet, any version)."""
    return [*sorted({row.version for row in rows if row.version})] or [None]


def _validated(
    versions: list[str | None], startup: list[tuple[str, str]], runtime: list[tuple[str, str]]
) -> ParameterLists:
    """The lists as create validates them, for every version the cluster's obproxies run."""
    for version in versions:
        checked = obproxy_clusters.check_parameters(startup, runtime, version)
    return ParameterLists(tuple(checked[0]), tuple(checked[1]))


def _checked(versions: list[str | None], changes: list[Change], *, startup: bool) -> list[Change]:
    """The entries of one list of a change, each name known to every version and in the right
    list, each value valid, and no parameter obfleet manages itself."""
    field = catalog.STARTUP_FIELD if startup else catalog.RUNTIME_FIELD
    for version in versions:
        try:
            checked = catalog.validate_changes(
                changes, startup=startup, field=field, version=version
            )
        except catalog.ParameterError as exc:
            raise bad_request(str(exc)) from exc
        obproxy_clusters.refuse_managed([name for name, _ in checked], version)
    return checked


def _merged(
    versions: list[str | None], recorded: Pairs, changes: list[Change] | None, *, startup: bool
) -> tuple[list[tuple[str, str]], list[str]]:
    """The recorded list with the change applied, and the parameters reset that obfleet had not
    set (they go back to their default on the obproxies, and stay unrecorded)."""
    merged = dict(recorded)
    if changes is None:
        return list(merged.items()), []
    unrecorded = []
    for name, value in _checked(versions, changes, startup=startup):
        if value is not None:
            merged[name] = value
        elif merged.pop(name, None) is None:
            unrecorded.append(name)
    if startup and unrecorded:
        raise bad_request(
            f"{catalog.STARTUP_FIELD}: {', '.join(repr(n) for n in unrecorded)} not set through "
            "obfleet, so not on the obproxies' command line: only a startup parameter obfleet "
            "set can be reset"
        )
    return list(merged.items()), unrecorded


def _replaced(
    versions: list[str | None],
    before: ParameterLists,
    startup: list[Change] | None,
    runtime: list[Change] | None,
) -> ParameterLists:
    """mode=replace: a list given replaces the recorded one (a reset has no meaning there)."""
    lists = []
    for changes, recorded in ((startup, before.startup), (runtime, before.runtime)):
        if changes is not None and any(value is None for _, value in changes):
            raise bad_request("mode=replace takes values only: leave a parameter out to reset it")
        given = [(name, value) for name, value in changes or () if value is not None]
        lists.append(list(recorded) if changes is None else given)
    return _validated(versions, lists[0], lists[1])


def update(
    session: Session,
    cluster_id: int,
    *,
    startup: list[Change] | None,
    runtime: list[Change] | None,
    replace: bool,
    principal: Principal,
) -> int:
    """Record the changed lists and submit "Update obproxy parameter"; returns the task id."""
    records.get(session, cluster_id)
    # Locked: two changes of one cluster (with no obproxies to lock) must not both start from
    # the same version.
    cluster = session.get(ObproxyCluster, cluster_id, with_for_update=True, populate_existing=True)
    assert cluster is not None
    if startup is None and runtime is None:
        raise bad_request("give parameters, startupParameters or both")
    rows = records.obproxies_of(session, cluster_id, [row.id for row in cluster.obproxies])
    versions = _versions(rows)
    before = ParameterLists.of(cluster.startup_parameters, cluster.parameters)
    resets: list[str] = []
    if replace:
        after = _replaced(versions, before, startup, runtime)
    else:
        new_startup, _ = _merged(versions, before.startup, startup, startup=True)
        new_runtime, resets = _merged(versions, before.runtime, runtime, startup=False)
        after = _validated(versions, new_startup, new_runtime)
    old_version = cluster.parameter_version
    if after != before:
        cluster.startup_parameters = [{"name": n, "value": v} for n, v in after.startup]
        cluster.parameters = [{"name": n, "value": v} for n, v in after.runtime]
        cluster.parameter_version = old_version + 1
    flow = parameters_flow.build(cluster, rows, before, after, old_version, resets)
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


@dataclass(frozen=True)
class ValueGroup:
    """The obproxies that show one value; value None with an error for one that could not be
    read, without for those that do not know the parameter (another version)."""

    value: str | None
    obproxies: list[str]
    error: str | None = None


@dataclass(frozen=True)
class ClusterParameter:
    """One parameter of a cluster as its obproxies show it (OCP's ObproxyClusterParameter)."""

    name: str
    description: str
    need_reboot: bool
    value_string: str
    values: list[ValueGroup]
    drift: bool  # an obproxy that was read shows another value than value_string


def _groups(name: str, seen: dict[int, Seen], labels: dict[int, str]) -> list[ValueGroup]:
    """The obproxies grouped by the value each shows, the most shared value first (then by
    value); the obproxies that could not be read last, one entry each, with the reason."""
    groups: dict[str | None, list[str]] = {}
    failures: list[ValueGroup] = []
    for server_id, label in labels.items():
        what = seen.get(server_id, Seen(None, "not read"))
        if what.values is None:
            failures.append(ValueGroup(None, [label], what.error))
        else:
            groups.setdefault(what.values.get(name), []).append(label)
    ordered = sorted(groups.items(), key=lambda g: (-len(g[1]), g[0] is None, g[0] or ""))
    return [ValueGroup(value, members) for value, members in ordered] + failures


def _info(name: str, versions: list[str | None]) -> catalog.ParameterInfo | None:
    """The entry of the newest version the cluster runs that has it, else the newest entry."""
    for version in sorted(versions, key=_version_order, reverse=True):
        found = catalog.get(name, version)
        if found is not None:
            return found
    return catalog.get(name)


def _version_order(version: str | None) -> tuple[int, ...]:
    return () if version is None else catalog.parse_version(version)


def _readable(version: str | None) -> str | None:
    """The version if the catalog can read it; None (the newest entries) otherwise."""
    if version is None:
        return None
    try:
        catalog.parse_version(version)
    except ValueError:
        return None
    return version


def _differs(cluster: ObproxyCluster, seen: dict[int, Seen]) -> set[str]:
    """The parameters an obproxy that was read shows at another value than OBProxy's default
    for its version (passwords never: their values are not shown)."""
    differ = set()
    for row in cluster.obproxies:
        shown = seen.get(row.id, Seen(None)).values or {}
        for name, value in shown.items():
            info = catalog.get(name, _readable(row.version))
            if info and not info.secret and not catalog.same_value(info, value, info.default_value):
                differ.add(name)
    return differ


def _parameter(
    name: str, recorded: dict[str, str], versions: list[str | None], groups: list[ValueGroup]
) -> ClusterParameter:
    info = _info(name, versions)
    shown = [g.value for g in groups if g.value is not None]
    value_string = recorded.get(name, shown[0] if shown else info.default_value if info else "")
    return ClusterParameter(
        name=name,
        description=info.description if info else "",
        need_reboot=bool(info and info.need_restart),
        value_string=value_string,
        # On no obproxy yet: the value the cluster will give them.
        values=groups or [ValueGroup(value_string, [])],
        drift=info is not None
        and any(not catalog.same_value(info, value, value_string) for value in shown),
    )


def cluster_parameters(
    cluster: ObproxyCluster, box: SecretBox | None, *, every: bool = False
) -> list[ClusterParameter]:
    """Each parameter set through obfleet or that an obproxy shows at another value than its
    default (``every``: each parameter of the versions the cluster runs), by name, as each
    obproxy shows it now (without the secret box nothing can be read: every obproxy is shown
    unread)."""
    labels = _labels(cluster)
    session = Session.object_session(cluster)
    seen = {} if box is None or session is None else read_live(session, box, cluster)
    recorded = {p["name"]: p["value"] for p in cluster.startup_parameters + cluster.parameters}
    versions = [_readable(version) for version in _versions(list(cluster.obproxies))]
    names = set(recorded) | _differs(cluster, seen)
    if every:
        names |= {
            info.name
            for version in versions
            for info in catalog.catalog(version)
            if not info.secret
        }
    return [
        _parameter(name, recorded, versions, _groups(name, seen, labels)) for name in sorted(names)
    ]
