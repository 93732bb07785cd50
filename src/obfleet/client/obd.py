"""OBD's config.yaml to a fleet file: the obproxy component (`obproxy-ce`, or `obproxy` in older
OBD) with its `servers`, `global` keys and per-server keys, the OceanBase cluster it depends on
(`depends: [oceanbase-ce]`) or, without one, its `rs_list` and `cluster_name`, and the SSH
`user` section. OBD's layout is described in its own example/ folder (oceanbase/obdeploy).

Secrets (passwords, keys) are never copied: the fleet file names credentials instead, and a
note says which to create. What obfleet cannot express (a per-server value that differs from
the cluster's) is reported as a note rather than silently dropped.
"""

from __future__ import annotations

from typing import Any

OBPROXY_COMPONENTS = ("obproxy-ce", "obproxy")
OCEANBASE_COMPONENTS = ("oceanbase-ce", "oceanbase")
HOST_CREDENTIAL = "obd-ssh"
PROXYRO_CREDENTIAL = "proxyro"
# Keys that say where and how OBD deploys, not OBProxy parameters.
DEPLOY_KEYS = {
    "home_path",
    "listen_port",
    "prometheus_listen_port",
    "rs_list",
    "cluster_name",
    "obproxy_config_server_url",
    "appname",
    "obproxy_sys_password",
    "observer_sys_password",
    "observer_root_password",
}
# Set by obfleet itself on every obproxy it starts.
OBFLEET_KEYS = {"skip_proxy_sys_private_check", "enable_metadb_used"}
# Read only when obproxy starts (given with -o on its command line).
STARTUP_KEYS = {
    "enable_strict_kernel_release",
    "enable_cluster_checkout",
    "proxy_id",
    "client_session_id_version",
    "proxy_service_mode",
    "rpc_listen_port",
}
SECRET_KEYS = {"obproxy_sys_password", "observer_sys_password", "observer_root_password"}


class ObdError(Exception):
    """The file is not an OBD config with an obproxy component."""


