"""Registrations: observers posting ObRootServiceInfo, DELETE, and OBD's OCP-style actions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from obfleet.store.models.configserver import RootServiceRegistration
from tests.configserver.helpers import (
    OBSERVER_BODY,
    call,
    db_of,
    fails,
    import_cluster,
    ok,
)
from tests.conftest import ADMIN

RS_PARAMS = {"Action": "ObRootServiceInfo", "ObCluster": "obcluster", "version": "2"}


def register(client: TestClient, body: dict[str, Any] | None = None, **params: Any) -> Any:
    return ok(client, "POST", body=body or OBSERVER_BODY, **{**RS_PARAMS, **params})


def rs_list(client: TestClient, name: str = "obcluster", **params: Any) -> list[str]:
    info = ok(client, Action="ObRootServiceInfo", ObCluster=name, **params)
    return [s["address"] for s in info["RsList"]]


def registrations(client: TestClient) -> int:
    with db_of(client).session() as session:
        return int(session.scalar(select(func.count()).select_from(RootServiceRegistration)))


def test_an_observer_registers_a_new_cluster(client: TestClient) -> None:
    assert register(client) == "successful"
    answer = ok(client, Action="ObRootServiceInfo", ObCluster="obcluster")
    assert answer == {**OBSERVER_BODY, "ObRegion": "obcluster", "ObRegionId": 1}
    listed = ok(client, Action="GetObProxyConfig")["ObRootServiceInfoUrlList"]
    assert [e["ObRegion"] for e in listed] == ["obcluster"]


def test_registering_again_replaces_the_same_cluster(client: TestClient) -> None:
    register(client)
    moved = {**OBSERVER_BODY, "RsList": [{"address": "1.1.1.2:2882", "role": "LEADER"}]}
    register(client, moved)
    assert rs_list(client) == ["1.1.1.2:2882"]
    assert registrations(client) == 1


def test_a_recorded_cluster_cannot_be_registered_over_nor_deleted(client: TestClient) -> None:
    """The issue's override: an anonymous registration of an imported cluster's name, with a
    foreign RsList, an old timestamp or a new one, or another cluster id; and the deletes."""
    import_cluster(client, "obcluster", 1, ("198.18.0.2", 2881))
    told = ok(client, Action="GetObProxyConfig")
    foreign = [{"address": "6.6.6.6:2882", "role": "LEADER", "sql_port": 2881}]
    for posted in (
        {**OBSERVER_BODY, "RsList": foreign, "timestamp": 1},
        {**OBSERVER_BODY, "RsList": foreign, "timestamp": 2**62},
        {**OBSERVER_BODY, "RsList": foreign, "ObClusterId": 9, "ObRegionId": 9},
    ):
        message = fails(client, 403, "POST", body=posted, **RS_PARAMS)
        assert "recorded through obfleet's API" in message
    fails(client, 403, "DELETE", **RS_PARAMS, ObClusterId="1")
    fails(
        client, 403, "POST", Action="DeleteObRootServiceInfoByClusterName", ClusterName="obcluster"
    )
    assert registrations(client) == 0
    assert rs_list(client) == ["198.18.0.2:2882"]
    assert ok(client, Action="GetObProxyConfig") == told
    record = client.get("/api/v2/ob/clusters", headers=ADMIN).json()["data"]["contents"][0]
    assert [s["address"] for s in record["rootServers"]] == ["198.18.0.2:2882"]


def test_a_registration_made_before_the_cluster_was_recorded_no_longer_answers(
    client: TestClient,
) -> None:
    register(client)  # 1.1.1.1, then an operator imports the cluster with its real servers
    import_cluster(client, "obcluster", 1, ("198.18.0.2", 2881))
    assert rs_list(client) == ["198.18.0.2:2882"]
    assert [i["ObClusterId"] for i in ok(client, **RS_PARAMS)] == [1]


def test_primary_and_standby_share_a_name(client: TestClient) -> None:
    register(client)
    standby = {
        **OBSERVER_BODY,
        "ObClusterId": 2,
        "ObRegionId": 2,
        "Type": "STANDBY",
        "timestamp": 2**62,  # newer than the primary, but a PRIMARY is preferred
        "RsList": [{"address": "198.18.0.9:2882", "role": "LEADER", "sql_port": 2881}],
    }
    register(client, standby)
    assert rs_list(client) == ["1.1.1.1:2882"]
    both = ok(client, Action="ObRootServiceInfo", ObCluster="obcluster", version="2")
    assert [(i["ObClusterId"], i["Type"]) for i in both] == [(1, "PRIMARY"), (2, "STANDBY")]
    assert rs_list(client, ObClusterId="2") == ["198.18.0.9:2882"]
    regions = ok(client, Action="ObIDCRegionInfo", ObCluster="obcluster", version="2")
    assert [r["ObRegionId"] for r in regions] == [1, 2]


def test_without_a_primary_the_newest_answers(client: TestClient) -> None:
    for cluster_id, timestamp, address in ((1, 200, "1.1.1.1:2882"), (2, 300, "1.1.1.2:2882")):
        body = {
            "ObCluster": "obcluster",
            "ObClusterId": cluster_id,
            "Type": "STANDBY",
            "timestamp": timestamp,
            "RsList": [{"address": address, "role": "LEADER", "sql_port": 2881}],
        }
        register(client, body)
    assert rs_list(client) == ["1.1.1.2:2882"]


def test_old_spellings_and_key_case_are_accepted(client: TestClient) -> None:
    body = {
        "obregion": "legacy",
        "OBREGIONID": 5,
        "type": "PRIMARY",
        "rslist": [{"ADDRESS": "1.1.1.1:2882", "Role": "LEADER", "SQL_PORT": 2881}],
    }
    ok(client, "POST", body=body, Action="ObRootServiceInfo", ObRegion="legacy")
    answer = ok(client, Action="ObRootServiceInfo", ObRegion="legacy")
    assert (answer["ObCluster"], answer["ObClusterId"]) == ("legacy", 5)
    assert answer["RsList"] == [{"address": "1.1.1.1:2882", "role": "LEADER", "sql_port": 2881}]
    assert answer["timestamp"] > 0  # filled in when the observer sends none


def test_a_name_that_needs_quoting_in_urls(client: TestClient) -> None:
    body = {**OBSERVER_BODY, "ObCluster": "a b&c=d"}
    ok(client, "POST", body=body, Action="ObRootServiceInfo", ObCluster="a b&c=d")
    (entry,) = ok(client, Action="GetObProxyConfig")["ObRootServiceInfoUrlList"]
    assert entry["ObRootServiceInfoUrl"].endswith("&ObCluster=a%20b%26c%3Dd")
    r = client.get(entry["ObRootServiceInfoUrl"])
    assert r.json()["Data"]["ObCluster"] == "a b&c=d"


@pytest.mark.parametrize(
    ("params", "body", "code", "cause"),
    [
        ({"ObCluster": None}, OBSERVER_BODY, 500, "no obcluster or obregion"),
        ({}, b"", 500, "bind rootservice query parameter"),
        ({}, b"{not json", 500, "bind rootservice query parameter"),
        ({}, b"[]", 500, "bind rootservice query parameter"),
        ({}, {**OBSERVER_BODY, "ObClusterId": "1"}, 500, "bind rootservice query parameter"),
        ({}, {**OBSERVER_BODY, "RsList": [{"sql_port": "2881"}]}, 500, "bind rootservice"),
        ({}, {**OBSERVER_BODY, "ObCluster": "", "ObRegion": ""}, 400, "name is required"),
        ({}, {**OBSERVER_BODY, "Type": ""}, 400, "type is required when version > 1"),
        ({}, {**OBSERVER_BODY, "ObClusterId": 0, "ObRegionId": 0}, 400, "positive"),
        ({}, {**OBSERVER_BODY, "ObCluster": "x" * 129}, 400, "at most 128"),
        ({}, {**OBSERVER_BODY, "Type": "P" * 17}, 400, "at most 16"),
        ({}, {**OBSERVER_BODY, "RsList": [{"address": "1.1.1.1"}]}, 400, "RsList[0].address"),
        ({}, {**OBSERVER_BODY, "RsList": [{"address": ":2882"}]}, 400, "is not ip:port"),
        ({}, {**OBSERVER_BODY, "RsList": [{"address": "h:99999"}]}, 400, "is not ip:port"),
        (
            {},
            {**OBSERVER_BODY, "ReadonlyRsList": [{"address": "h:1", "sql_port": 70000}]},
            400,
            "ReadonlyRsList[0] has an invalid sql_port",
        ),
        ({}, {**OBSERVER_BODY, "ObCluster": "x" * 70_000}, 400, "larger than 65536 bytes"),
        # Deeper than Python's recursion limit, yet well under the body limit.
        ({}, b"[" * 30_000, 500, "bind rootservice query parameter"),
        ({}, b'{"RsList":' * 6_000, 500, "bind rootservice query parameter"),
        # Out of int64 (the registration table's columns, and Go's int64 fields).
        ({}, {**OBSERVER_BODY, "ObClusterId": 2**63}, 400, "ObClusterId is out of range"),
        ({}, {**OBSERVER_BODY, "ObClusterId": 2**70}, 400, "ObClusterId is out of range"),
        ({}, {**OBSERVER_BODY, "ObRegionId": 2**63}, 400, "ObRegionId is out of range"),
        ({}, {**OBSERVER_BODY, "ObRegionId": -(2**63) - 1}, 400, "ObRegionId is out of range"),
        ({}, {**OBSERVER_BODY, "timestamp": 2**64}, 400, "timestamp is out of range"),
        ({}, {**OBSERVER_BODY, "timestamp": -(2**64)}, 400, "timestamp is out of range"),
    ],
)
def test_registration_errors(
    client: TestClient, params: dict[str, Any], body: Any, code: int, cause: str
) -> None:
    query = {k: v for k, v in {**RS_PARAMS, **params}.items() if v is not None}
    if isinstance(body, bytes):
        message = fails(client, code, "POST", raw=body, **query)
    else:
        message = fails(client, code, "POST", raw=json.dumps(body).encode(), **query)
    assert cause in message
    assert message.startswith("got internal error: " if code == 500 else "illegal argument: ")
    assert registrations(client) == 0


def test_version_1_registrations_need_no_type(client: TestClient) -> None:
    register(client, {**OBSERVER_BODY, "Type": ""}, version="1")
    assert ok(client, Action="ObRootServiceInfo", ObCluster="obcluster")["Type"] == ""


@pytest.mark.parametrize(
    ("params", "cause"),
    [
        ({}, "only supported when version >= 2"),
        ({"version": "2"}, "only supported with obcluster id"),
        ({"version": "1", "ObClusterId": "1"}, "only supported when version >= 2"),
    ],
)
def test_delete_needs_version_2_and_an_id(
    client: TestClient, params: dict[str, str], cause: str
) -> None:
    register(client)
    message = fails(
        client, 400, "DELETE", Action="ObRootServiceInfo", ObCluster="obcluster", **params
    )
    assert message == f"illegal argument: delete obcluster rs info is {cause}"
    fails(client, 500, "DELETE", Action="ObRootServiceInfo", version="2", ObClusterId="1")
    assert registrations(client) == 1


def test_obd_register_conflict_cleanup_flow(client: TestClient) -> None:
    """OBD's configserver_pre: register; on a Code other than 200 (with HTTP 200, or it gives
    up) and --force-delete, delete by cluster name and register again."""
    register_params = {"Action": "ObRootServiceRegister", "ObCluster": "obd1", "ObClusterId": "7"}
    assert ok(client, "POST", **register_params) == "successful"
    reserved = ok(client, Action="ObRootServiceInfo", ObCluster="obd1")
    assert (reserved["ObClusterId"], reserved["Type"], reserved["RsList"]) == (7, "PRIMARY", [])

    r = call(client, "POST", **register_params)
    assert r.status_code == 200
    assert (r.json()["Code"], r.json()["Success"]) == (409, False)
    assert "obd1 is already registered" in r.json()["Message"]

    cleanup = {"Action": "DeleteObRootServiceInfoByClusterName", "ClusterName": "obd1"}
    assert ok(client, "POST", **cleanup) == "successful"
    fails(client, 404, Action="ObRootServiceInfo", ObCluster="obd1")
    assert ok(client, "POST", **register_params) == "successful"


def test_delete_by_cluster_name_keeps_other_names(client: TestClient) -> None:
    register(client)
    register(client, {**OBSERVER_BODY, "ObCluster": "other", "ObRegion": "other"})
    ok(client, "POST", Action="DeleteObRootServiceInfoByClusterName", ClusterName="obcluster")
    fails(client, 404, Action="ObRootServiceInfo", ObCluster="obcluster")
    assert rs_list(client, "other") == ["1.1.1.1:2882"]


def test_the_largest_int64_values_are_accepted(client: TestClient) -> None:
    top = 2**63 - 1
    register(client, {**OBSERVER_BODY, "ObClusterId": top, "ObRegionId": top, "timestamp": top})
    answer = ok(client, Action="ObRootServiceInfo", ObCluster="obcluster")
    assert (answer["ObClusterId"], answer["timestamp"]) == (top, top)


def test_obd_cannot_reserve_the_name_of_a_cluster_record(client: TestClient) -> None:
    """A record already answers for the name: a reservation (empty RsList, its own timestamp)
    would hide it, so it is refused as a registered name is."""
    import_cluster(client, "c1", 1, ("198.18.0.2", 2881))
    for cluster_id in ("999", "1"):
        r = call(
            client, "POST", Action="ObRootServiceRegister", ObCluster="c1", ObClusterId=cluster_id
        )
        assert r.status_code == 200
        assert (r.json()["Code"], r.json()["Success"]) == (409, False)
        assert "c1 is already registered" in r.json()["Message"]
    assert registrations(client) == 0
    answer = ok(client, Action="ObRootServiceInfo", ObCluster="c1")
    assert answer["ObClusterId"] == 1
    assert [s["address"] for s in answer["RsList"]] == ["198.18.0.2:2882"]


@pytest.mark.parametrize(
    ("name", "cause"),
    [
        ("x" * 129, "at most 128 printable characters"),
        ("x" * 200, "at most 128 printable characters"),
        ("bad\x00name", "at most 128 printable characters"),
        ("tab\tname", "at most 128 printable characters"),
    ],
)
def test_obd_reservations_check_the_name(client: TestClient, name: str, cause: str) -> None:
    message = fails(
        client, 400, "POST", Action="ObRootServiceRegister", ObCluster=name, ObClusterId="7"
    )
    assert message.startswith("illegal argument: ") and cause in message
    assert registrations(client) == 0


def test_obd_may_reserve_a_128_character_name(client: TestClient) -> None:
    name = "x" * 128
    assert ok(client, "POST", Action="ObRootServiceRegister", ObCluster=name, ObClusterId="7")
    assert ok(client, Action="ObRootServiceInfo", ObCluster=name)["ObClusterId"] == 7


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"Action": "ObRootServiceRegister", "ObClusterId": "7"}, 500),
        ({"Action": "ObRootServiceRegister", "ObCluster": "obd1"}, 400),
        ({"Action": "ObRootServiceRegister", "ObCluster": "obd1", "ObClusterId": "-1"}, 400),
        ({"Action": "DeleteObRootServiceInfoByClusterName"}, 400),
        ({"Action": "DeleteObRootServiceInfoByClusterName", "ClusterName": ""}, 400),
    ],
)
def test_obd_action_errors(client: TestClient, params: dict[str, str], code: int) -> None:
    fails(client, code, "POST", **params)
    assert registrations(client) == 0
