"""GET /api/v2/obproxy/parameterInfo: OCP types `version` as a String, so every entry has one;
without a version it lists the union of the catalog's releases, each entry with its versions."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from obfleet.obproxy import catalog
from tests.conftest import ADMIN
from tests.obproxy.lab import CLUSTERS, add_hosts, app_of, obproxy_package, rs_list_cluster

KEYS = {
    "id",
    "name",
    "version",
    "type",
    "allowedStringValues",
    "maxValue",
    "minValue",
    "defaultValue",
    "needRestart",
    "readonly",
    "description",
    "explanation",
    # Extensions: the releases that define the entry so, and what a bare number means.
    "versions",
    "unit",
}


def contents(client: TestClient, query: str = "") -> list[dict]:
    r = client.get(f"/api/v2/obproxy/parameterInfo{query}", headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()["data"]["contents"]


def test_every_entry_has_a_string_version_without_a_version_asked(client: TestClient) -> None:
    entries = contents(client)
    assert len(entries) == len(catalog.catalog()) >= 300
    for entry in entries:
        assert set(entry) == KEYS
        assert isinstance(entry["version"], str), entry
        assert entry["version"] == entry["versions"][0]
        assert set(entry["versions"]) <= set(catalog.source_versions())


def test_the_union_lists_each_form_with_the_versions_that_have_it(client: TestClient) -> None:
    (trace,) = contents(client, "?name=enable_full_link_trace")
    assert (trace["versions"], trace["type"], trace["defaultValue"]) == (["4.3.1"], "BOOL", "false")
    (reroute,) = contents(client, "?name=enable_reroute")
    assert reroute["versions"] == list(catalog.source_versions())
    # proxy_id changed in 4.2.3: two entries, each with its own releases.
    old, new = contents(client, "?name=proxy_id")
    assert (old["maxValue"], old["needRestart"], old["versions"][-1]) == ("255", True, "4.2.1")
    assert (new["maxValue"], new["needRestart"]) == ("8191", False)
    assert new["versions"] == ["4.2.3", "4.3.1"]
    # name is an exact filter.
    assert contents(client, "?name=enable_full_link") == []


def test_a_version_lists_its_own_parameters(client: TestClient) -> None:
    names = {e["name"] for e in contents(client, "?version=4.2.3.0")}
    assert {"enable_reroute", "proxy_route_policy"} <= names
    assert "enable_full_link_trace" not in names
    (entry,) = contents(client, "?name=enable_full_link_trace&version=4.3.1.0")
    assert entry["version"] == "4.3.1.0"
    (entry,) = contents(client, "?name=proxy_id&version=4.2.1.0")
    assert entry["maxValue"] == "255"
    r = client.get("/api/v2/obproxy/parameterInfo?version=latest", headers=ADMIN)
    assert r.status_code == 400 and "latest" in r.json()["error"]["message"]


def test_create_validates_against_the_version_it_installs(client: TestClient) -> None:
    ctx = app_of(client)
    with ctx.db.transaction() as session:
        (host,) = add_hosts(session, ctx, {1: "ONLINE"})
        for version in ("4.2.3.0", "4.3.1.0"):
            session.add(obproxy_package(f"obproxy-ce-{version}-1.el7.x86_64.rpm", version, "1"))
        host_id = host.id
    rs_list_cluster(client)  # imports ob1, the cluster to link to

    def create(version: str, name: str) -> Any:
        body = {
            "name": name,
            "workMode": "RS_LIST",
            "obLinks": [{"clusterName": "ob1", "obClusterId": 1}],
            "parameters": [{"name": "enable_full_link_trace", "value": "true"}],
            "obproxyInstallParam": {
                "hostIds": [host_id],
                "sqlPort": 2883,
                "exportPort": 2884,
                "version": f"obproxy-ce-{version}-1.el7.x86_64.rpm",
            },
        }
        return client.post(CLUSTERS, headers=ADMIN, json=body)

    r = create("4.2.3.0", "pc2")
    assert r.status_code == 400, r.text
    assert r.json()["error"]["message"].endswith(
        "parameters[0] 'enable_full_link_trace' is not a parameter of OBProxy 4.2.3.0"
        " (it is in 4.3.1) (did you mean 'enable_trace'?)."
    )
    assert create("4.3.1.0", "pc3").status_code == 200
