"""OceanBase cluster records: OCP's list shape, import, get, forget."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN

ROOT = [
    {"address": "198.18.0.2:2882", "role": "LEADER", "sqlPort": 2881},
    {"address": "198.18.0.3:2882", "role": "FOLLOWER", "sql_port": 2881},
]


def imp(client, **fields):
    body = {
        "name": "obcluster1",
        "obClusterId": 10,
        "type": "PRIMARY",
        "rootServers": ROOT,
        "obVersion": "4.2.1.0",
        "proxyroPassword": "Proxyro_pw_1",
    }
    body.update(fields)
    return client.post("/api/v2/ob/clusters/import", headers=ADMIN, json=body)


def count(client) -> int:
    return client.get("/api/v2/ob/clusters", headers=ADMIN).json()["data"]["page"]["totalElements"]


def test_import_then_list_in_ocp_shape(client):
    r = imp(client)
    assert r.status_code == 200, r.text
    assert "Proxyro_pw_1" not in r.text
    data = r.json()["data"]
    assert data["rootServers"] == [
        {"address": "198.18.0.2:2882", "role": "LEADER", "sql_port": 2881},
        {"address": "198.18.0.3:2882", "role": "FOLLOWER", "sql_port": 2881},
    ]
    listed = client.get("/api/v2/ob/clusters", headers=ADMIN).json()["data"]["contents"][0]
    for key in (
        "id",
        "name",
        "obClusterId",
        "obVersion",
        "status",
        "type",
        "rootServers",
        "createTime",
        "creator",
        "zones",
        "serverCount",
        "regionCount",
        "tenantCount",
    ):
        assert key in listed, key
    # obfleet never connected to it: not RUNNING (as it read before), but UNAVAILABLE.
    assert listed["status"] == "UNAVAILABLE" and listed["creator"] == "admin"
    one = client.get(f"/api/v2/ob/clusters/{data['id']}", headers=ADMIN).json()["data"]
    assert one["name"] == "obcluster1" and one["proxyroCredentialId"]
    creds = client.get("/api/v2/credentials?targetType=OB_CLUSTER", headers=ADMIN).json()
    assert creds["data"]["contents"][0]["username"] == "proxyro"


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"name": "1cluster"}, "name"),
        ({"name": "bad-name"}, "name"),
        ({"obClusterId": 0}, "obClusterId"),
        ({"type": "BOTH"}, "type"),
        ({"rootServers": []}, "rootServers"),
        ({"rootServers": [{"address": "198.18.0.2", "sqlPort": 2881}]}, "ip:rpcPort"),
        ({"rootServers": [{"address": "198.18.0.2:70000", "sqlPort": 2881}]}, "port"),
        ({"rootServers": [{"address": "$(reboot):2882", "sqlPort": 2881}]}, "neither"),
        ({"rootServers": [{"address": "198.18.0.2:2882", "sqlPort": 0}]}, "sqlPort"),
        ({"rootServers": [{**ROOT[0]}, {**ROOT[0], "address": "198.18.0.3:2882"}]}, "LEADER"),
        ({"proxyroCredentialId": 12345, "proxyroPassword": None}, "credential"),
        ({"proxyroCredentialId": 1}, "not both"),
        ({"obVersion": "4.2;ls"}, "obVersion"),
    ],
)
def test_bad_input_refused_nothing_stored(client, fields, words):
    r = imp(client, **fields)
    assert r.status_code in (400, 404), r.text
    assert words in r.json()["error"]["message"]
    assert count(client) == 0
    assert client.get("/api/v2/credentials", headers=ADMIN).json()["data"]["contents"] == []


def test_duplicates_refused(client):
    assert imp(client).status_code == 200
    r = imp(client, obClusterId=11)
    assert r.status_code == 409 and "obcluster1" in r.json()["error"]["message"]
    # OCP's "the cluster to be imported already exists", not 11003 (a cluster type's refusal).
    assert r.json()["error"]["code"] == 11033
    r = imp(client, name="other")
    assert r.status_code == 409 and "obClusterId 10" in r.json()["error"]["message"]
    assert r.json()["error"]["code"] == 11033
    assert count(client) == 1


def test_list_paging_sort_filter(client):
    for i in range(5):
        assert imp(client, name=f"c{i}", obClusterId=100 + i).status_code == 200
    page = client.get("/api/v2/ob/clusters?page=2&size=2&sort=name,desc", headers=ADMIN).json()
    assert [c["name"] for c in page["data"]["contents"]] == ["c2", "c1"]
    assert page["data"]["page"] == {"number": 2, "size": 2, "totalElements": 5, "totalPages": 3}
    named = client.get("/api/v2/ob/clusters?name=c3", headers=ADMIN).json()["data"]["contents"]
    assert [c["name"] for c in named] == ["c3"]


def test_unknown_cluster_404(client):
    r = client.get("/api/v2/ob/clusters/424242", headers=ADMIN)
    assert r.status_code == 404 and r.json()["error"]["code"] == 11001
    assert client.delete("/api/v2/ob/clusters/424242", headers=ADMIN).status_code == 404


@pytest.mark.parametrize(
    "fields",
    [
        {"obClusterId": True},
        {"obClusterId": "10"},
    ],
)
def test_a_value_of_the_wrong_json_type_is_refused(client, fields):
    """Not coerced: `true` is no cluster id, `"10"` no number."""
    r = imp(client, **fields)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == 1003 and not r.json()["successful"]
    assert count(client) == 0


def test_servers_are_the_recorded_root_servers_and_say_what_is_unknown(client):
    cluster_id = imp(client).json()["data"]["id"]
    r = client.get(f"/api/v2/ob/clusters/{cluster_id}/servers", headers=ADMIN)
    assert r.status_code == 200, r.text
    servers = r.json()["data"]["contents"]
    assert [(s["ip"], s["port"], s["sqlPort"]) for s in servers] == [
        ("198.18.0.2", 2882, 2881),
        ("198.18.0.3", 2882, 2881),
    ]
    for server in servers:
        assert server["clusterId"] == cluster_id and server["version"] == "4.2.1.0"
        assert server["withRootserver"] is True and server["status"] == "UNAVAILABLE"
        for unknown in ("id", "hostId", "innerStatus", "zoneName", "startTime", "stopTime"):
            assert server[unknown] is None, unknown


def test_servers_of_an_unknown_cluster_or_by_region_are_refused(client):
    r = client.get("/api/v2/ob/clusters/999/servers", headers=ADMIN)
    assert (r.status_code, r.json()["error"]["code"]) == (404, 11001)
    cluster_id = imp(client).json()["data"]["id"]
    r = client.get(f"/api/v2/ob/clusters/{cluster_id}/servers?regionName=Beijing", headers=ADMIN)
    assert r.status_code == 400 and "regions" in r.json()["error"]["message"]


def proxyro_credential(client, name: str, password: str, target: str = "OB_CLUSTER") -> int:
    body = {"name": name, "targetType": target, "username": "proxyro", "password": password}
    r = client.post("/api/v2/credentials", headers=ADMIN, json=body)
    assert r.status_code == 200, r.text
    return r.json()["data"]["id"]


def patch(client, cluster_id: int, body):
    return client.patch(f"/api/v2/ob/clusters/{cluster_id}", headers=ADMIN, json=body)


def test_patch_gives_the_proxyro_user_another_credential(client):
    cluster = imp(client).json()["data"]
    other = proxyro_credential(client, "proxyro_new", "Other_pw_22")
    r = patch(client, cluster["id"], {"proxyroCredentialId": other})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["proxyroCredentialId"] == other and "Other_pw_22" not in r.text
    one = client.get(f"/api/v2/ob/clusters/{cluster['id']}", headers=ADMIN).json()["data"]
    assert one["proxyroCredentialId"] == other


@pytest.mark.parametrize(
    "body, status, words",
    [
        ({"proxyroCredentialId": 424242}, 404, "424242"),
        ({"proxyroCredentialId": "host"}, 400, "proxyroCredentialId"),
        ({}, 400, "proxyroCredentialId"),
        ({"proxyroCredentialId": 1, "name": "renamed"}, 400, "name"),
    ],
)
def test_patch_bad_input_refused_nothing_changed(client, body, status, words):
    cluster = imp(client).json()["data"]
    r = patch(client, cluster["id"], body)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]["message"]
    one = client.get(f"/api/v2/ob/clusters/{cluster['id']}", headers=ADMIN).json()["data"]
    assert one["proxyroCredentialId"] == cluster["proxyroCredentialId"]
    assert one["name"] == "obcluster1"


def test_patch_refuses_a_host_credential_and_an_unknown_cluster(client):
    cluster = imp(client).json()["data"]
    host = proxyro_credential(client, "ssh_root", "Root_pw_333", target="HOST")
    r = patch(client, cluster["id"], {"proxyroCredentialId": host})
    assert r.status_code == 400 and "not a OB_CLUSTER" in r.json()["error"]["message"]
    r = patch(client, 424242, {"proxyroCredentialId": cluster["proxyroCredentialId"]})
    assert r.status_code == 404 and r.json()["error"]["code"] == 11001


def test_patch_of_a_linked_cluster_keeps_its_password(client):
    """Linked OBProxy clusters' OBProxies hold the current password: a credential with the same
    password is taken, one with another password refused (409) and nothing changes."""
    cluster = imp(client).json()["data"]
    link = {"clusterName": "obcluster1", "obClusterId": 10, "username": "proxyro"}
    body = {"name": "proxies1", "workMode": "CONFIG_URL", "obLinks": [link]}
    r = client.post("/api/v2/obproxy/clusters", headers=ADMIN, json=body)
    assert r.status_code == 200, r.text
    other = proxyro_credential(client, "proxyro_other", "Other_pw_22")
    r = patch(client, cluster["id"], {"proxyroCredentialId": other})
    assert r.status_code == 409 and r.json()["error"]["code"] == 11020
    assert "proxies1" in r.json()["error"]["message"]
    one = client.get(f"/api/v2/ob/clusters/{cluster['id']}", headers=ADMIN).json()["data"]
    assert one["proxyroCredentialId"] == cluster["proxyroCredentialId"]
    same = proxyro_credential(client, "proxyro_same", "Proxyro_pw_1")
    r = patch(client, cluster["id"], {"proxyroCredentialId": same})
    assert r.status_code == 200 and r.json()["data"]["proxyroCredentialId"] == same
