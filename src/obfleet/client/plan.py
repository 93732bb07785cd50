"""From a fleet file and what obfleet has now, the changes that make them agree, in the order
they must happen: record OceanBase clusters, add hosts, then per OBProxy cluster create it or
add obproxies, link, change parameters, upgrade; deletions (`prune`) last.

Each change is one API call; the ones that start tasks are watched to their end before the next
is made, because obfleet refuses a second task on a cluster that is busy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from obfleet.client.api import Api
from obfleet.client.packages import NoPackage, newest, obproxy_packages
from obfleet.client.spec import FleetSpec, HostSpec, ObClusterSpec, ObproxyClusterSpec

CLUSTERS = "/api/v2/obproxy/clusters"


@dataclass
class State:
    """What obfleet has now, as the API shows it."""

    ob_clusters: dict[str, dict[str, Any]]
    hosts: dict[str, dict[str, Any]]  # by address
    credentials: dict[str, dict[str, Any]]
    packages: list[dict[str, Any]]  # the uploaded OBProxy packages
    clusters: dict[str, dict[str, Any]]
    parameters: dict[str, dict[str, str]] = field(default_factory=dict)  # cluster -> name -> value

    @classmethod
    def read(cls, api: Api, names: list[str]) -> State:
        clusters = {c["name"]: c for c in api.every(CLUSTERS)}
        state = cls(
            ob_clusters={c["name"]: c for c in api.every("/api/v2/ob/clusters")},
            hosts={h["innerIpAddress"]: h for h in api.every("/api/v2/compute/hosts")},
            credentials={c["name"]: c for c in api.every("/api/v2/credentials")},
            packages=obproxy_packages(api),
            clusters=clusters,
        )
        for name in names:
            if name in clusters:
                params = api.get(f"{CLUSTERS}/{clusters[name]['id']}/parameters")["contents"]
                state.parameters[name] = {p["name"]: p["valueString"] for p in params}
        return state


@dataclass
class Change:
    """One step of the plan: what it does (for people) and the call that does it, which
    answers with the tasks it started."""

    kind: str  # create, add, link, parameters, upgrade, delete, unlink, record
    text: str
    call: Callable[[Api, State], list[dict[str, Any]]]


class PlanError(Exception):
    """The file names something that does not exist and that apply cannot make."""


def _credential(state: State, name: str, target: str) -> int:
    found = state.credentials.get(name)
    if found is None or found["targetType"] != target:
        raise PlanError(f"no {target} credential '{name}' (add it: obfleet credential add)")
    return int(found["id"])


def _package(state: State, version: str | None) -> dict[str, Any] | None:
    """The uploaded package whose version-buildNumber is `version` (None: none is pinned)."""
    if version is None:
        return None
    for package in state.packages:
        if f"{package['version']}-{package['buildNumber']}" == version:
            return package
    shown = ", ".join(sorted(f"{p['version']}-{p['buildNumber']}" for p in state.packages))
    raise PlanError(f"no uploaded OBProxy package {version} (uploaded: {shown or 'none'})")


def _to_install(state: State, spec: ObproxyClusterSpec, addresses: list[str]) -> dict[str, Any]:
    """What new obproxies on `addresses` get: the pinned version, else the newest upload."""
    pinned = _package(state, spec.version)
    if pinned is not None:
        return pinned
    # Hosts this apply adds are not known yet: their architecture cannot pick a build.
    architectures = {state.hosts.get(a, {}).get("architecture") or "" for a in addresses}
    try:
        return newest(state.packages, architectures)
    except NoPackage as exc:
        raise PlanError(f"{spec.name}: {exc} (version in the file)") from exc


def _record_ob(spec: ObClusterSpec, state: State) -> Change:
    credential = _credential(state, spec.proxyroCredential, "OB_CLUSTER")

    def call(api: Api, _: State) -> list[dict[str, Any]]:
        servers = []
        for text in spec.rootServers:
            ip, rpc, sql, *role = text.split(":")
            servers.append(
                {"address": f"{ip}:{rpc}", "sqlPort": int(sql), "role": (role or ["FOLLOWER"])[0]}
            )
        body: dict[str, Any] = {
            "name": spec.name,
            "obClusterId": spec.obClusterId,
            "rootServers": servers,
            "proxyroCredentialId": credential,
        }
        if spec.obVersion:
            body["obVersion"] = spec.obVersion
        api.post("/api/v2/ob/clusters/import", body)
        return []

    return Change("record", f"record OceanBase cluster {spec.name}", call)


def _add_hosts(specs: list[HostSpec], state: State) -> list[Change]:
    """New hosts, one batchCreate per credential and SSH port."""
    groups: dict[tuple[str, int, str], list[str]] = {}
    for host in specs:
        if host.address not in state.hosts:
            groups.setdefault((host.credential, host.sshPort, host.kind), []).append(host.address)
    changes = []
    for (credential, port, kind), addresses in groups.items():
        credential_id = _credential(state, credential, "HOST")
        body = {
            "hostBasicDataList": [{"innerIpAddress": a} for a in addresses],
            "sshPort": port,
            "kind": kind,
            "credentialId": credential_id,
        }

        def call(api: Api, _: State, body: dict[str, Any] = body) -> list[dict[str, Any]]:
            return list(api.post("/api/v2/compute/hosts/batchCreate", body)["contents"])

        changes.append(Change("add", f"add hosts {', '.join(addresses)}", call))
    return changes


def _install(
    state: State, spec: ObproxyClusterSpec, addresses: list[str], package: dict[str, Any]
) -> dict[str, Any]:
    """Where and what to install: the body of batchAdd, and create's obproxyInstallParam."""
    return {
        "hostIds": [state.hosts[a]["id"] for a in addresses],
        "sqlPort": spec.sqlPort,
        "exporterPort": spec.exporterPort,
        "version": package["fileName"],
    }


