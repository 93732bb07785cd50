"""Integers too large for the metadb (SQLite raises OverflowError, PostgreSQL and MariaDB a
DataError) answer 400 in OCP's envelope, on every route, and change nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import DataError, IntegrityError, StatementError

from obfleet.api.paging import MAX_PAGE, MAX_SIZE
from obfleet.store.base import Base
from tests.conftest import ADMIN
from tests.obproxy.lab import CLUSTERS, add_hosts, app_of, rs_list_cluster

HUGE = 10**20  # past every 64-bit integer
JUST_PAST = 2**63  # one past the largest BIGINT


@pytest.fixture
def lab(client: TestClient) -> dict[str, int]:
    """An OceanBase cluster, an OBProxy cluster pc1 and one ONLINE host h1."""
    cluster_id = rs_list_cluster(client)
    ctx = app_of(client)
    with ctx.db.transaction() as session:
        (host,) = add_hosts(session, ctx, {1: "ONLINE"})
        return {"cluster": cluster_id, "host": host.id, "credential": host.credential_id}


def row_counts(client: TestClient) -> dict[str, int]:
    """Every table's rows but the audit trail's, which records the refusals too."""
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    with ctx.db.session() as session:
        return {
            table.name: session.scalar(select(func.count()).select_from(table)) or 0
            for table in Base.metadata.sorted_tables
            if table.name != "audit_event"
        }


def create_body(**install: Any) -> dict[str, Any]:
    return {
        "name": "pc2",
        "workMode": "RS_LIST",
        "obLinks": [{"clusterName": "ob1", "obClusterId": 1}],
        "obproxyInstallParam": install,
    }


# (method, path, JSON body); "{cluster}", "{credential}" and "{host}" are the lab's ids.
REQUESTS: list[tuple[str, str, Any]] = [
    ("GET", f"{CLUSTERS}/99999999999999999999999", None),
    ("GET", f"{CLUSTERS}/{JUST_PAST}", None),
    ("GET", f"/api/v2/compute/hosts/{HUGE}", None),
    ("DELETE", f"/api/v2/compute/hosts/{HUGE}", None),
    ("GET", f"/api/v2/tasks/instances/{HUGE}", None),
    ("POST", f"/api/v2/tasks/instances/{HUGE}/retry", None),
    ("GET", f"/api/v2/tasks/instances?clusterId={HUGE}", None),
    ("GET", f"/api/v2/tasks/instances?hostId={JUST_PAST}", None),
    ("GET", f"{CLUSTERS}?page=9223372036854775807", None),
    ("GET", f"/api/v2/compute/hosts?page={HUGE}", None),
    (
        "POST",
        CLUSTERS,
        {
            "name": "pc2",
            "workMode": "RS_LIST",
            "obLinks": [{"clusterName": "ob1", "obClusterId": HUGE}],
        },
    ),
    (
        "POST",
        CLUSTERS,
        create_body(hostIds=[HUGE], sqlPort=2883, exporterPort=2884, version="x.rpm"),
    ),
    ("POST", CLUSTERS + "/{cluster}/takeOver", {"hosts": [{"hostId": HUGE, "sqlPort": 3883}]}),
    (
        "POST",
        "/api/v2/compute/hosts/batchCreate",
        {
            "hostBasicDataList": [{"innerIpAddress": "198.18.0.99"}],
            "sshPort": 22,
            "kind": "DEDICATED_PHYSICAL_MACHINE",
            "credentialId": HUGE,
        },
    ),
]


@pytest.mark.parametrize(
    "method, path, body",
    REQUESTS,
    ids=[f"{m} {p}" + (" body" if b else "") for m, p, b in REQUESTS],
)
def test_out_of_range_integers_are_bad_requests(
    client: TestClient, lab: dict[str, int], method: str, path: str, body: Any
) -> None:
    before = row_counts(client)
    r = client.request(method, path.format(**lab), headers=ADMIN, json=body)
    assert r.status_code == 400, r.text
    answer = r.json()
    assert answer["successful"] is False and answer["status"] == 400
    assert answer["error"]["code"] == 1003
    assert "out of range" in answer["error"]["message"]
    assert {"timestamp", "traceId", "duration", "server"} <= answer.keys()
    assert row_counts(client) == before


def test_the_largest_bigint_is_an_ordinary_id(client: TestClient, lab: dict[str, int]) -> None:
    r = client.get(f"{CLUSTERS}/{2**63 - 1}", headers=ADMIN)
    assert r.status_code == 404 and r.json()["error"]["code"] == 21001
    r = client.get(f"{CLUSTERS}/{2**63}", headers=ADMIN)
    assert r.status_code == 400 and "out of range" in r.json()["error"]["message"]
    r = client.get(f"{CLUSTERS}/{-(2**63) - 1}", headers=ADMIN)
    assert r.status_code == 400 and "out of range" in r.json()["error"]["message"]


def test_page_has_an_upper_bound(client: TestClient, lab: dict[str, int]) -> None:
    r = client.get(f"{CLUSTERS}?page={MAX_PAGE}&size={MAX_SIZE}", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["contents"] == []
    r = client.get(f"{CLUSTERS}?page={MAX_PAGE + 1}", headers=ADMIN)
    assert r.status_code == 400
    assert r.json()["error"]["message"] == (
        f"The request is invalid. Cause: page {MAX_PAGE + 1} is out of range: "
        f"pages go from 1 to {MAX_PAGE}."
    )


# "²" and an Arabic-Indic one pass str.isdigit(); 19 digits may not fit a BIGINT.
@pytest.mark.parametrize("ids", ["%C2%B2", "1,%C2%B2", "%D9%A1", "1234567890123456789"])
@pytest.mark.parametrize("action", ["DELETE ", "POST /restart", "POST /upgrade"])
def test_obproxy_ids_are_ascii_digits(
    client: TestClient, lab: dict[str, int], ids: str, action: str
) -> None:
    method, _, suffix = action.partition(" ")
    before = row_counts(client)
    r = client.request(
        method, f"{CLUSTERS}/{lab['cluster']}/obproxies/{ids}{suffix}", headers=ADMIN
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == 1003
    assert "obproxyIds must be a comma-separated list of ids" in r.json()["error"]["message"]
    assert row_counts(client) == before


def _raise(exc: BaseException) -> None:
    raise exc


# What the databases raise for a number too large (the guard usually comes first), and what
# is still a server error.
RAISED: list[tuple[BaseException, int]] = [
    (OverflowError("Python int too large to convert to SQLite INTEGER"), 400),
    (StatementError("bind", "SELECT 1", {}, OverflowError("too large")), 400),
    (DataError("SELECT 1", {}, Exception("integer out of range")), 400),
    (IntegrityError("INSERT", {}, Exception("duplicate key")), 500),
    (StatementError("bind", "SELECT 1", {}, ValueError("bug")), 500),
    (ValueError("a bug"), 500),
]


def test_only_data_errors_are_the_requests_fault(client: TestClient) -> None:
    for index, (exc, status) in enumerate(RAISED):
        client.app.add_api_route(  # type: ignore[attr-defined]
            f"/test-only/raise/{index}", lambda exc=exc: _raise(exc), methods=["GET"]
        )
        r = client.get(f"/test-only/raise/{index}", headers=ADMIN)
        assert r.status_code == status, (exc, r.text)
        answer = r.json()
        assert answer["successful"] is False and answer["status"] == status
        if status == 400:
            assert answer["error"]["code"] == 1003 and "out of range" in answer["error"]["message"]
        else:
            assert answer["error"] == {"code": 1115, "message": "An unexpected error occurred."}
