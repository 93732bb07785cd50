"""`obfleet cluster ...` (OBProxy clusters) and `obfleet obproxy ...` (their instances)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from obfleet.client.output import Format, emit
from obfleet.client.packages import NoPackage, newest, obproxy_packages
from obfleet.client.session import (
    OutputOpt,
    ProfileOpt,
    WaitOpt,
    connect,
    credential_id,
    fail,
    host_ids,
    hosts_named,
    ob_cluster,
    obproxy_cluster,
    pairs,
    started,
)

cluster_app = typer.Typer(help="OBProxy clusters: create, inspect, change, delete.")
obproxy_app = typer.Typer(help="OBProxy instances of a cluster: add, take over, delete.")

CLUSTERS = "/api/v2/obproxy/clusters"
COLUMNS = ("id", "name", "workMode", "obproxies", "versions", "obLinks")

ClusterArg = Annotated[str, typer.Argument(help="OBProxy cluster name or id.")]
HostsOpt = Annotated[
    list[str], typer.Option("--host", help="A host's address or id (repeat for several).")
]
# The server needs both ports named; these defaults are a fleet file's (spec.py).
SqlPortOpt = Annotated[int, typer.Option(help="SQL port.")]
ExporterPortOpt = Annotated[int, typer.Option(help="Prometheus exporter port.")]
VersionOpt = Annotated[
    str | None,
    typer.Option(
        help="Package to install, e.g. obproxy-ce-4.2.3.0-3.el7.x86_64.rpm "
        "(default: the newest uploaded)."
    ),
]


def summary(cluster: dict[str, Any]) -> dict[str, Any]:
    """A cluster as one table row."""
    return {
        **cluster,
        "obproxies": ", ".join(
            f"{p['ip']}:{p['sqlPort']} {p['status']}" for p in cluster["obproxies"]
        ),
        "versions": ", ".join(f"{v['version']} x{v['count']}" for v in cluster["versions"]),
        "obLinks": ", ".join(link["clusterName"] for link in cluster["obLinks"]),
    }


@cluster_app.command("list")
def cluster_list(profile: ProfileOpt = None, output: OutputOpt = Format.table) -> None:
    """List OBProxy clusters.

    Example: obfleet cluster list -o json
    """
    with connect(profile) as api:
        clusters = api.every(CLUSTERS)
    emit(
        clusters if output is not Format.table else [summary(c) for c in clusters], output, COLUMNS
    )


@cluster_app.command("show")
def cluster_show(
    cluster: ClusterArg,
    profile: ProfileOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """Show one OBProxy cluster with its obproxies and links.

    Example: obfleet cluster show proxy1 -o yaml
    """
    with connect(profile) as api:
        found = obproxy_cluster(api, cluster)
    if output is Format.table:
        columns = (*COLUMNS[:3], "configUrl", "address", "port", *COLUMNS[3:])
        emit(summary(found), output, columns)
    else:
        emit(found, output)


def links(api: Any, names: list[str]) -> list[dict[str, Any]]:
    """obLinks for OceanBase cluster names (or ids) as the API takes them."""
    found = [ob_cluster(api, name) for name in names]
    return [
        {"clusterName": ob["name"], "obClusterId": ob["obClusterId"], "username": "proxyro"}
        for ob in found
    ]


@cluster_app.command("create")
def cluster_create(
    name: Annotated[str, typer.Argument(help="Name of the new OBProxy cluster.")],
    ob_cluster_names: Annotated[
        list[str], typer.Option("--ob-cluster", help="OceanBase cluster to link (repeatable).")
    ],
    hosts: HostsOpt,
    mode: Annotated[str, typer.Option(help="CONFIG_URL or RS_LIST.")] = "CONFIG_URL",
    sql_port: SqlPortOpt = 2883,
    exporter_port: ExporterPortOpt = 2884,
    version: VersionOpt = None,
    startup: Annotated[
        list[str] | None, typer.Option(help="Startup parameter name=value (repeatable).")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option(help="Runtime parameter name=value (repeatable).")
    ] = None,
    wait: WaitOpt = False,
    profile: ProfileOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """Create an OBProxy cluster and install OBProxy on its hosts.

    Example: obfleet cluster create proxy1 --ob-cluster ob1 --host 10.0.0.1 --host 10.0.0.2
    --sql-port 2883 --param syslog_level=WARN --wait
    """
    with connect(profile) as api:
        body = {
            "name": name,
            "workMode": mode,
            "obLinks": links(api, ob_cluster_names),
            "obproxyInstallParam": install_param(api, hosts, sql_port, exporter_port, version),
            "startupParameters": pairs(startup or []),
            "parameters": pairs(param or []),
        }
        started(api, [api.post(CLUSTERS, body)], wait, output)


def install_param(
    api: Any, hosts: list[str], sql_port: int, exporter_port: int, version: str | None
) -> dict[str, Any]:
    """Where and what to install; without a version, the newest uploaded package (the server
    needs one named)."""
    chosen = hosts_named(api, hosts)
    if version is None:
        architectures = {host.get("architecture") or "" for host in chosen}
        try:
            version = newest(obproxy_packages(api), architectures)["fileName"]
        except NoPackage as exc:
            fail(f"{exc} (--version)")
    return {
        "hostIds": [host["id"] for host in chosen],
        "sqlPort": sql_port,
        "exporterPort": exporter_port,
        "version": version,
    }


@cluster_app.command("delete")
def cluster_delete(
    cluster: ClusterArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    wait: WaitOpt = False,
    profile: ProfileOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """Delete an OBProxy cluster: stop and uninstall its obproxies, then forget it.

    Example: obfleet cluster delete proxy1 --yes --wait
    """
    with connect(profile) as api:
        found = obproxy_cluster(api, cluster)
        if not yes:
            typer.confirm(f"Delete OBProxy cluster {found['name']}?", abort=True, err=True)
        started(api, [api.delete(f"{CLUSTERS}/{found['id']}")], wait, output)


def _obproxy_ids(cluster: dict[str, Any], refs: list[str]) -> str:
    """Comma-joined ids of the cluster's obproxies named by id or address (all when none)."""
    chosen = [
        p["id"] for p in cluster["obproxies"] if not refs or str(p["id"]) in refs or p["ip"] in refs
    ]
    if not chosen or (refs and len(chosen) < len(refs)):
        fail(f"no such obproxies in {cluster['name']}: {', '.join(refs) or 'none at all'}")
    return ",".join(str(i) for i in chosen)


