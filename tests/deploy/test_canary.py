"""Shell metacharacters in every request field that can reach a host, against a real
`obfleet serve` and real hosts.

Every hostile value tries to create a canary file (`touch`, `>`), through `;`, `$( )`,
backticks, `|`, `&&`, newlines, quotes or an ssh option (`-oProxyCommand=`). Each request is
either refused with a 4xx in the OCP envelope, storing nothing, or it runs; the values obfleet
accepts (free-text STRING parameters, a package's upload name, ports given as strings) are
deployed once and arrive literally on OBProxy's command line and in `show proxyconfig`. In
every case no canary appears on any test host, nor on this machine.
"""

from __future__ import annotations

import glob
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deploy.conftest import (
    EXPORTER_PORT,
    OB_CLUSTER,
    RPM_NAME,
    SQL_PORT,
    VERSION,
    Fleet,
    obproxy_argv,
    proxyconfig,
)
from tests.deploy.test_deploy import OB_LINK, RS_LIST, expected_argv
from tests.standin.rpm import build_standin_rpm

pytestmark = pytest.mark.hosts

TOKEN = secrets.token_hex(4)
CANARY = f"/tmp/obfleet-canary-{TOKEN}"  # every canary's path starts with this
_count = iter(range(1, 10**6))


def canary() -> str:
    return f"{CANARY}-{next(_count)}"


def attacks() -> list[str]:
    """Ways to run `touch <canary>` from a value that ends up in a shell command or a config
    file (appended to a good value)."""
    return [
        f";touch {canary()}",
        f"$(touch {canary()})",
        f"`touch {canary()}`",
        f"|touch {canary()}",
        f"&&touch {canary()}",
        f" >{canary()}",
        f"\ntouch {canary()}\n",
        f"'; touch {canary()}; '",
        f'"; touch {canary()}; "',
    ]


def hostile(good: str) -> list[str]:
    """A field's hostile variants: each attack after a good value, and an option for ssh or
    any other program that takes the value as an argument."""
    return [good + attack for attack in attacks()] + [f"-oProxyCommand=touch {canary()}"]


# Accepted as free text: no comma, quote, backslash or control character, which OBProxy's own
# `-o k=v,k=v` parser would misread (those are refused, see below).
SOUP = (
    f"0.0.0.0;touch {canary()} $(touch {canary()}) |touch {canary()} &&touch {canary()} >{canary()}"
)
RUNTIME_SOUP = f"idc;touch {canary()}|$(touch {canary()})&&touch {canary()} >{canary()}"
# Refused in any parameter value: they would break or extend OBProxy's -o option.
UNQUOTABLE = [
    f"`touch {canary()}`",
    f"x';touch {canary()};'",
    f'x";touch {canary()};"',
    f"x\ntouch {canary()}",
    f"x,obproxy_sys_password={'0' * 40}",
    "x\\",
]


def canaries(fleet: Fleet) -> list[str]:
    """Canaries on any test host or on this machine (the server runs here)."""
    found = [f"local:{path}" for path in glob.glob(f"{CANARY}*")]
    for host in fleet.lab.hosts:
        listing = host.run(f"ls -d {CANARY}* /home/admin/*canary* /root/*canary* 2>/dev/null")
        found += [f"{host.ip}:{line}" for line in listing.stdout.split()]
    return found


def refused(r: httpx.Response, what: str) -> None:
    assert 400 <= r.status_code < 500, f"{what}: {r.status_code} {r.text}"
    body = r.json()
    assert body["successful"] is False and body["status"] == r.status_code, f"{what}: {body}"
    assert isinstance(body["error"]["code"], int) and body["error"]["message"], f"{what}: {body}"


def counts(fleet: Fleet) -> dict[str, int]:
    """How many of everything a refused request must not create."""
    paths = {
        "obproxy clusters": "/api/v2/obproxy/clusters",
        "hosts": "/api/v2/compute/hosts",
        "credentials": "/api/v2/credentials",
        "ob clusters": "/api/v2/ob/clusters",
        "tasks": "/api/v2/tasks/instances",
        "packages": "/api/v2/software-packages",
    }
    return {name: fleet.get(path)["page"]["totalElements"] for name, path in paths.items()}


def cluster_body(fleet: Fleet, **change: Any) -> dict[str, Any]:
    """A good create request for one host, with `change` applied (dotted keys go into
    obLinks[0] / obproxyInstallParam)."""
    body: dict[str, Any] = {
        "name": "pc_hostile",
        "workMode": "RS_LIST",
        "obLinks": [dict(OB_LINK)],
        "obproxyInstallParam": {
            "hostIds": [fleet.host_id(fleet.hosts[1])],
            "sqlPort": SQL_PORT,
            "exportPort": EXPORTER_PORT,
            "version": RPM_NAME,
        },
        "startupParameters": [],
        "parameters": [],
    }
    for key, value in change.items():
        part, _, field = key.partition(".")
        if part == "link":
            body["obLinks"][0][field] = value
        elif part == "install":
            body["obproxyInstallParam"][field] = value
        else:
            body[key] = value
    return body