def _links(state: State, names: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "clusterName": n,
            "obClusterId": state.ob_clusters[n]["obClusterId"],
            "username": "proxyro",
        }
        for n in names
    ]


def _pairs(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in values.items()]


def _create(spec: ObproxyClusterSpec, state: State) -> Change:
    package = _to_install(state, spec, spec.hosts)

    def call(api: Api, now: State) -> list[dict[str, Any]]:
        install = _install(now, spec, spec.hosts, package)
        body = {
            "name": spec.name,
            "workMode": spec.mode,
            "obLinks": _links(now, spec.obClusters),
            "obproxyInstallParam": install,
            "startupParameters": _pairs(spec.startupParameters),
            "parameters": _pairs(spec.parameters),
        }
        return [api.post(CLUSTERS, body)]

    where = f"{', '.join(spec.hosts)} with {package['fileName']}"
    return Change("create", f"create OBProxy cluster {spec.name} on {where}", call)


def _cluster_changes(spec: ObproxyClusterSpec, state: State, prune: bool) -> list[Change]:
    """What makes an existing cluster match its spec."""
    cluster = state.clusters[spec.name]
    cid = cluster["id"]
    changes = []
    running = {p["ip"]: p for p in cluster["obproxies"]}
    new_hosts = [h for h in spec.hosts if h not in running]
    pinned = _package(state, spec.version)  # only a pinned version upgrades obproxies
    if new_hosts:
        package = _to_install(state, spec, new_hosts)

        def add(api: Api, now: State) -> list[dict[str, Any]]:
            body = _install(now, spec, new_hosts, package)
            return list(api.post(f"{CLUSTERS}/{cid}/obproxies/batchAdd", body)["contents"])

        where = f"{', '.join(new_hosts)} with {package['fileName']}"
        changes.append(Change("add", f"add obproxies to {spec.name} on {where}", add))
    linked = {link["clusterName"] for link in cluster["obLinks"]}
    missing = [n for n in spec.obClusters if n not in linked]
    if missing:

        def link(api: Api, now: State) -> list[dict[str, Any]]:
            api.post(f"{CLUSTERS}/{cid}/obLinks/batchAdd", _links(now, missing))
            return []

        changes.append(Change("link", f"link {spec.name} to {', '.join(missing)}", link))
    changes += _parameter_changes(spec, cid, state.parameters.get(spec.name, {}))
    if pinned is not None:
        stale = [
            p
            for p in cluster["obproxies"]
            if p["ip"] in spec.hosts and p["version"] != spec.version
        ]
        if stale:
            changes.append(_upgrade(spec, cid, pinned, stale))
    if prune:
        changes += _prune_in_cluster(spec, cluster)
    return changes


