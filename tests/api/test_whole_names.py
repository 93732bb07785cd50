"""Names, user names and addresses are checked whole. A pattern anchored with `$` lets a value
with a trailing newline through (`$` also matches before a final "\\n"); such a value then
reaches a host's command line or an SSH login. Each is refused with 400 in the OCP envelope, and
the same value without the newline is accepted."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from obfleet.errors import ApiError, ErrorCode
from obfleet.packages.rpm import NAME as RPM_NAME_PART
from obfleet.services.users import create_user
from obfleet.store.db import Database
from tests.conftest import ADMIN

ROOT_SERVER = {"address": "198.18.0.1:2882", "role": "LEADER", "sqlPort": 2881}


def ob_import(name: str = "ob1", address: str = "198.18.0.1:2882") -> dict[str, Any]:
    root = {**ROOT_SERVER, "address": address}
    return {"name": name, "obClusterId": 1, "proxyroPassword": "Pw_1", "rootServers": [root]}


def credential(name: str = "ssh_root", username: str = "root") -> dict[str, Any]:
    return {"name": name, "targetType": "HOST", "username": username, "password": "Pw_1"}


def obproxy_cluster(name: str = "pc1", username: str = "proxyro") -> dict[str, Any]:
    link = {"clusterName": "ob1", "obClusterId": 1, "username": username}
    return {"name": name, "workMode": "RS_LIST", "obLinks": [link]}


CASES = {
    "OceanBase cluster name": ("/api/v2/ob/clusters/import", lambda v: ob_import(name=v), "ob1"),
    "root server host": (
        "/api/v2/ob/clusters/import",
        lambda v: ob_import(address=f"{v}:2882"),
        "ob.example",
    ),
    "credential name": ("/api/v2/credentials", lambda v: credential(name=v), "ssh_root"),
    "credential user name": ("/api/v2/credentials", lambda v: credential(username=v), "root"),
    "OBProxy cluster name": ("/api/v2/obproxy/clusters", lambda v: obproxy_cluster(name=v), "pc1"),
    "obLinks user name": (
        "/api/v2/obproxy/clusters",
        lambda v: obproxy_cluster(username=v),
        "proxyro",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_trailing_newline_is_refused(client: TestClient, case: str) -> None:
    path, body, good = CASES[case]
    if path == "/api/v2/obproxy/clusters":
        r = client.post("/api/v2/ob/clusters/import", headers=ADMIN, json=ob_import())
        assert r.status_code == 200, r.text
    for bad in (f"{good}\n", f"{good}\n;touch /tmp/x"):
        r = client.post(path, headers=ADMIN, json=body(bad))
        assert r.status_code == 400, r.text
        assert r.json()["successful"] is False and r.json()["error"]["code"] == 1003
    r = client.post(path, headers=ADMIN, json=body(good))
    assert r.status_code == 200, r.text


def test_rpm_header_fields_are_matched_whole() -> None:
    assert RPM_NAME_PART.match("4.2.3.0")
    assert not RPM_NAME_PART.match("4.2.3.0\n")


def test_obfleet_user_names_are_matched_whole(database: Database) -> None:
    with database.transaction() as session:
        for bad in ("alice\n", "alice\n;touch /tmp/x"):
            with pytest.raises(ApiError) as refused:
                create_user(session, bad, "Alice_Pass_12", ["ADMIN"])
            assert refused.value.error_code is ErrorCode.BAD_REQUEST
        assert create_user(session, "alice", "Alice_Pass_12", ["ADMIN"]).username == "alice"
