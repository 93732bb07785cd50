"""The read actions of /services, the envelope and the dispatch, in-process."""

from __future__ import annotations

import dataclasses
import re

import pytest
from fastapi.testclient import TestClient

from obfleet.api.app import create_app
from obfleet.config import Settings
from obfleet.configserver import config_url
from tests.configserver.helpers import (
    call,
    db_of,
    fails,
    import_cluster,
    ok,
    set_links,
)

OCP_SAMPLE = (
    "http://x:8080/services?Action=GetObProxyConfig&User_ID=alibaba&UID=admin"
    "&ObproxyClusterName=test"
)


@pytest.fixture
def clusters(client: TestClient) -> TestClient:
    """ob1 (2 root servers) and ob2 recorded; proxy1 links ob1, proxy2 links nothing."""
    import_cluster(client, "ob1", 11, ("198.18.0.2", 2881), ("198.18.0.3", 2881))
    import_cluster(client, "ob2", 12, ("198.18.0.4", 3881), type="STANDBY")
    set_links(db_of(client), "proxy1", "ob1")
    set_links(db_of(client), "proxy2")
    return client


def test_config_url_is_ocps_form() -> None:
    assert config_url("http://x:8080", "test") == OCP_SAMPLE
    assert config_url("http://x:8080/", "test") == OCP_SAMPLE


def test_get_obproxy_config_of_an_obproxy_cluster_lists_its_links(clusters: TestClient) -> None:
    query = OCP_SAMPLE.split("?", 1)[1].replace("=test", "=proxy1")
    r = call(clusters, "GET", **dict(p.split("=") for p in query.split("&")))
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    envelope = r.json()
    assert envelope["Message"] == "successful" and re.fullmatch(r"[0-9a-f]{16}", envelope["Trace"])
    assert isinstance(envelope["Cost"], int) and envelope["Server"]
    data = envelope["Data"]
    assert list(data) == [
        "ObProxyBinUrl",
        "ObProxyDatabaseInfo",
        "ObRootServiceInfoUrlList",
        "Version",
    ]
    assert data["ObRootServiceInfoUrlList"] == [
        {
            "ObRegion": "ob1",
            "ObRootServiceInfoUrl": "http://testserver/services?Action=ObRootServiceInfo&ObCluster=ob1",
        }
    ]
    assert data["ObProxyBinUrl"] == "http://testserver/client?Action=GetObProxy"
    assert sorted(data["ObProxyDatabaseInfo"]) == ["DataBase", "MetaDataBase", "Password", "User"]
    assert re.fullmatch(r"[0-9a-f]{32}", data["Version"])

    assert (
        ok(clusters, Action="GetObProxyConfig", ObproxyClusterName="proxy2")[
            "ObRootServiceInfoUrlList"
        ]
        == []
    )
    message = fails(clusters, 404, Action="GetObProxyConfig", ObproxyClusterName="nope")
    assert message == "resource not found: no obproxy cluster named nope"


def test_get_obproxy_config_without_a_name_lists_every_cluster(clusters: TestClient) -> None:
    body = {"ObCluster": "obnew", "ObClusterId": 3, "Type": "PRIMARY", "RsList": []}
    ok(clusters, "POST", body=body, Action="ObRootServiceInfo", ObCluster="obnew")
    for method in ("GET", "POST"):
        data = ok(clusters, method, Action="GetObProxyConfig")
        assert [e["ObRegion"] for e in data["ObRootServiceInfoUrlList"]] == ["ob1", "ob2", "obnew"]
        template = ok(clusters, method, Action="GetObRootServiceInfoUrlTemplate")
        assert template["ObClusterList"] == ["ob1", "ob2", "obnew"]


def test_urls_follow_the_advertise_url(settings: Settings) -> None:
    advertised = dataclasses.replace(settings, advertise_url="http://198.18.0.9:8080/")
    with TestClient(create_app(advertised, run_engine=False)) as client:
        import_cluster(client, "ob1", 11)
        data = ok(client, Action="GetObProxyConfig")
        assert data["ObRootServiceInfoUrlList"][0]["ObRootServiceInfoUrl"] == (
            "http://198.18.0.9:8080/services?Action=ObRootServiceInfo&ObCluster=ob1"
        )
        meta = data["ObProxyDatabaseInfo"]["MetaDataBase"]
        assert meta.startswith("http://198.18.0.9:8080/services?Action=ObRootServiceInfo&")


def test_url_template(clusters: TestClient) -> None:
    data = ok(clusters, Action="GetObRootServiceInfoUrlTemplate", ObproxyClusterName="proxy1")
    assert data["ObClusterList"] == ["ob1"]
    assert data["ObRootServiceInfoUrlTemplate"] == (
        "http://testserver/services?Action=ObRootServiceInfo&ObRegion=${ObRegion}"
    )
    assert data["ObRootServiceInfoUrlTemplateV2"] == (
        "http://testserver/services?Action=ObRootServiceInfo&version=2"
        "&ObCluster=${ObCluster}&ObClusterId=${OBClusterId}"
    )
    only = ok(clusters, Action="GetObRootServiceInfoUrlTemplate", VersionOnly="true")
    assert only == {"Version": ok(clusters, Action="GetObRootServiceInfoUrlTemplate")["Version"]}


