"""Installs that cannot work are refused when asked for, with nothing stored: no cluster, no
obproxy, no task, no credential. In-process, no hosts needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from obfleet.store.models.obproxy import ObproxyServer
from tests.conftest import ADMIN
from tests.deploy.conftest import RPM_NAME
from tests.obproxy.lab import add_hosts, app_of

CLUSTERS = "/api/v2/obproxy/clusters"


def import_ob(client: TestClient, name: str, ob_id: int, password: str | None) -> None:
    body: dict[str, Any] = {
        "name": name,
        "obClusterId": ob_id,
        "rootServers": [{"address": f"198.18.0.{ob_id}:2882", "role": "LEADER", "sqlPort": 2881}],
    }
    if password is not None:
        body["proxyroPassword"] = password
    r = client.post("/api/v2/ob/clusters/import", headers=ADMIN, json=body)
    assert r.status_code == 200, r.text


@pytest.fixture
def setup(client: TestClient, standin_rpm: Path) -> dict[str, int]:
    """Hosts h1 and h2 ONLINE and h3 OFFLINE, the package, and OceanBase clusters: same_a and
    same_b share a proxyro password, other has another one, bare has none."""
    r = client.post(
        "/api/v2/software-packages",
        headers=ADMIN,
        files={"file": (standin_rpm.name, standin_rpm.read_bytes())},
    )
    assert r.status_code == 200, r.text
    for ob_id, (name, password) in enumerate(
        [("same_a", "Pw_1"), ("same_b", "Pw_1"), ("other", "Pw_2"), ("bare", None)], start=1
    ):
        import_ob(client, name, ob_id, password)
    app = app_of(client)
    with app.db.transaction() as session:
        hosts = add_hosts(session, app, {1: "ONLINE", 2: "ONLINE", 3: "OFFLINE"})
        return {host.name: host.id for host in hosts}


def link(name: str) -> dict[str, Any]:
    ob_id = {"same_a": 1, "same_b": 2, "other": 3, "bare": 4}[name]
    return {"clusterName": name, "obClusterId": ob_id}


def stored(client: TestClient) -> dict[str, int]:
    ctx = client.app.state.ctx
    with ctx.db.session() as session:
        obproxies = session.query(ObproxyServer).count()

    def count(path: str) -> int:
        return int(client.get(path, headers=ADMIN).json()["data"]["page"]["totalElements"])

    return {
        "clusters": count(CLUSTERS),
        "tasks": count("/api/v2/tasks/instances"),
        "credentials": count("/api/v2/credentials?targetType=OBPROXY"),
        "obproxies": obproxies,
    }


def refused(client: TestClient, path: str, body: Any, status: int, words: str) -> None:
    before = stored(client)
    r = client.post(path, headers=ADMIN, json=body)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]["message"], r.json()["error"]["message"]
    assert stored(client) == before


def install(host_ids: list[int], **changes: Any) -> dict[str, Any]:
    return {
        "hostIds": host_ids,
        "sqlPort": 2883,
        "exportPort": 2884,
        "version": RPM_NAME,
        **changes,
    }


@pytest.mark.parametrize(
    "mode, links, words",
    [
        ("RS_LIST", ["bare"], "bare have no proxyro credential"),
        ("CONFIG_URL", ["same_a", "bare"], "bare have no proxyro credential"),
        ("CONFIG_URL", ["same_a", "other"], "different proxyro passwords"),
        # the test app has no OBFLEET_ADVERTISE_URL
        ("CONFIG_URL", ["same_a", "same_b"], "OBFLEET_ADVERTISE_URL"),
    ],
)
def test_create_refused_when_the_clusters_cannot_serve_an_install(
    client: TestClient, setup: dict[str, int], mode: str, links: list[str], words: str
) -> None:
    body = {
        "name": "pc1",
        "workMode": mode,
        "obLinks": [link(name) for name in links],
        "obproxyInstallParam": install([setup["h1"]]),
    }
    refused(client, CLUSTERS, body, 400, words)


def test_create_refused_on_a_host_that_is_not_online(
    client: TestClient, setup: dict[str, int]
) -> None:
    body = {
        "name": "pc1",
        "workMode": "RS_LIST",
        "obLinks": [link("same_a")],
        "obproxyInstallParam": install([setup["h1"], setup["h3"]]),
    }
    refused(client, CLUSTERS, body, 409, "It is OFFLINE; obproxies are installed on ONLINE hosts")


def existing_cluster(client: TestClient, name: str, mode: str, *links: str) -> int:
    body = {"name": name, "workMode": mode, "obLinks": [link(n) for n in links]}
    assert client.post(CLUSTERS, headers=ADMIN, json=body).status_code == 200
    (cluster,) = client.get(f"{CLUSTERS}?name={name}", headers=ADMIN).json()["data"]["contents"]
    return int(cluster["id"])


def test_ports_or_install_path_taken_on_a_host_are_refused(
    client: TestClient, setup: dict[str, int]
) -> None:
    cluster_id = existing_cluster(client, "running", "RS_LIST", "same_a")
    ctx = client.app.state.ctx
    with ctx.db.transaction() as session:
        session.add(
            ObproxyServer(
                cluster_id=cluster_id,
                host_id=setup["h1"],
                ip="198.18.0.11",
                sql_port=3883,
                exporter_port=2884,
                install_path="/home/admin/obproxy-4.2.3.0",
            )
        )
    body = {"name": "pc1", "workMode": "RS_LIST", "obLinks": [link("same_a")]}
    hosts = [setup["h2"], setup["h1"]]
    refused(
        client,
        CLUSTERS,
        {**body, "obproxyInstallParam": install(hosts)},
        409,
        "port 2884 on host 198.18.0.11 is used by obproxy",
    )
    refused(
        client,
        CLUSTERS,
        {**body, "obproxyInstallParam": install(hosts, sqlPort=4883, exportPort=4884)},
        409,
        "/home/admin/obproxy-4.2.3.0 on host 198.18.0.11 is the install path of obproxy",
    )


@pytest.mark.parametrize(
    "changes, status, words",
    [
        ({"hostIds": []}, 400, "hostIds: at least one host"),
        ({"hostIds": [424242]}, 404, "424242"),
        ({"exportPort": 2883}, 400, "sqlPort and exporterPort must differ"),
        ({"exportPort": None, "exporterPort": 2883}, 400, "sqlPort and exporterPort must differ"),
        ({"sqlPort": 1024}, 400, "sqlPort 1024 is outside 1025-65535"),
        ({"version": "obproxy-9.9.9.9-1.el7.x86_64.rpm"}, 404, "obproxy-9.9.9.9"),
    ],
)
def test_batch_add_refuses_bad_input(
    client: TestClient, setup: dict[str, int], changes: dict[str, Any], status: int, words: str
) -> None:
    cluster_id = existing_cluster(client, "pc1", "RS_LIST", "same_a")
    body = {k: v for k, v in install([setup["h1"]], **changes).items() if v is not None}
    refused(client, f"{CLUSTERS}/{cluster_id}/obproxies/batchAdd", body, status, words)


def test_batch_add_refused_for_an_unknown_cluster_or_without_advertise_url(
    client: TestClient, setup: dict[str, int]
) -> None:
    body = install([setup["h1"]])
    refused(client, f"{CLUSTERS}/4242/obproxies/batchAdd", body, 404, "4242")
    cluster_id = existing_cluster(client, "pc_url", "CONFIG_URL", "same_a")
    refused(client, f"{CLUSTERS}/{cluster_id}/obproxies/batchAdd", body, 400, "ADVERTISE_URL")