def refused_requests(fleet: Fleet) -> list[tuple[str, str, Any]]:
    """(what, path, JSON body) of requests that must be refused."""
    create = "/api/v2/obproxy/clusters"
    requests: list[tuple[str, str, Any]] = []

    def each(what: str, path: str, good: str, body: Callable[[str], Any]) -> None:
        requests.extend((f"{what} {v!r}", path, body(v)) for v in hostile(good))

    def setting(key: str) -> Callable[[str], Any]:
        return lambda v: cluster_body(fleet, **{key: v})

    each("cluster name", create, "pc_x", setting("name"))
    each("obLinks clusterName", create, OB_CLUSTER, setting("link.clusterName"))
    each("obLinks username", create, "proxyro", setting("link.username"))
    each("sqlPort", create, str(SQL_PORT), setting("install.sqlPort"))
    each("exportPort", create, str(EXPORTER_PORT), setting("install.exportPort"))
    each("version", create, RPM_NAME, setting("install.version"))
    for field, name in (("startupParameters", "local_bound_ip"), ("parameters", "proxy_idc_name")):
        each(
            f"{field} name",
            create,
            name,
            lambda v, f=field: cluster_body(fleet, **{f: [{"name": v, "value": "x"}]}),
        )
        for value in UNQUOTABLE:
            body = cluster_body(fleet, **{field: [{"name": name, "value": value}]})
            requests.append((f"{field} value {value!r}", create, body))

    ob = "/api/v2/ob/clusters/import"

    def ob_body(
        name: str = "ob_hostile", address: str = "198.18.250.2:2882", sql: Any = 2881
    ) -> Any:
        root = {"address": address, "role": "LEADER", "sqlPort": sql}
        return {"name": name, "obClusterId": 77, "proxyroPassword": "Pw_1", "rootServers": [root]}

    each("OB cluster name", ob, "ob_hostile", lambda v: ob_body(name=v))
    each("rootServers address", ob, "198.18.250.2", lambda v: ob_body(address=f"{v}:2882"))
    each("rootServers sqlPort", ob, "2881", lambda v: ob_body(sql=v))

    credentials = "/api/v2/credentials"

    def credential(username: str) -> Any:
        return {"name": "hostile", "targetType": "HOST", "username": username, "password": "Pw"}

    each("credential username", credentials, "root", credential)
    hosts = "/api/v2/compute/hosts/batchCreate"
    (key,) = fleet.get("/api/v2/credentials?targetType=HOST")["contents"]

    def host_body(address: str = "198.18.250.3", ssh_port: Any = 22) -> Any:
        return {
            "hostBasicDataList": [{"innerIpAddress": address}],
            "sshPort": ssh_port,
            "kind": "DEDICATED_PHYSICAL_MACHINE",
            "credentialId": key["id"],
        }

    each("innerIpAddress", hosts, "198.18.250.3", lambda v: host_body(address=v))
    each("sshPort", hosts, "22", lambda v: host_body(ssh_port=v))
    return requests


def test_hostile_values_are_refused_or_arrive_literally_and_never_run(
    fleet: Fleet, tmp_path: Path
) -> None:
    assert canaries(fleet) == []

    # 1. Everything hostile that obfleet cannot pass on literally is refused, storing nothing.
    before = counts(fleet)
    requests = refused_requests(fleet)
    for what, path, body in requests:
        refused(fleet.api.post(path, json=body), what)
    assert counts(fleet) == before
    assert len(requests) > 150

    # 2. A package uploaded under a hostile file name is stored under its RPM header's name.
    rpm = build_standin_rpm(tmp_path / "rpm", version=VERSION, release="9.canary")
    upload_name = f"{'../' * 20}{CANARY[1:]}-upload;touch {canary()}`touch {canary()}`|&&.rpm"
    r = fleet.api.post("/api/v2/software-packages", files={"file": (upload_name, rpm.read_bytes())})
    assert r.status_code == 200, r.text
    package = r.json()["data"]
    assert package["fileName"] == rpm.name == f"obproxy-ce-{VERSION}-9.canary.x86_64.rpm"

    # 3. One deployment carrying every hostile value obfleet accepts: free text in a startup
    # and a runtime STRING parameter, the package uploaded above. (Ports sent as JSON strings
    # are refused since request bodies are strict.)
    host = fleet.hosts[0]
    task = fleet.post(
        "/api/v2/obproxy/clusters",
        {
            "name": "pc_canary",
            "workMode": "RS_LIST",
            "obLinks": [OB_LINK],
            "obproxyInstallParam": {
                "hostIds": [fleet.host_id(host)],
                "sqlPort": SQL_PORT,
                "exportPort": EXPORTER_PORT,
                "version": package["fileName"],
            },
            "startupParameters": [{"name": "local_bound_ip", "value": SOUP}],
            "parameters": [
                {"name": "proxy_idc_name", "value": RUNTIME_SOUP},
                {"name": "mysql_version", "value": f"5.7.25 $(touch {canary()})"},
            ],
        },
    )
    fleet.succeeded(task["id"])
    password = fleet.proxysys_password("pc_canary")
    argv = obproxy_argv(host)
    assert argv[:8] == expected_argv("pc_canary", password)[:8]
    assert argv[9:] == ["-r", RS_LIST, "-c", OB_CLUSTER]
    assert argv[8].startswith(f"local_bound_ip={SOUP},")  # the -o value, one argument
    config = proxyconfig(host, password)
    assert config["local_bound_ip"] == SOUP
    assert config["proxy_idc_name"] == RUNTIME_SOUP
    assert config["mysql_version"].startswith("5.7.25 $(touch ")
    (cluster,) = fleet.get("/api/v2/obproxy/clusters?name=pc_canary")["contents"]
    assert [s["ip"] for s in cluster["obproxies"]] == [host.ip]

    # 4. batchAdd to that cluster: the same hostile ports and versions are refused.
    add = f"/api/v2/obproxy/clusters/{cluster['id']}/obproxies/batchAdd"
    good = {
        "hostIds": [fleet.host_id(fleet.hosts[1])],
        "sqlPort": SQL_PORT,
        "exporterPort": EXPORTER_PORT,
        "version": RPM_NAME,
    }
    for field in ("sqlPort", "exporterPort", "version"):
        for value in hostile(str(good[field])):
            refused(fleet.api.post(add, json={**good, field: value}), f"batchAdd {field} {value!r}")

    assert canaries(fleet) == []
