"""Records the in-process OBProxy tests start from: an OceanBase cluster, an RS_LIST OBProxy
cluster over it, hosts and OBProxy packages (no SSH: the hosts are rows)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from obfleet.appcontext import AppContext
from obfleet.records.credentials import create as create_credential
from obfleet.store.models.hosts import Host
from obfleet.store.models.packages import SoftwarePackage
from tests.conftest import ADMIN

CLUSTERS = "/api/v2/obproxy/clusters"


def rs_list_cluster(client: TestClient, parameters: list[dict[str, str]] | None = None) -> int:
    """OceanBase cluster ob1 (proxyro password recorded) and the RS_LIST OBProxy cluster pc1
    over it, with these runtime parameters; returns pc1's id."""
    r = client.post(
        "/api/v2/ob/clusters/import",
        headers=ADMIN,
        json={
            "name": "ob1",
            "obClusterId": 1,
            "proxyroPassword": "Proxyro_pw_1",
            "rootServers": [{"address": "198.18.0.1:2882", "role": "LEADER", "sqlPort": 2881}],
        },
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = {
        "name": "pc1",
        "workMode": "RS_LIST",
        "obLinks": [{"clusterName": "ob1", "obClusterId": 1}],
    }
    if parameters is not None:
        body["parameters"] = parameters
    r = client.post(CLUSTERS, headers=ADMIN, json=body)
    assert r.status_code == 200, r.text
    (cluster,) = client.get(f"{CLUSTERS}?name=pc1", headers=ADMIN).json()["data"]["contents"]
    return int(cluster["id"])


def app_of(client: TestClient) -> AppContext:
    app: AppContext = client.app.state.ctx  # type: ignore[attr-defined]
    return app


def add_hosts(session: Session, app: AppContext, statuses: dict[int, str]) -> list[Host]:
    """Hosts h<i> at 198.18.0.<10+i>, x86_64, with these statuses, sharing an SSH credential."""
    credential = create_credential(
        session,
        app.secrets,
        name="ssh",
        target_type="HOST",
        auth_type="PASSWORD",
        username="root",
        secret="pw",
    )
    hosts = [
        Host(
            name=f"h{i}",
            inner_ip_address=f"198.18.0.{10 + i}",
            credential_id=credential.id,
            status=status,
            architecture="x86_64",
        )
        for i, status in statuses.items()
    ]
    session.add_all(hosts)
    session.flush()
    return hosts


def obproxy_package(file_name: str, version: str, build: str) -> SoftwarePackage:
    """An OBProxy package record (no file behind it)."""
    return SoftwarePackage(
        name="obproxy-ce",
        file_name=file_name,
        extension="rpm",
        size=1,
        sha1="0" * 40,
        type="OBPROXY_INSTALL_PACKAGE",
        version=version,
        build_number=build,
        operating_system="el7",
        architecture="x86_64",
    )