ObproxiesOpt = Annotated[
    list[str] | None,
    typer.Option("--obproxy", help="Only this obproxy (id or address; repeatable). Default: all."),
]


@cluster_app.command("restart")
def cluster_restart(
    cluster: ClusterArg,
    obproxy: ObproxiesOpt = None,
    wait: WaitOpt = False,
    profile: ProfileOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """Restart a cluster's obproxies, one at a time.

    Example: obfleet cluster restart proxy1 --obproxy 10.0.0.2 --wait
    """
    with connect(profile) as api:
        found = obproxy_cluster(api, cluster)
        ids = _obproxy_ids(found, obproxy or [])
        started(api, [api.post(f"{CLUSTERS}/{found['id']}/obproxies/{ids}/restart")], wait, output)


@cluster_app.command("upgrade")
def cluster_upgrade(
    cluster: ClusterArg,
    package: Annotated[
        str | None,
        typer.Option(help="name-version-build, e.g. obproxy-ce-4.2.3.0-3 (default: newest)."),
    ] = None,
    obproxy: ObproxiesOpt = None,
    wait: WaitOpt = False,
    profile: ProfileOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """Upgrade a cluster's obproxies to another uploaded package.

    Example: obfleet cluster upgrade proxy1 --package obproxy-ce-4.2.3.0-3 --wait
    """
    with connect(profile) as api:
        found = obproxy_cluster(api, cluster)
        ids = _obproxy_ids(found, obproxy or [])
        path = f"{CLUSTERS}/{found['id']}/obproxies/{ids}/upgrade"
        body = {"shortRpmName": package} if package else None
        started(api, [api.post(path, body)], wait, output)


@cluster_app.command("params")
def cluster_params(
    cluster: ClusterArg,
    profile: ProfileOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """Show a cluster's recorded parameters and the values its obproxies report.

    Example: obfleet cluster params proxy1
    """
    with connect(profile) as api:
        found = obproxy_cluster(api, cluster)
        params = api.get(f"{CLUSTERS}/{found['id']}/parameters")["contents"]
    emit(params, output, ("name", "valueString", "needReboot", "values"))


@cluster_app.command("set-param")
def cluster_set_param(
    cluster: ClusterArg,
    assignments: Annotated[list[str], typer.Argument(help="name=value, one or more.")],
    startup: Annotated[
        bool, typer.Option(help="They are startup parameters (the obproxies restart).")
    ] = False,
    wait: WaitOpt = False,
    profile: ProfileOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """Change the named parameters of a cluster (the others stay as they are).

    Example: obfleet cluster set-param proxy1 syslog_level=INFO proxy_mem_limited=2GB --wait
    """
    key = "startupParameters" if startup else "parameters"
    with connect(profile) as api:
        found = obproxy_cluster(api, cluster)
        task = api.put(f"{CLUSTERS}/{found['id']}/parameters", {key: pairs(assignments)})
        started(api, [task], wait, output)


@cluster_app.command("link")
def cluster_link(
    cluster: ClusterArg,
    ob_clusters: Annotated[list[str], typer.Argument(help="OceanBase cluster names.")],
    profile: ProfileOpt = None,
) -> None:
    """Let an OBProxy cluster route to more OceanBase clusters.

    Example: obfleet cluster link proxy1 ob2
    """
    with connect(profile) as api:
        found = obproxy_cluster(api, cluster)
        api.post(f"{CLUSTERS}/{found['id']}/obLinks/batchAdd", links(api, ob_clusters))
    typer.echo(f"linked {found['name']} to {', '.join(ob_clusters)}", err=True)


@cluster_app.command("unlink")
def cluster_unlink(
    cluster: ClusterArg,
    ob_cluster_name: Annotated[str, typer.Argument(help="OceanBase cluster name.")],
    profile: ProfileOpt = None,
) -> None:
    """Stop routing an OBProxy cluster to an OceanBase cluster.

    Example: obfleet cluster unlink proxy1 ob2
    """
    with connect(profile) as api:
        found = obproxy_cluster(api, cluster)
        api.delete(f"{CLUSTERS}/{found['id']}/obLinks/{ob_cluster_name}")
    typer.echo(f"unlinked {ob_cluster_name} from {found['name']}", err=True)


@obproxy_app.command("add")
def obproxy_add(
    cluster: ClusterArg,
    hosts: HostsOpt,
    sql_port: SqlPortOpt = 2883,
    exporter_port: ExporterPortOpt = 2884,
    version: VersionOpt = None,
    wait: WaitOpt = False,
    profile: ProfileOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """Install OBProxy on more hosts of a cluster (one task per host).

    Example: obfleet obproxy add proxy1 --host 10.0.0.3 --wait
    """
    with connect(profile) as api:
        found = obproxy_cluster(api, cluster)
        body = install_param(api, hosts, sql_port, exporter_port, version)
        tasks = api.post(f"{CLUSTERS}/{found['id']}/obproxies/batchAdd", body)["contents"]
        started(api, tasks, wait, output)


@obproxy_app.command("takeover")
def obproxy_takeover(
    cluster: ClusterArg,
    hosts: HostsOpt,
    sql_port: Annotated[int, typer.Option(help="SQL port the running OBProxy listens on.")],
    proxysys_credential: Annotated[
        str | None,
        typer.Option(help="OBPROXY credential with its current root@proxysys password."),
    ] = None,
    wait: WaitOpt = False,
    profile: ProfileOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """Adopt OBProxies already running on hosts into a cluster.

    Example: obfleet obproxy takeover proxy1 --host 10.0.0.4 --sql-port 2883 --wait
    """
    with connect(profile) as api:
        found = obproxy_cluster(api, cluster)
        extra = (
            {"proxysysCredentialId": credential_id(api, proxysys_credential)}
            if proxysys_credential
            else {}
        )
        body = {
            "hosts": [
                {"hostId": host_id, "sqlPort": sql_port, **extra}
                for host_id in host_ids(api, hosts)
            ]
        }
        tasks = api.post(f"{CLUSTERS}/{found['id']}/takeOver", body)["contents"]
        started(api, tasks, wait, output)


@obproxy_app.command("delete")
def obproxy_delete(
    cluster: ClusterArg,
    obproxies: Annotated[list[str], typer.Argument(help="Obproxy ids or addresses.")],
    wait: WaitOpt = False,
    profile: ProfileOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """Stop, uninstall and forget some obproxies of a cluster.

    Example: obfleet obproxy delete proxy1 10.0.0.3 --wait
    """
    with connect(profile) as api:
        found = obproxy_cluster(api, cluster)
        ids = _obproxy_ids(found, obproxies)
        started(api, [api.delete(f"{CLUSTERS}/{found['id']}/obproxies/{ids}")], wait, output)