@pytest.mark.parametrize("value", ["true", "True", "TRUE", "t", "1"])
def test_version_only(clusters: TestClient, value: str) -> None:
    full = ok(clusters, Action="GetObProxyConfig", ObproxyClusterName="proxy1")
    only = ok(clusters, Action="GetObProxyConfig", ObproxyClusterName="proxy1", VersionOnly=value)
    assert only == {"Version": full["Version"]}


def test_version_only_false_and_invalid(clusters: TestClient) -> None:
    assert "ObRootServiceInfoUrlList" in ok(clusters, Action="GetObProxyConfig", VersionOnly="0")
    message = fails(clusters, 400, Action="GetObProxyConfig", VersionOnly="yes")
    assert message.startswith("illegal argument: invalid parameter, failed to parse versiononly")


def test_root_service_info_from_a_record(clusters: TestClient) -> None:
    expected = {
        "ObClusterId": 11,
        "ObRegionId": 11,
        "ObCluster": "ob1",
        "ObRegion": "ob1",
        "ReadonlyRsList": [],
        "RsList": [
            {"address": "198.18.0.2:2882", "role": "LEADER", "sql_port": 2881},
            {"address": "198.18.0.3:2882", "role": "FOLLOWER", "sql_port": 2881},
        ],
        "Type": "PRIMARY",
    }
    one = ok(clusters, Action="ObRootServiceInfo", ObCluster="ob1")
    assert isinstance(one.pop("timestamp"), int)
    assert one == expected
    # version=2 answers a list, unless a cluster id picks one; ObRegion* are the old spellings.
    listed = ok(clusters, Action="ObRootServiceInfo", ObRegion="ob1", version="2")
    assert [{k: v for k, v in i.items() if k != "timestamp"} for i in listed] == [expected]
    picked = ok(clusters, Action="ObRootServiceInfo", ObCluster="ob1", version="2", ObRegionId="11")
    assert picked["ObClusterId"] == 11 and isinstance(picked, dict)
    assert ok(clusters, Action="ObRootServiceInfo", ObCluster="ob2")["Type"] == "STANDBY"


def test_root_service_info_not_found(clusters: TestClient) -> None:
    for params in ({"ObCluster": "nope"}, {"ObCluster": "ob1", "ObClusterId": "12"}):
        message = fails(clusters, 404, Action="ObRootServiceInfo", **params)
        assert message.startswith("resource not found: no obcluster found")
        fails(clusters, 404, Action="ObIDCRegionInfo", **params)


def test_idc_region_info(clusters: TestClient) -> None:
    expected = {"ObRegion": "ob1", "ObRegionId": 11, "IDCList": [], "ReadonlyRsList": ""}
    assert ok(clusters, Action="ObIDCRegionInfo", ObCluster="ob1") == expected
    assert ok(clusters, Action="ObIDCRegionInfo", ObCluster="ob1", version="2") == [expected]


def test_first_value_of_a_repeated_parameter_counts(clusters: TestClient) -> None:
    r = clusters.get("/services?Action=ObRootServiceInfo&ObCluster=ob1&ObCluster=ob2")
    assert r.json()["Data"]["ObCluster"] == "ob1"


@pytest.mark.parametrize(
    ("method", "action"),
    [
        ("GET", None),
        ("GET", "Nope"),
        ("GET", "obrootserviceinfo"),  # actions are case-sensitive, as in ob-configserver
        ("GET", "ObRootServiceRegister"),  # POST only
        ("POST", "ObIDCRegionInfo"),  # GET only
        ("DELETE", "GetObProxyConfig"),
        ("DELETE", "DeleteObRootServiceInfoByClusterName"),
    ],
)
def test_invalid_action(clusters: TestClient, method: str, action: str | None) -> None:
    params = {"ObCluster": "ob1", "ClusterName": "ob1"}
    if action is not None:
        params["Action"] = action
    assert fails(clusters, 400, method, **params) == "illegal argument: invalid action"


@pytest.mark.parametrize(
    ("params", "cause"),
    [
        ({}, "no obcluster or obregion"),
        ({"ObCluster": ""}, "no obcluster or obregion"),
        ({"ObCluster": "ob1", "ObRegion": ""}, "no obcluster or obregion"),
        ({"ObCluster": "ob1", "ObClusterId": "x1"}, "parse ob cluster id"),
        ({"ObCluster": "ob1", "ObClusterId": "99999999999999999999"}, "parse ob cluster id"),
        ({"ObCluster": "ob1", "version": "two"}, "parse version"),
        ({"ObCluster": "ob1", "version": ""}, "parse version"),
    ],
)
def test_unparseable_parameters_are_ob_configservers_500(
    clusters: TestClient, params: dict[str, str], cause: str
) -> None:
    for action in ("ObRootServiceInfo", "ObIDCRegionInfo"):
        message = fails(clusters, 500, Action=action, **params)
        assert message.startswith("got internal error: parse ") and cause in message


def test_openapi_marks_it_as_an_extension(client: TestClient) -> None:
    operations = client.get("/openapi.json").json()["paths"]["/services"]
    assert sorted(operations) == ["delete", "get", "post"]
    for operation in operations.values():
        assert operation["tags"] == ["config server (extension)"]
        assert operation["parameters"][0]["name"] == "Action"
