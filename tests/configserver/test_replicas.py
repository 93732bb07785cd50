"""Two real `obfleet serve` replicas on one PostgreSQL / MariaDB metadb, each with its answers
cached (asked twice before every change): a change made through one is in that one's
config-server answers at its very next request, and in the other's once
OBFLEET_CONFIGSERVER_STALENESS (made short here) has passed since the change was committed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from obfleet.store.db import Database
from tests.configserver.helpers import OBSERVER_BODY, servers
from tests.conftest import ADMIN, ADMIN_PASSWORD
from tests.server import ServerProcess

ADVERTISE = "http://198.18.0.1:8080"
STALENESS_S = 0.2


@pytest.fixture
def replicas(database: Database, tmp_path: Path) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    if database.dialect == "sqlite":
        pytest.skip("replicas share a PostgreSQL or MySQL-compatible metadb")
    url = database.engine.url.render_as_string(hide_password=False)
    started = []
    try:
        for name in ("a", "b"):
            server = ServerProcess(
                tmp_path / f"data-{name}",
                database_url=url,
                # One address for both, as behind a load balancer: the same answers everywhere.
                env={
                    "OBFLEET_ADMIN_PASSWORD": ADMIN_PASSWORD,
                    "OBFLEET_ADVERTISE_URL": ADVERTISE,
                    "OBFLEET_CONFIGSERVER_STALENESS": str(STALENESS_S),
                },
            )
            started.append(server.start())
        with (
            httpx.Client(base_url=started[0].url, headers=ADMIN, timeout=30) as a,
            httpx.Client(base_url=started[1].url, headers=ADMIN, timeout=30) as b,
        ):
            yield a, b
    finally:
        for server in started:
            server.stop()


def api(client: httpx.Client, method: str, path: str, json: Any = None) -> Any:
    r = client.request(method, path, json=json)
    assert r.status_code == 200 and r.json()["successful"], r.text
    return r.json()["data"]


def services(client: httpx.Client, method: str = "GET", body: Any = None, **params: Any) -> Any:
    r = client.request(method, "/services", params=params, json=body)
    assert r.status_code == 200 and r.json()["Code"] == 200, r.text
    return r.json()["Data"]


def config(client: httpx.Client) -> tuple[list[str], str]:
    """The clusters proxy1's OBProxies are told of, and the Version they poll; asked twice, so
    the second answer comes from the replica's cache."""
    first = services(client, Action="GetObProxyConfig", ObproxyClusterName="proxy1")
    assert services(client, Action="GetObProxyConfig", ObproxyClusterName="proxy1") == first
    return [e["ObRegion"] for e in first["ObRootServiceInfoUrlList"]], first["Version"]


def rs_list(client: httpx.Client, name: str = "obcluster") -> list[str]:
    first = services(client, Action="ObRootServiceInfo", ObCluster=name)
    assert services(client, Action="ObRootServiceInfo", ObCluster=name) == first
    return [s["address"] for s in first["RsList"]]


def settle() -> None:
    """Let the staleness pass since the change just committed (its answer came after the
    commit), so that every replica's next answer must include it."""
    time.sleep(STALENESS_S)


def import_ob(client: httpx.Client, name: str, ob_cluster_id: int, ip: str) -> None:
    api(
        client,
        "POST",
        "/api/v2/ob/clusters/import",
        {"name": name, "obClusterId": ob_cluster_id, "rootServers": servers((ip, 2881))},
    )


def test_a_change_through_one_replica_is_seen_by_the_other_within_the_staleness(
    replicas: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = replicas
    import_ob(a, "obcluster", 1, "198.18.0.2")
    import_ob(a, "other", 2, "198.18.0.3")
    link = {"clusterName": "obcluster", "obClusterId": 1, "username": "proxyro"}
    api(a, "POST", "/api/v2/obproxy/clusters", {"name": "proxy1", "obLinks": [link]})
    proxy = api(b, "GET", "/api/v2/obproxy/clusters?name=proxy1")["contents"][0]["id"]

    names, start = config(b)
    assert names == ["obcluster"] and config(a) == (names, start)
    assert rs_list(a) == rs_list(b) == ["198.18.0.2:2882"]

    # obLinks added through A: A's OBProxies see a new version and the new cluster at once,
    # B's once the staleness has passed.
    other = [{"clusterName": "other", "obClusterId": 2, "username": "proxyro"}]
    api(a, "POST", f"/api/v2/obproxy/clusters/{proxy}/obLinks/batchAdd", other)
    names, linked = config(a)
    assert names == ["obcluster", "other"] and linked != start
    settle()
    assert config(b) == (names, linked)

    # An observer of a cluster no one recorded registers through B: B answers it at once, A
    # after the staleness.
    before = services(a, Action="GetObProxyConfig")  # cached on A
    observed = {**OBSERVER_BODY, "ObCluster": "observed", "ObRegion": "observed"}
    services(b, "POST", observed, Action="ObRootServiceInfo", ObCluster="observed")
    assert rs_list(b, "observed") == ["1.1.1.1:2882"]
    settle()
    assert rs_list(a, "observed") == ["1.1.1.1:2882"]
    listed = services(a, Action="GetObProxyConfig")["ObRootServiceInfoUrlList"]
    assert [e["ObRegion"] for e in listed] == ["obcluster", "observed", "other"]
    assert config(a) == config(b) == (["obcluster", "other"], linked)

    # Deregistered through A: B forgets it (a digest: same content, same version).
    deregister = {"ObCluster": "observed", "version": 2, "ObClusterId": 1}
    services(a, "DELETE", Action="ObRootServiceInfo", **deregister)
    assert services(a, Action="GetObProxyConfig") == before
    settle()
    assert services(b, Action="GetObProxyConfig") == before

    # The link removed through B, the cluster record forgotten through A.
    api(b, "DELETE", f"/api/v2/obproxy/clusters/{proxy}/obLinks/other")
    settle()
    assert config(a) == (["obcluster"], start)
    other_id = next(
        c["id"] for c in api(a, "GET", "/api/v2/ob/clusters")["contents"] if c["name"] == "other"
    )
    everything = services(b, Action="GetObProxyConfig")
    assert services(b, Action="GetObProxyConfig") == everything
    api(a, "DELETE", f"/api/v2/ob/clusters/{other_id}")
    settle()
    listed = services(b, Action="GetObProxyConfig")["ObRootServiceInfoUrlList"]
    assert [e["ObRegion"] for e in listed] == ["obcluster"]
