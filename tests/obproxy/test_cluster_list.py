"""The OBProxy cluster list reads a page in a fixed number of statements however many clusters
it holds, and shows each cluster's own links and obproxies, as its detail does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event

from obfleet.store.rows import RowsOfIds
from tests.conftest import ADMIN
from tests.obproxy.test_clusters import create, import_ob
from tests.obproxy.test_parameters_api import add_obproxy

PATH = "/api/v2/obproxy/clusters"


@contextmanager
def counted(client: TestClient) -> Iterator[list[str]]:
    """The queries the app runs meanwhile, but for the login's (read again or not, as time
    passes: api/auth.py)."""
    engine = client.app.state.ctx.db.engine  # type: ignore[attr-defined]
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM iam_user" not in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def listed(client: TestClient, query: str = "size=2000") -> dict[str, Any]:
    r = client.get(f"{PATH}?{query}", headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def add_clusters(client: TestClient, first: int, count: int) -> None:
    """Clusters pc<first>..: every third links both OceanBase clusters, every other one has
    an obproxy (versions alternating)."""
    for n in range(first, first + count):
        links = [{"clusterName": "hooray", "obClusterId": 1}]
        if n % 3 == 0:
            links.append({"clusterName": "second", "obClusterId": 2})
        assert create(client, name=f"pc{n}", obLinks=links).status_code == 200
        if n % 2 == 0:
            cluster_id = listed(client, f"name=pc{n}")["contents"][-1]["id"]
            add_obproxy(client, cluster_id, 20000 + n * 2, version=f"4.2.{n % 4}.0")


def statements_for_list(client: TestClient, query: str) -> int:
    with counted(client) as seen:
        listed(client, query)
    return len(seen)


def test_a_page_costs_the_same_statements_for_3_or_12_clusters(client):
    import_ob(client)
    import_ob(client, name="second", ob_cluster_id=2)
    add_clusters(client, 1, 3)
    few = statements_for_list(client, "size=2000")
    add_clusters(client, 4, 9)
    assert len(listed(client)["contents"]) == 12
    assert statements_for_list(client, "size=2000") == few == 3  # the page, links, obproxies
    assert statements_for_list(client, "size=5&page=2") == few + 1  # a full page: one COUNT


def test_each_listed_cluster_shows_its_own_links_and_obproxies(client):
    import_ob(client)
    import_ob(client, name="second", ob_cluster_id=2)
    add_clusters(client, 1, 7)
    everything = listed(client)["contents"]
    by_page = [c for page in (1, 2, 3) for c in listed(client, f"size=3&page={page}")["contents"]]
    assert by_page == everything
    for cluster in everything:
        n = int(cluster["name"][2:])
        detail = client.get(f"{PATH}/{cluster['id']}", headers=ADMIN).json()["data"]
        assert cluster == detail
        names = [link["clusterName"] for link in cluster["obLinks"]]
        assert names == (["hooray", "second"] if n % 3 == 0 else ["hooray"])
        assert [link["obClusterId"] for link in cluster["obLinks"]] == list(
            range(1, len(names) + 1)
        )
        ports = [p["sqlPort"] for p in cluster["obproxies"]]
        assert ports == ([20000 + n * 2] if n % 2 == 0 else [])
        expected_versions = [{"version": f"4.2.{n % 4}.0", "count": 1}] if ports else []
        assert cluster["versions"] == expected_versions
        assert cluster["topo"] == ([{"idcName": "default", "count": 1}] if ports else [])
        assert all(p["clusterId"] == cluster["id"] for p in cluster["obproxies"])


def test_totals_are_right_with_or_without_a_count(client):
    import_ob(client)
    import_ob(client, name="second", ob_cluster_id=2)
    add_clusters(client, 1, 7)
    cases = {"size=3&page=1": 3, "size=3&page=3": 3, "size=3&page=4": 3, "size=7": 1}
    for query, pages in {**cases, "size=2000": 1}.items():
        page = listed(client, query)["page"]
        assert (page["totalElements"], page["totalPages"]) == (7, pages), query
    assert listed(client, "name=nothing")["page"]["totalElements"] == 0


def test_a_page_reads_its_parts_alike_by_range_and_by_listed_ids(client, monkeypatch):
    """Parts of a page of close ids are read by the ids' range (which may bring others'
    parts), of spread ids by the ids listed (store/rows.py): each shows the same."""
    import_ob(client)
    import_ob(client, name="second", ob_cluster_id=2)
    add_clusters(client, 1, 7)
    tasks = "/api/v2/tasks/instances?size=2000"
    pages = ("size=2000", "size=3&page=2", "name=pc1", "sort=name,desc&size=4")

    def everything(form: str) -> tuple[list[Any], Any]:
        with counted(client) as seen:
            shown = [listed(client, query) for query in pages]
            shown_tasks = client.get(tasks, headers=ADMIN).json()["data"]
        assert all(form in statement for statement in seen[1:3]), seen
        return shown, shown_tasks

    by_range = everything(" BETWEEN ")
    monkeypatch.setattr(RowsOfIds, "SPREAD", 0)
    assert everything(" IN (") == by_range
    assert all(task["subtasks"] for task in by_range[1]["contents"])
