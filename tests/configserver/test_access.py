"""Who may change the config server's registrations, how many, and which registration wins."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from ipaddress import ip_network
from typing import Any

import pytest
from fastapi.testclient import TestClient

from obfleet.api.app import create_app
from obfleet.config import Settings
from tests.configserver.helpers import OBSERVER_BODY, fails, import_cluster, ok

RS = {"Action": "ObRootServiceInfo", "ObCluster": "obcluster", "version": "2"}
WRITES: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = [
    ("POST", RS, OBSERVER_BODY),
    ("DELETE", {**RS, "ObClusterId": "1"}, None),
    ("POST", {"Action": "ObRootServiceRegister", "ObCluster": "obd1", "ObClusterId": "7"}, None),
    ("POST", {"Action": "DeleteObRootServiceInfoByClusterName", "ClusterName": "obcluster"}, None),
]


@contextmanager
def served(settings: Settings, address: str, **changes: Any) -> Iterator[TestClient]:
    """The app with these settings changed, its requests coming from `address`."""
    app = create_app(replace(settings, **changes), run_engine=False)
    with TestClient(app, raise_server_exceptions=False, client=(address, 50000)) as client:
        yield client


def write(client: TestClient, method: str, params: dict[str, Any], body: Any) -> Any:
    return client.request(method, "/services", params=params, json=body)


def test_writes_from_an_address_obfleet_does_not_know_are_refused(client, settings) -> None:
    ok(client, "POST", body=OBSERVER_BODY, **RS)  # from loopback
    told = ok(client, Action="GetObProxyConfig")
    with served(settings, "198.18.0.50") as stranger:
        for method, params, body in WRITES:
            r = write(stranger, method, params, body)
            assert (r.status_code, r.json()["Code"]) == (403, 403), r.text
            assert "198.18.0.50 may not change registrations" in r.json()["Message"]
        assert ok(stranger, Action="GetObProxyConfig") == told  # reads stay open
    assert (
        ok(client, Action="ObRootServiceInfo", ObCluster="obcluster")["RsList"]
        == (OBSERVER_BODY["RsList"])
    )


def test_writes_from_known_root_servers_are_taken(client, settings) -> None:
    import_cluster(client, "recorded", 5, ("198.18.0.2", 2881))
    ok(client, "POST", body=OBSERVER_BODY, **RS)  # its RsList is 1.1.1.1
    other = {**OBSERVER_BODY, "ObCluster": "second", "ObRegion": "second"}
    for address in ("198.18.0.2", "1.1.1.1", "::ffff:198.18.0.2"):
        with served(settings, address) as observer:
            ok(observer, "POST", body=other, **{**RS, "ObCluster": "second"})


def test_allowed_networks_widen_the_rule(client, settings) -> None:
    with served(settings, "198.18.0.50", configserver_allow=(ip_network("198.18.0.0/24"),)) as c:
        assert ok(c, "POST", body=OBSERVER_BODY, **RS) == "successful"
    with served(settings, "198.18.1.50", configserver_allow=(ip_network("198.18.0.0/24"),)) as c:
        fails(c, 403, "POST", body=OBSERVER_BODY, **RS)


def test_fully_open_only_when_asked_for(monkeypatch) -> None:
    monkeypatch.delenv("OBFLEET_CONFIGSERVER_ALLOW", raising=False)
    assert Settings.from_env().configserver_allow == ()
    monkeypatch.setenv("OBFLEET_CONFIGSERVER_ALLOW", "0.0.0.0/0, ::/0")
    allow = Settings.from_env().configserver_allow
    assert allow == (ip_network("0.0.0.0/0"), ip_network("::/0"))
    monkeypatch.setenv("OBFLEET_CONFIGSERVER_ALLOW", "10.0.0.1/8")
    with pytest.raises(ValueError, match="OBFLEET_CONFIGSERVER_ALLOW"):
        Settings.from_env()


def test_a_token_is_required_when_set(settings) -> None:
    with served(settings, "127.0.0.1", configserver_token="Tok-123") as c:
        for token in ({}, {"Token": "wrong"}):
            message = fails(c, 403, "POST", body=OBSERVER_BODY, **RS, **token)
            assert "Token" in message and "Tok-123" not in message
        assert ok(c, "POST", body=OBSERVER_BODY, **RS, Token="Tok-123") == "successful"


def test_an_older_registration_never_replaces_a_newer_one(client) -> None:
    newer = {**OBSERVER_BODY, "timestamp": 2000}
    ok(client, "POST", body=newer, **RS)
    stale = {**OBSERVER_BODY, "timestamp": 1000, "RsList": [{"address": "6.6.6.6:2882"}]}
    assert "newer timestamp" in fails(client, 409, "POST", body=stale, **RS)
    answer = ok(client, Action="ObRootServiceInfo", ObCluster="obcluster")
    assert (answer["timestamp"], answer["RsList"]) == (2000, OBSERVER_BODY["RsList"])
    moved = [{"address": "1.1.1.2:2882", "role": "LEADER", "sql_port": 2881}]
    ok(client, "POST", body={**newer, "RsList": moved}, **RS)  # the same time: taken
    assert ok(client, Action="ObRootServiceInfo", ObCluster="obcluster")["RsList"] == moved


def test_the_number_of_registered_clusters_is_bounded(settings) -> None:
    with served(settings, "127.0.0.1", configserver_max_clusters=2) as c:
        for name in ("a", "b"):
            ok(c, "POST", body={**OBSERVER_BODY, "ObCluster": name, "ObRegion": name}, **RS)
        third = {**OBSERVER_BODY, "ObCluster": "c", "ObRegion": "c"}
        assert "at most 2 clusters" in fails(c, 409, "POST", body=third, **RS)
        register = {"Action": "ObRootServiceRegister", "ObCluster": "d", "ObClusterId": "7"}
        assert "at most 2" in write(c, "POST", register, None).json()["Message"]
        again = {
            **OBSERVER_BODY,
            "ObCluster": "a",
            "ObRegion": "a",
            "timestamp": OBSERVER_BODY["timestamp"] + 1,
        }
        ok(c, "POST", body=again, **RS)  # a registered cluster may still update itself
        names = ok(c, Action="GetObRootServiceInfoUrlTemplate")["ObClusterList"]
        assert names == ["a", "b"]