def _component(config: dict[str, Any], names: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    for name in names:
        if isinstance(config.get(name), dict):
            return name, config[name]
    return "", {}


def _servers(component: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, ip) of each server: OBD lists a bare ip, or {name, ip}."""
    result = []
    for item in component.get("servers") or []:
        if isinstance(item, str):
            result.append((item, item))
        elif isinstance(item, dict) and "ip" in item:
            result.append((str(item.get("name", item["ip"])), str(item["ip"])))
        else:
            raise ObdError(f"a server entry must be an ip or {{name, ip}}: {item!r}")
    return result


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _per_server_notes(component: dict[str, Any], servers: list[tuple[str, str]]) -> list[str]:
    glob = component.get("global") or {}
    notes = []
    for name, ip in servers:
        own = component.get(name) or component.get(ip) or {}
        for key, value in own.items():
            if key in glob and glob[key] == value:
                continue
            shown = "(secret)" if key in SECRET_KEYS else repr(value)
            notes.append(
                f"server {name}: {key}={shown} differs from the cluster's; obfleet keeps one "
                "value per cluster, so it is not converted"
            )
    return notes


def _ob_cluster(
    config: dict[str, Any], obproxy: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The OceanBase cluster to record: from the component obproxy depends on, else from
    rs_list and cluster_name."""
    glob = obproxy.get("global") or {}
    depends = obproxy.get("depends") or []
    name, ob = _component(config, tuple(d for d in depends if d in OCEANBASE_COMPONENTS))
    notes = []
    if ob:
        ob_glob = ob.get("global") or {}
        servers = []
        for i, (server_name, ip) in enumerate(_servers(ob)):
            own = {**ob_glob, **(ob.get(server_name) or {})}
            rpc, sql = own.get("rpc_port", 2882), own.get("mysql_port", 2881)
            servers.append(f"{ip}:{rpc}:{sql}:{'LEADER' if i == 0 else 'FOLLOWER'}")
        cluster_name = str(ob_glob.get("appname", "obcluster"))
        cluster_id = int(ob_glob.get("cluster_id", 1))
    else:
        rs_list = str(glob.get("rs_list", ""))
        if not rs_list:
            raise ObdError("obproxy has neither depends on an OceanBase component nor rs_list")
        servers = []
        for i, item in enumerate(p for p in rs_list.split(";") if p):
            ip, _, sql = item.partition(":")
            sql_port = int(sql or 2881)
            role = "LEADER" if i == 0 else "FOLLOWER"
            servers.append(f"{ip}:{sql_port + 1}:{sql_port}:{role}")
        notes.append("rs_list gives SQL ports only: RPC ports are taken as SQL port + 1")
        cluster_name = str(glob.get("cluster_name", "obcluster"))
        cluster_id = 1
        notes.append("OBD's obproxy config has no cluster_id: obClusterId 1 is assumed")
    notes.append(
        f"create the OB_CLUSTER credential '{PROXYRO_CREDENTIAL}' with proxyro's password "
        f"(obfleet credential add {PROXYRO_CREDENTIAL} --type OB_CLUSTER --username proxyro)"
    )
    spec = {
        "name": cluster_name,
        "obClusterId": cluster_id,
        "rootServers": servers,
        "proxyroCredential": PROXYRO_CREDENTIAL,
    }
    if name and ob.get("version"):
        spec["obVersion"] = str(ob["version"])
    return spec, notes


def _parameters(glob: dict[str, Any]) -> tuple[dict[str, str], dict[str, str], list[str]]:
    startup, runtime, notes = {}, {}, []
    for key, value in glob.items():
        if key in SECRET_KEYS:
            notes.append(f"{key} is a secret and is not converted (obfleet sets its own)")
        elif key in OBFLEET_KEYS:
            notes.append(f"{key} is set by obfleet itself and is not converted")
        elif key in DEPLOY_KEYS:
            continue
        elif key in STARTUP_KEYS:
            startup[key] = _text(value)
        else:
            runtime[key] = _text(value)
    return startup, runtime, notes


def convert(config: Any) -> tuple[dict[str, Any], list[str]]:
    """The fleet file for an OBD config, and notes on what was not carried over."""
    if not isinstance(config, dict):
        raise ObdError("not an OBD config (a mapping of components)")
    component_name, obproxy = _component(config, OBPROXY_COMPONENTS)
    if not obproxy:
        raise ObdError(f"no obproxy component ({' or '.join(OBPROXY_COMPONENTS)})")
    servers = _servers(obproxy)
    if not servers:
        raise ObdError(f"{component_name} has no servers")
    glob = obproxy.get("global") or {}
    ob, notes = _ob_cluster(config, obproxy)
    user = config.get("user") or {}
    notes.append(
        f"create the HOST credential '{HOST_CREDENTIAL}' for SSH user "
        f"'{user.get('username', 'root')}' (obfleet credential add {HOST_CREDENTIAL} --type HOST"
        f" --username {user.get('username', 'root')} --private-key-file KEY)"
    )
    startup, runtime, param_notes = _parameters(glob)
    cluster: dict[str, Any] = {
        "name": str(glob.get("appname") or component_name),
        "mode": "RS_LIST" if "rs_list" in glob and not obproxy.get("depends") else "CONFIG_URL",
        "obClusters": [ob["name"]],
        "hosts": [ip for _, ip in servers],
        "sqlPort": int(glob.get("listen_port", 2883)),
        "exporterPort": int(glob.get("prometheus_listen_port", 2884)),
    }
    version = obproxy.get("version")
    if version and "-" in str(version):
        cluster["version"] = str(version)
    elif version:
        notes.append(
            f"version {version} has no build number: give version as version-build "
            "(e.g. 4.2.3.0-3) to pin it; without one obfleet installs the newest package"
        )
    if startup:
        cluster["startupParameters"] = startup
    if runtime:
        cluster["parameters"] = runtime
    hosts = [
        {"address": ip, "credential": HOST_CREDENTIAL, "sshPort": int(user.get("port", 22))}
        for _, ip in servers
    ]
    notes += param_notes + _per_server_notes(obproxy, servers)
    return {"obClusters": [ob], "hosts": hosts, "obproxyClusters": [cluster]}, notes
