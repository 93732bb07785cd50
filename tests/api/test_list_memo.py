"""The big list pages keep each row's JSON by the values it was built from (api/rowmemo.py): a row
read again unchanged is not built again, and every change a row shows is in its next read.

Each test reads a page (keeping its rows), makes a change through the API or the store, and
reads again: the change must show, the page must be what a build without kept rows gives, and
only the rows the change touched may have been built again (which fails if nothing is kept).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from obfleet.api.routes import obproxy as obproxy_routes
from obfleet.api.routes import tasks as task_routes
from obfleet.api.rowmemo import EncodedRows, cluster_rows_kept, page_rows
from obfleet.api.schemas.obproxy import ObproxyClusterOut
from obfleet.api.schemas.tasks import BasicTaskOut
from obfleet.engine.clock import DbClock
from obfleet.engine.reads import TASK, task_summaries
from obfleet.engine.store import EngineStore
from obfleet.store.db import Database
from obfleet.store.models.hosts import Host
from obfleet.store.models.ob_clusters import ObCluster
from obfleet.store.models.obproxy import ObproxyServer
from tests.conftest import ADMIN
from tests.obproxy.test_cluster_list import add_clusters, listed
from tests.obproxy.test_clusters import import_ob

TASKS = "/api/v2/tasks/instances"
SORTED = orjson.OPT_SORT_KEYS


def database(client: TestClient) -> Database:
    db: Database = client.app.state.ctx.db  # type: ignore[attr-defined]
    return db


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The ids of the clusters and tasks whose rows were built (not taken as kept) since the
    last `built.clear()`."""
    seen: list[int] = []
    for model in (ObproxyClusterOut, BasicTaskOut):
        wire = model.wire.__func__  # type: ignore[attr-defined]

        def spy(cls: Any, row: Any, *rest: Any, wire: Callable[..., Any] = wire) -> Any:
            seen.append(row[0])
            return wire(cls, row, *rest)

        monkeypatch.setattr(model, "wire", classmethod(spy))
    yield seen


