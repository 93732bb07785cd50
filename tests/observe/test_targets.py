"""Prometheus HTTP service discovery: every recorded OBProxy's exporter, in http_sd's shape."""

from __future__ import annotations

from fastapi.testclient import TestClient

from obfleet.store.models.obproxy import ObproxyServer
from tests.conftest import ADMIN
from tests.obproxy.test_health import _insert_base

TARGETS = "/api/v2/obproxy/prometheus-targets"


def test_every_obproxy_exporter_is_a_target_with_its_cluster_and_host(client: TestClient) -> None:
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    assert client.get(TARGETS, headers=ADMIN).json() == []
    rows = _insert_base(ctx.db, ctx.secrets)
    first = rows.add(2883)
    other_cluster = rows.cluster("pc_second", None)
    second = rows.add(3883, status="UNAVAILABLE", cluster_id=other_cluster)
    with ctx.db.transaction() as session:  # an IPv6 host is written as [address]:port
        session.get(ObproxyServer, second).ip = "fd00::5"

    response = client.get(TARGETS, headers=ADMIN)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == [
        {
            "targets": ["127.0.0.1:2884"],
            "labels": {
                "cluster": "pc_health",
                "obproxy_cluster_id": str(rows.cluster_id),
                "obproxy_id": str(first),
                "host": "127.0.0.1",
                "status": "RUNNING",
            },
        },
        {
            "targets": ["[fd00::5]:3884"],
            "labels": {
                "cluster": "pc_second",
                "obproxy_cluster_id": str(other_cluster),
                "obproxy_id": str(second),
                "host": "fd00::5",
                "status": "UNAVAILABLE",
            },
        },
    ]


def test_targets_need_a_fleet_reader(client: TestClient) -> None:
    assert client.get(TARGETS).status_code == 401
