"""Talking to /services in-process, and setting up what it serves: OceanBase cluster records
(through the import API) and OBProxy clusters with links (straight through the models, since
the OBProxy cluster API is not this part's)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from obfleet.store.db import Database
from obfleet.store.models.ob_clusters import ObCluster
from obfleet.store.models.obproxy import ObproxyCluster, ObproxyLink
from tests.conftest import ADMIN

ENVELOPE_KEYS = ["Code", "Message", "Success", "Data", "Trace", "Server", "Cost"]

# The reference's observer registration body (obproxy-deployment-facts.md §3.2).
OBSERVER_BODY = {
    "ObClusterId": 1,
    "ObRegionId": 1,
    "ObCluster": "obcluster",
    "ObRegion": "obcluster",
    "ReadonlyRsList": [],
    "RsList": [{"address": "1.1.1.1:2882", "role": "LEADER", "sql_port": 2881}],
    "Type": "PRIMARY",
    "timestamp": 1652419587417171,
}


def call(
    client: TestClient,
    method: str = "GET",
    *,
    body: Any = None,
    raw: bytes | None = None,
    **params: Any,
) -> Any:
    """The response (a JSON `body` or `raw` bytes sent), after checking it is ob-configserver's
    envelope."""
    r = client.request(method, "/services", params=params, json=body, content=raw)
    envelope = r.json()
    assert list(envelope) == ENVELOPE_KEYS, envelope
    assert envelope["Success"] is (envelope["Code"] == 200)
    assert envelope["Trace"] == r.headers["x-trace-id"]
    return r


def ok(client: TestClient, method: str = "GET", **kwargs: Any) -> Any:
    """`Data` of an answer that must succeed."""
    r = call(client, method, **kwargs)
    assert r.status_code == 200 and r.json()["Code"] == 200, r.text
    assert r.json()["Message"] == "successful"
    return r.json()["Data"]


def fails(client: TestClient, code: int, method: str = "GET", **kwargs: Any) -> str:
    """Message of an answer that must fail with `code`, which is also its HTTP status."""
    r = call(client, method, **kwargs)
    assert (r.status_code, r.json()["Code"]) == (code, code), r.text
    assert r.json()["Data"] is None
    return str(r.json()["Message"])


def version(client: TestClient, **params: Any) -> str:
    return str(ok(client, Action="GetObProxyConfig", VersionOnly="true", **params)["Version"])


def servers(*specs: tuple[str, int]) -> list[dict[str, Any]]:
    """rootServers for the import API: (ip, sql port) each, rpc port = sql port + 1."""
    return [
        {"address": f"{ip}:{port + 1}", "role": "LEADER" if i == 0 else "FOLLOWER", "sqlPort": port}
        for i, (ip, port) in enumerate(specs)
    ]


def import_cluster(
    client: TestClient,
    name: str,
    ob_cluster_id: int,
    *specs: tuple[str, int],
    type: str = "PRIMARY",
) -> None:
    r = client.post(
        "/api/v2/ob/clusters/import",
        headers=ADMIN,
        json={
            "name": name,
            "obClusterId": ob_cluster_id,
            "type": type,
            "rootServers": servers(*(specs or (("198.18.0.2", 2881),))),
        },
    )
    assert r.status_code == 200, r.text


def db_of(client: TestClient) -> Database:
    db: Database = client.app.state.ctx.db
    return db


def set_links(db: Database, obproxy_cluster: str, *ob_clusters: str) -> None:
    """Make the OBProxy cluster (created if new) link exactly these OceanBase clusters."""
    with db.transaction() as session:
        proxy = session.scalar(select(ObproxyCluster).where(ObproxyCluster.name == obproxy_cluster))
        if proxy is None:
            proxy = ObproxyCluster(name=obproxy_cluster)
            session.add(proxy)
        wanted = set(session.scalars(select(ObCluster.id).where(ObCluster.name.in_(ob_clusters))))
        assert len(wanted) == len(ob_clusters), "link only clusters that were imported"
        kept = [link for link in proxy.links if link.ob_cluster_id in wanted]
        new = wanted - {link.ob_cluster_id for link in kept}
        proxy.links = kept + [ObproxyLink(ob_cluster_id=i) for i in sorted(new)]


def set_root_servers(db: Database, ob_cluster: str, *specs: tuple[str, int]) -> None:
    """Change a cluster record's root servers, as an operator's edit would."""
    with db.transaction() as session:
        cluster = session.scalars(select(ObCluster).where(ObCluster.name == ob_cluster)).one()
        cluster.root_servers = servers(*specs)