def afresh(client: TestClient, path: str) -> bytes:
    """The page's data as the handler gives it without kept rows (each row built, the page
    encoded at once, as before them)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(obproxy_routes, "cluster_rows_kept", lambda _db: None)
        patch.setattr(task_routes, "task_rows_kept", lambda _db: None)
        return data_of(client, path)


def data_of(client: TestClient, path: str) -> bytes:
    """The answer's `data`, as sent: the bytes before `duration`, the first key after it."""
    r = client.get(path, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.content.startswith(b'{"data":')
    return r.content[len(b'{"data":') : r.content.rindex(b',"duration":')]


def fleet(client: TestClient) -> list[dict[str, Any]]:
    """Clusters pc1..pc6 on two OceanBase clusters, pc2, pc4 and pc6 with an obproxy each."""
    import_ob(client)
    import_ob(client, name="second", ob_cluster_id=2)
    add_clusters(client, 1, 6)
    clusters: list[dict[str, Any]] = listed(client)["contents"]
    return clusters


def by_name(clusters: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(c for c in clusters if c["name"] == name)


def change_shows(
    client: TestClient, built: list[int], change: Callable[[], Any], path: str = "size=2000"
) -> list[dict[str, Any]]:
    """Make the change between two reads of the cluster page; the second read must be what a
    build without kept rows gives. Returns the second read's clusters; `built` holds the ids
    of the clusters it built."""
    listed(client, path)
    change()
    built.clear()  # the change's own answer may show a cluster
    now = data_of(client, f"/api/v2/obproxy/clusters?{path}")
    shown_built = list(built)
    assert now == afresh(client, f"/api/v2/obproxy/clusters?{path}")
    built[:] = shown_built
    clusters: list[dict[str, Any]] = orjson.loads(now)["contents"]
    return clusters


def test_an_unchanged_page_is_not_built_again_and_is_the_same(client, built):
    fleet(client)
    clusters = ("size=2000", "size=3&page=2", "name=pc4", "sort=name,desc&size=4", "")
    tasks = ("size=2000", "status=RUNNING&sort=name,asc", "size=4&page=2", "")
    paths = [f"/api/v2/obproxy/clusters?{q}" for q in clusters] + [f"{TASKS}?{q}" for q in tasks]
    for path in paths:
        first = data_of(client, path)
        built.clear()
        assert data_of(client, path) == first == afresh(client, path), path
        assert len(built) == len(orjson.loads(first)["contents"]), path  # by afresh alone
    assert len(orjson.loads(data_of(client, f"{TASKS}?size=2000"))["contents"]) == 6


def test_a_linked_ob_clusters_change_shows_on_the_clusters_linking_it(client, built):
    db = database(client)
    clusters = fleet(client)

    def second_goes_down() -> None:
        with db.transaction() as session:
            session.execute(update(ObCluster).where(ObCluster.name == "second").values(status="X"))

    shown = change_shows(client, built, second_goes_down)
    linking = sorted(c["id"] for c in clusters if len(c["obLinks"]) == 2)
    assert sorted(built) == linking  # pc3 and pc6 link both
    for cluster in shown:
        statuses = [link["status"] for link in cluster["obLinks"]]
        assert statuses[1:] == (["X"] if cluster["id"] in linking else [])


def test_a_hosts_idc_and_an_obproxys_status_show_at_once(client, built):
    db = database(client)
    pc4 = by_name(fleet(client), "pc4")
    server_id = pc4["obproxies"][0]["id"]

    def host_moves() -> None:
        with db.transaction() as session:
            host_id = session.scalar(
                select(ObproxyServer.host_id).where(ObproxyServer.id == server_id)
            )
            session.execute(update(Host).where(Host.id == host_id).values(idc_name="hz2"))

    shown = by_name(change_shows(client, built, host_moves), "pc4")
    assert built == [pc4["id"]]
    assert shown["obproxies"][0]["idcName"] == "hz2"
    assert shown["topo"] == [{"idcName": "hz2", "count": 1}]

    def obproxy_stops() -> None:
        with db.transaction() as session:
            session.execute(
                update(ObproxyServer).where(ObproxyServer.id == server_id).values(status="STOPPED")
            )

    shown = by_name(change_shows(client, built, obproxy_stops), "pc4")
    assert built == [pc4["id"]]
    assert shown["obproxies"][0]["status"] == "STOPPED"


def test_changes_through_the_api_show_at_once(client, built):
    pc1 = by_name(fleet(client), "pc1")
    path = f"/api/v2/obproxy/clusters/{pc1['id']}"

    def patched() -> None:
        r = client.patch(path, headers=ADMIN, json={"address": "198.18.0.9", "port": 3883})
        assert r.status_code == 200, r.text

    shown = by_name(change_shows(client, built, patched), "pc1")
    assert (shown["address"], shown["port"]) == ("198.18.0.9", 3883)
    assert built == [pc1["id"]]

    def linked() -> None:
        link = [{"clusterName": "second", "obClusterId": 2}]
        r = client.post(f"{path}/obLinks/batchAdd", headers=ADMIN, json=link)
        assert r.status_code == 200, r.text

    shown = by_name(change_shows(client, built, linked), "pc1")
    assert [link["clusterName"] for link in shown["obLinks"]] == ["hooray", "second"]

    def unlinked() -> None:
        assert client.delete(f"{path}/obLinks/hooray", headers=ADMIN).status_code == 200

    shown = by_name(change_shows(client, built, unlinked), "pc1")
    assert [link["clusterName"] for link in shown["obLinks"]] == ["second"]
    assert built == [pc1["id"]]


def test_the_config_url_follows_the_address_the_request_came_to(client, built):
    fleet(client)
    first = listed(client)["contents"]
    other = client.get(
        "/api/v2/obproxy/clusters?size=2000", headers={**ADMIN, "host": "198.18.0.7:8080"}
    ).json()["data"]["contents"]
    assert [c["configUrl"].split("/services")[0] for c in other] == ["http://198.18.0.7:8080"] * 6
    assert [c["configUrl"] for c in listed(client)["contents"]] == [c["configUrl"] for c in first]


def test_a_subtasks_change_alone_shows_on_its_task(client, built):
    """A claim and a cancel change a subtask and leave its task's row as it was but for its
    version: the version alone says the kept row is behind."""
    db = database(client)
    fleet(client)
    before = tasks_by_id(data_of(client, f"{TASKS}?size=2000"))
    store = EngineStore(
        db, node_id="memo-test", address="127.0.0.1", lease=timedelta(seconds=30), clock=DbClock(db)
    )
    store.register()
    (claim,) = store.step([], [], claim_limit=1, check_cancels=False).claims
    cancel = f"{TASKS}/{claim.task_id}/subtasks/{claim.subtask_id}/cancel"
    for change, status in (
        (lambda: None, "RUNNING"),
        (lambda: client.post(cancel, headers=ADMIN), "CANCELING"),
    ):
        change()
        built.clear()
        now = data_of(client, f"{TASKS}?size=2000")
        assert built == [claim.task_id]
        assert now == afresh(client, f"{TASKS}?size=2000")
        task = tasks_by_id(now)[claim.task_id]
        assert {k: v for k, v in task.items() if k != "subtasks"} == {
            k: v for k, v in before[claim.task_id].items() if k != "subtasks"
        }
        shown = next(s for s in task["subtasks"] if s["id"] == claim.subtask_id)
        assert shown["status"] == status


def tasks_by_id(data: bytes) -> dict[int, dict[str, Any]]:
    return {task["id"]: task for task in orjson.loads(data)["contents"]}


def test_write_sessions_neither_take_nor_keep_rows(client):
    """A task's row is kept by its version, which a write transaction's rollback could hand to
    another change: such sessions build everything and keep nothing."""
    db = database(client)
    fleet(client)
    kept = EncodedRows()
    with db.session(write=True) as session:
        rows = session.execute(task_summaries().order_by(TASK.id)).all()
        shown = BasicTaskOut.page(session, rows, kept)
    assert len(kept) == 0 and all(isinstance(row, dict) for row in shown)
    with db.session() as session:
        through_kept = BasicTaskOut.page(session, rows, kept)
    assert orjson.dumps(through_kept, option=SORTED) == orjson.dumps(shown, option=SORTED)
    assert len(kept) == len(rows) == 6


def test_kept_rows_are_bounded_and_the_least_recently_read_go_first(client, built):
    db = database(client)
    clusters = fleet(client)
    kept = cluster_rows_kept(db)
    kept.clear()
    kept.size = 4
    everything = data_of(client, "/api/v2/obproxy/clusters?size=2000")
    ids = [c["id"] for c in clusters]
    assert len(kept) == 4
    # Each read of all 6 builds the two it finds dropped, then drops the two read longest ago.
    for dropped in (ids[:2], ids[2:4], ids[:2]):
        built.clear()
        assert data_of(client, "/api/v2/obproxy/clusters?size=2000") == everything
        assert (built, len(kept)) == (dropped, 4)
    for page, rebuilt in ((3, []), (1, []), (2, ids[2:4])):
        built.clear()
        data_of(client, f"/api/v2/obproxy/clusters?size=2&page={page}")
        assert built == rebuilt, page


def test_a_row_is_taken_only_with_the_very_values_it_was_built_from():
    kept = EncodedRows(size=8)
    builds: list[int] = []

    def page(keyed: list[tuple[int, Any]]) -> list[Any]:
        def build(positions: Any) -> list[dict[str, Any]]:
            builds.extend(keyed[p][0] for p in positions)
            return [{"id": keyed[p][0], "values": keyed[p][1]} for p in positions]

        return kept.page(keyed, build)

    first = page([(1, ("a", [("x", 1)])), (2, ("b", None))])
    assert builds == [1, 2]
    assert page([(1, ("a", [("x", 1)])), (2, ("b", None))]) == first
    assert builds == [1, 2]
    changed = page([(1, ("a", [("x", 2)])), (2, ("b", None))])
    assert builds == [1, 2, 1]
    assert orjson.loads(orjson.dumps(changed)) == [
        {"id": 1, "values": ["a", [["x", 2]]]},
        {"id": 2, "values": ["b", None]},
    ]


def test_page_rows_without_kept_rows_builds_plain_dicts(client):
    db = database(client)
    with db.session() as session:
        shown = page_rows(
            None, session, [(1, "a")], lambda positions: [{"n": p} for p in positions]
        )
    assert shown == [{"n": 0}]


def test_readers_in_several_threads_each_get_the_rows_of_their_own_values():
    """Handlers read pages in 2-4 threads at once, with values that differ as rows change."""
    kept = EncodedRows(size=24)  # fewer than the ids: rows are dropped and kept again meanwhile

    def reader(seed: int) -> None:
        chosen = random.Random(seed)
        for _ in range(300):
            keyed = [(i, (i, chosen.randrange(3))) for i in chosen.sample(range(40), 10)]
            shown = kept.page(keyed, lambda at, keyed=keyed: [list(keyed[p][1]) for p in at])
            assert orjson.loads(orjson.dumps(shown)) == [list(key) for _, key in keyed]

    with ThreadPoolExecutor(4) as pool:
        for done in [pool.submit(reader, seed) for seed in range(4)]:
            done.result()
    assert len(kept) == 24