def _parameter_changes(
    spec: ObproxyClusterSpec, cid: int, recorded: dict[str, str]
) -> list[Change]:
    """One parameter change for the lists with a value that differs. Each changed list is
    sent whole, so the call means the same whether the server merges or replaces it."""
    body: dict[str, Any] = {}
    changed: list[str] = []
    for key, wanted in (
        ("startupParameters", spec.startupParameters),
        ("parameters", spec.parameters),
    ):
        diff = [f"{k}={v}" for k, v in wanted.items() if recorded.get(k) != v]
        if diff:
            body[key] = _pairs(wanted)
            changed += diff
    if not body:
        return []

    def call(api: Api, _: State) -> list[dict[str, Any]]:
        return [api.put(f"{CLUSTERS}/{cid}/parameters", body)]

    return [Change("parameters", f"set parameters of {spec.name}: {', '.join(changed)}", call)]


def _upgrade(
    spec: ObproxyClusterSpec, cid: int, package: dict[str, Any], stale: list[dict[str, Any]]
) -> Change:
    ids = ",".join(str(p["id"]) for p in stale)
    short = f"{package['name']}-{package['version']}-{package['buildNumber']}"

    def call(api: Api, _: State) -> list[dict[str, Any]]:
        return [api.post(f"{CLUSTERS}/{cid}/obproxies/{ids}/upgrade", {"shortRpmName": short})]

    where = ", ".join(f"{p['ip']} ({p['version']})" for p in stale)
    return Change("upgrade", f"upgrade {spec.name} to {spec.version} on {where}", call)


def _prune_in_cluster(spec: ObproxyClusterSpec, cluster: dict[str, Any]) -> list[Change]:
    cid = cluster["id"]
    changes = []
    extra = [p for p in cluster["obproxies"] if p["ip"] not in spec.hosts]
    if extra:
        ids = ",".join(str(p["id"]) for p in extra)

        def delete(api: Api, _: State) -> list[dict[str, Any]]:
            return [api.delete(f"{CLUSTERS}/{cid}/obproxies/{ids}")]

        where = ", ".join(p["ip"] for p in extra)
        changes.append(Change("delete", f"delete obproxies of {spec.name} on {where}", delete))
    for link in cluster["obLinks"]:
        if link["clusterName"] not in spec.obClusters:
            name = link["clusterName"]

            def unlink(api: Api, _: State, name: str = name) -> list[dict[str, Any]]:
                api.delete(f"{CLUSTERS}/{cid}/obLinks/{name}")
                return []

            changes.append(Change("unlink", f"unlink {spec.name} from {name}", unlink))
    return changes


def _delete_cluster(cluster: dict[str, Any]) -> Change:
    def call(api: Api, _: State) -> list[dict[str, Any]]:
        return [api.delete(f"{CLUSTERS}/{cluster['id']}")]

    return Change("delete", f"delete OBProxy cluster {cluster['name']}", call)


def plan(fleet: FleetSpec, state: State, prune: bool) -> list[Change]:
    """The changes, in order; none when obfleet already matches the file."""
    known_ob = set(state.ob_clusters) | {o.name for o in fleet.obClusters}
    known_hosts = set(state.hosts) | {h.address for h in fleet.hosts}
    for spec in fleet.obproxyClusters:
        for name in spec.obClusters:
            if name not in known_ob:
                raise PlanError(
                    f"{spec.name}: no OceanBase cluster '{name}' (add it to obClusters)"
                )
        for address in spec.hosts:
            if address not in known_hosts:
                raise PlanError(f"{spec.name}: no host {address} (add it to hosts)")
    changes = [_record_ob(o, state) for o in fleet.obClusters if o.name not in state.ob_clusters]
    changes += _add_hosts(fleet.hosts, state)
    for spec in fleet.obproxyClusters:
        if spec.name in state.clusters:
            changes += _cluster_changes(spec, state, prune)
        else:
            changes.append(_create(spec, state))
    if prune:
        named = {c.name for c in fleet.obproxyClusters}
        changes += [_delete_cluster(c) for n, c in state.clusters.items() if n not in named]
    return changes
