"""GetObProxyConfig's `Version`: OBProxies re-read their clusters only when it changes, so it
must change with everything they would read, and stay put otherwise."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.configserver.helpers import (
    OBSERVER_BODY,
    db_of,
    import_cluster,
    ok,
    set_links,
    set_root_servers,
    version,
)


def post(client: TestClient, body: dict[str, object]) -> None:
    ok(client, "POST", body=body, Action="ObRootServiceInfo", ObCluster="obcluster", version="2")


def test_version_follows_links_root_servers_and_registrations(client: TestClient) -> None:
    db = db_of(client)
    import_cluster(client, "obcluster", 1, ("198.18.0.2", 2881))
    import_cluster(client, "other", 2, ("198.18.0.3", 2881))
    set_links(db, "proxy1", "obcluster")
    set_links(db, "proxy2", "other")
    start = version(client, ObproxyClusterName="proxy1")
    assert version(client, ObproxyClusterName="proxy1") == start, "stable between calls"

    # What proxy1 does not read leaves its version alone.
    set_links(db, "proxy2", "other", "obcluster")
    set_root_servers(db, "other", ("198.18.0.4", 2881))
    import_cluster(client, "third", 3)
    assert version(client, ObproxyClusterName="proxy1") == start

    set_links(db, "proxy1", "obcluster", "other")
    linked = version(client, ObproxyClusterName="proxy1")
    assert linked != start
    set_links(db, "proxy1", "obcluster")
    assert version(client, ObproxyClusterName="proxy1") == start, "a digest, not a counter"

    set_root_servers(db, "obcluster", ("198.18.0.2", 2881), ("198.18.0.5", 2881))
    moved = version(client, ObproxyClusterName="proxy1")
    assert moved != start

    # Registrations (of names no one recorded: those of recorded ones are refused) reach the
    # config that lists every cluster.
    observed = {**OBSERVER_BODY, "ObCluster": "observed", "ObRegion": "observed"}
    unregistered = version(client)
    post(client, observed)
    registered = version(client)
    assert registered != unregistered
    assert version(client, ObproxyClusterName="proxy1") == moved
    # An observer re-registering the same servers later is not a change...
    post(client, {**observed, "timestamp": OBSERVER_BODY["timestamp"] + 10**6})
    assert version(client) == registered
    # ...but a new leader is, and so is a standby appearing under the same name.
    new_leader = [
        {"address": "1.1.1.1:2882", "role": "FOLLOWER", "sql_port": 2881},
        {"address": "1.1.1.2:2882", "role": "LEADER", "sql_port": 2881},
    ]
    post(
        client,
        {**observed, "RsList": new_leader, "timestamp": OBSERVER_BODY["timestamp"] + 2 * 10**6},
    )
    leader_moved = version(client)
    assert leader_moved != registered
    post(client, {**observed, "ObClusterId": 9, "ObRegionId": 9, "Type": "STANDBY"})
    assert version(client) not in (registered, leader_moved)
    for cluster_id in ("1", "9"):
        ok(
            client,
            "DELETE",
            Action="ObRootServiceInfo",
            ObCluster="observed",
            version="2",
            ObClusterId=cluster_id,
        )
    assert version(client) == unregistered


def test_version_of_every_cluster_follows_registrations_of_new_names(client: TestClient) -> None:
    import_cluster(client, "obcluster", 1)
    start = version(client)
    post(client, {**OBSERVER_BODY, "ObCluster": "newcomer", "ObRegion": "newcomer"})
    assert version(client) != start
    ok(client, "POST", Action="DeleteObRootServiceInfoByClusterName", ClusterName="newcomer")
    assert version(client) == start


def test_version_depends_on_the_urls_handed_out(client: TestClient) -> None:
    import_cluster(client, "obcluster", 1)
    r = client.get(
        "/services",
        params={"Action": "GetObProxyConfig", "VersionOnly": "true"},
        headers={"Host": "198.18.0.9:8080"},
    )
    assert r.json()["Data"]["Version"] != version(client)
