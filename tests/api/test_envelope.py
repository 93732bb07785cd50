"""Every response, errors included, comes in OCP's envelope."""

from __future__ import annotations

import json
import re

import pytest
from fastapi import APIRouter

from obfleet.api.auth import public
from obfleet.api.envelope import EnvelopeResponse
from tests.conftest import ADMIN

ENVELOPE_KEYS = {"successful", "timestamp", "duration", "status", "traceId", "server"}
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$")


def assert_error(response, status: int, code: int) -> dict:
    body = response.json()
    assert response.status_code == status, body
    assert body.keys() >= ENVELOPE_KEYS
    assert body["successful"] is False
    assert body["status"] == status
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert re.fullmatch(r"[0-9a-f]{16}", body["traceId"])
    assert TIME.match(body["timestamp"])
    return body


def test_success_envelope(client):
    body = client.get("/api/v2/ob/clusters", headers=ADMIN).json()
    assert ENVELOPE_KEYS | {"data"} <= body.keys()
    assert body["successful"] is True and body["status"] == 200
    assert TIME.match(body["timestamp"])
    assert body["data"]["page"] == {"number": 1, "size": 10, "totalElements": 0, "totalPages": 0}


def test_trace_ids_are_fresh_per_request(client):
    ids = {client.get("/api/v2/ob/clusters", headers=ADMIN).json()["traceId"] for _ in range(5)}
    assert len(ids) == 5


def test_unknown_route_404(client):
    assert_error(client.get("/api/v2/nothing-here", headers=ADMIN), 404, 1116)


def test_wrong_method_405(client):
    assert_error(client.put("/api/v2/ob/clusters", headers=ADMIN), 405, 1008)


def test_no_credentials_401(client):
    assert_error(client.get("/api/v2/ob/clusters"), 401, 3000)


def test_bad_password_401(client):
    from tests.conftest import basic

    assert_error(client.get("/api/v2/ob/clusters", headers=basic("admin", "wrong")), 401, 3004)


def test_malformed_json_400(client):
    r = client.post(
        "/api/v2/ob/clusters/import",
        headers={**ADMIN, "content-type": "application/json"},
        content=b"{not json",
    )
    assert_error(r, 400, 1003)


def test_validation_error_names_field_and_rule(client):
    r = client.post(
        "/api/v2/ob/clusters/import",
        headers=ADMIN,
        json={"name": "c1", "obClusterId": "x", "rootServers": []},
    )
    body = assert_error(r, 400, 1003)
    assert "obClusterId" in body["error"]["message"]
    assert "integer" in body["error"]["message"]


def test_paging_limits(client):
    assert_error(client.get("/api/v2/ob/clusters?size=2001", headers=ADMIN), 400, 1003)
    assert_error(client.get("/api/v2/ob/clusters?page=0", headers=ADMIN), 400, 1003)
    body = assert_error(
        client.get("/api/v2/ob/clusters?sort=password,asc", headers=ADMIN), 400, 1003
    )
    assert "sort" in body["error"]["message"]


@pytest.fixture
def crashing_client(settings):
    from fastapi.testclient import TestClient

    from obfleet.api.app import create_app

    app = create_app(settings, run_engine=False)
    router = APIRouter(dependencies=[pytest.importorskip("fastapi").Depends(public)])

    @router.get("/api/v2/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    app.include_router(router)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_unexpected_error_500_hides_internals(crashing_client):
    body = assert_error(crashing_client.get("/api/v2/boom"), 500, 1115)
    assert "secret internals" not in body["error"]["message"]


def test_open_endpoints(client):
    r = client.get("/api/v2/time")
    assert r.status_code == 200 and TIME.match(r.text)
    info = client.get("/api/v2/info").json()
    assert info["name"] == "obfleet" and info["buildVersion"]
    assert client.get("/api/v2/status").text == "okay"
    assert client.get("/api/status?includeUnavailableComponent=true").text == "okay"
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize(
    "content",
    [
        {"data": {"b": [1, {"z": None, "y": "é"}], "a": 1.5}, "status": 200},
        # Keys other than strings: written as strings, as json.dumps wrote them.
        {"data": {2: "b", 1: {3: [None]}}, "status": 200},
    ],
)
def test_answers_are_written_as_json_dumps_wrote_them(content):
    expected = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert EnvelopeResponse(content).body == expected.encode()
