"""Deleting OBProxies in process, on the metadb under test (rows inserted directly, no host
reached): the "Offline obproxy" task's shape and context as OCP's sample, the statuses a delete
may start from, every refusal changing nothing, deleting a cluster with its obproxies, and the
whole task run where the host must be left alone (a failed install's row)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from obfleet.config import Settings
from obfleet.engine.targets import Target, record_targets
from obfleet.records import targets
from obfleet.store.db import Database
from obfleet.store.models.credentials import Credential
from obfleet.store.models.hosts import Host
from obfleet.store.models.obproxy import ObproxyCluster, ObproxyServer
from obfleet.store.models.tasks import TaskInstance
from tests.conftest import ADMIN, wait_task

# The DAG of OCP's sample, by upstreams: (name, timeout, parallel per obproxy, prohibitRollback).
STAGES = [
    ("Start node", 30, False, False),
    ("Prepare offline obproxy", 1800, True, False),
    ("Wait node", 30, False, False),
    ("Stop and uninstall obproxy", 1800, True, False),
    ("Delete obproxy info", 300, False, True),
    ("Offline obproxy exporter", 30, True, False),
    ("Unreserve host", 1800, False, False),
    ("Finish node", 30, False, True),  # OCP's 0 would time out at once in obfleet's engine
]


@dataclass
class Rows:
    db: Database
    credential_id: int

    def cluster(self, name: str) -> int:
        with self.db.transaction() as session:
            cluster = ObproxyCluster(name=name, work_mode="RS_LIST")
            session.add(cluster)
            session.flush()
            return cluster.id

    def host(self, ip: str) -> int:
        with self.db.transaction() as session:
            host = Host(name=ip, inner_ip_address=ip, credential_id=self.credential_id)
            session.add(host)
            session.flush()
            return host.id

    def obproxy(
        self, cluster_id: int, host_id: int, port: int = 2883, status: str = "RUNNING", **kw: Any
    ) -> int:
        with self.db.transaction() as session:
            row = ObproxyServer(
                cluster_id=cluster_id,
                host_id=host_id,
                ip=session.get(Host, host_id).inner_ip_address,  # type: ignore[union-attr]
                sql_port=port,
                exporter_port=port + 1,
                install_path=kw.pop("install_path", "/home/admin/obproxy-4.2.3.0"),
                status=status,
                operate_status="NORMAL" if status in ("RUNNING", "UNAVAILABLE") else "OPERATING",
                **kw,
            )
            session.add(row)
            session.flush()
            return row.id

    def statuses(self) -> dict[int, tuple[str, str]]:
        with self.db.session() as session:
            return {
                r.id: (r.status, r.operate_status) for r in session.scalars(select(ObproxyServer))
            }

    def task_count(self) -> int:
        with self.db.session() as session:
            return session.scalar(select(func.count()).select_from(TaskInstance)) or 0

    def task(
        self, name: str, status: str, context: dict[str, Any], targets: Sequence[Target] = ()
    ) -> int:
        """A task row as the engine's submit stores one, with what it acts on."""
        with self.db.transaction() as session:
            task = TaskInstance(
                name=name, status=status, operation="EXECUTE", creator="admin", context=context
            )
            session.add(task)
            session.flush()
            record_targets(session, task.id, targets)
            return task.id

    def hold(self, obproxy_id: int, task_id: int) -> None:
        """The obproxy held by the task, as the operation that marked it leaves it."""
        with self.db.transaction() as session:
            row = session.get(ObproxyServer, obproxy_id)
            assert row is not None
            row.task_id = task_id

    def set_task_status(self, task_id: int, status: str) -> None:
        with self.db.transaction() as session:
            session.execute(
                update(TaskInstance).where(TaskInstance.id == task_id).values(status=status)
            )


def _rows(settings: Settings) -> Iterator[Rows]:
    db = Database(settings.effective_database_url)
    with db.transaction() as session:
        credential = Credential(
            name="ssh",
            target_type="HOST",
            auth_type="PASSWORD",
            username="root",
            secret_encrypted="unused",
        )
        session.add(credential)
        session.flush()
        credential_id = credential.id
    yield Rows(db, credential_id)
    db.dispose()


@pytest.fixture
def rows(client: TestClient, settings: Settings) -> Iterator[Rows]:
    """Rows for the app without its engine: tasks stay as submitted."""
    yield from _rows(settings)


@pytest.fixture
def engine_rows(engine_client: TestClient, settings: Settings) -> Iterator[Rows]:
    yield from _rows(settings)


def delete(client: TestClient, path: str) -> tuple[int, dict[str, Any]]:
    r = client.delete(f"/api/v2/obproxy/clusters/{path}", headers=ADMIN)
    return r.status_code, r.json()


def in_dag_order(task: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The subtasks in stages: each stage is what depends on exactly the previous stage."""
    by_id = {s["id"]: s for s in task["subtasks"]}
    stage = [s for s in task["subtasks"] if not s["upstreams"]]
    stages = []
    while stage:
        stages.append(sorted(stage, key=lambda s: s["parallelIdx"]))
        ids = {s["id"] for s in stage}
        following = {d for s in stage for d in s["downstreams"]}
        stage = [by_id[d] for d in sorted(following)]
        for s in stage:
            assert set(s["upstreams"]) == ids, "a stage waits for the whole previous stage"
    assert sum(map(len, stages)) == len(task["subtasks"])
    return stages


def assert_offline_shape(task: dict[str, Any], n: int) -> None:
    assert task["name"] == "Offline obproxy" and task["type"] == "MANUAL"
    stages = in_dag_order(task)
    assert [s[0]["name"] for s in stages] == [name for name, *_ in STAGES]
    for stage, (name, timeout, parallel, prohibit) in zip(stages, STAGES, strict=True):
        assert [s["parallelIdx"] for s in stage] == (list(range(n)) if parallel else [-1]), name
        assert {(s["name"], s["timeout"], s["prohibitRollback"]) for s in stage} == {
            (name, timeout, prohibit)
        }
        assert all(s["nodeType"] == "JAVA_TASK" for s in stage)
    assert [s["status"] for s in stages[0]] in (["READY"], ["RUNNING"])


def test_delete_answers_an_offline_task_as_the_sample_and_marks_the_rows(
    client: TestClient, rows: Rows
) -> None:
    cluster = rows.cluster("pc_del")
    h1, h2 = rows.host("198.18.0.21"), rows.host("198.18.0.22")
    a = rows.obproxy(cluster, h1)
    b = rows.obproxy(cluster, h2, status="UNAVAILABLE")
    kept = rows.obproxy(cluster, h1, port=3883)

    status, body = delete(client, f"{cluster}/obproxies/{b},{a}")
    assert status == 200, body
    task = body["data"]
    assert body["successful"] is True
    assert_offline_shape(task, 2)
    assert task["context"]["listMap"] == {
        "obproxy_server_ids": [str(b), str(a)],
        "host_ids": [str(h2), str(h1)],
        "obproxy_previous_statuses": ["UNAVAILABLE", "RUNNING"],
    }
    assert task["context"]["stringMap"] == {
        "service_type": "OB_PROXY",
        "obproxy_need_delete_cluster": "false",
        "prohibit_rollback": "false",
        "service_name": "pc_del",
        "obproxy_cluster_id": str(cluster),
        "obproxy_cluster_name": "pc_del",
    }
    assert task["hostId"] is None  # two hosts
    assert rows.statuses() == {
        a: ("DELETING", "OPERATING"),
        b: ("DELETING", "OPERATING"),
        kept: ("RUNNING", "NORMAL"),
    }
    shown = client.get(f"/api/v2/obproxy/clusters/{cluster}", headers=ADMIN).json()["data"]
    assert {s["id"]: s["status"] for s in shown["obproxies"]} == {
        a: "DELETING",
        b: "DELETING",
        kept: "RUNNING",
    }

    # The same obproxy again while that task is still running: 21003, nothing changes.
    before = (rows.statuses(), rows.task_count())
    status, body = delete(client, f"{cluster}/obproxies/{kept},{a}")
    assert status == 409 and body["error"]["code"] == 21003, body
    assert f"task {task['id']} (Offline obproxy) is still working on it" in body["error"]["message"]
    assert (rows.statuses(), rows.task_count()) == before

    # One obproxy on one host: the task is about that host.
    status, body = delete(client, f"{cluster}/obproxies/{kept}")
    assert status == 200 and body["data"]["hostId"] == h1
    assert_offline_shape(body["data"], 1)


@pytest.mark.parametrize("ids", ["a", "1,,2", "0", "-1", "1,1", "1;2", " ", "1.5"])
def test_a_bad_id_list_is_refused_in_the_envelope(client: TestClient, rows: Rows, ids: str) -> None:
    cluster = rows.cluster("pc_bad")
    rows.obproxy(cluster, rows.host("198.18.0.21"))
    before = (rows.statuses(), rows.task_count())
    status, body = delete(client, f"{cluster}/obproxies/{ids}")
    assert status == 400, body
    assert body["successful"] is False and body["status"] == 400
    assert body["error"]["code"] == 1003 and "obproxyIds" in body["error"]["message"]
    assert (rows.statuses(), rows.task_count()) == before


def test_unknown_cluster_another_clusters_obproxy_and_busy_statuses_change_nothing(
    client: TestClient, rows: Rows
) -> None:
    mine, other = rows.cluster("pc_mine"), rows.cluster("pc_other")
    host = rows.host("198.18.0.21")
    ok = rows.obproxy(mine, host)
    foreign = rows.obproxy(other, host, port=3883)
    restarting = rows.obproxy(mine, host, port=4883, status="RESTARTING")
    before = (rows.statuses(), rows.task_count())

    status, body = delete(client, f"{mine}/obproxies/{ok},{foreign}")
    assert status == 404 and body["error"]["code"] == 21002 and body["successful"] is False
    assert str(foreign) in body["error"]["message"]
    status, body = delete(client, f"{mine}/obproxies/{ok},999999")
    assert status == 404 and body["error"]["code"] == 21002
    status, body = delete(client, f"999999/obproxies/{ok}")
    assert status == 404 and body["error"]["code"] == 21001
    status, body = delete(client, f"{mine}/obproxies/{ok},{restarting}")
    assert status == 409 and body["error"]["code"] == 21003
    assert "RESTARTING" in body["error"]["message"]
    # The whole cluster: refused as well while one of its obproxies is in another operation.
    status, body = delete(client, f"{mine}")
    assert status == 409 and body["error"]["code"] == 21003
    assert (rows.statuses(), rows.task_count()) == before


def test_a_failed_install_or_delete_can_be_deleted_a_running_one_cannot(
    client: TestClient, rows: Rows
) -> None:
    cluster = rows.cluster("pc_leftover")
    h1, h2 = rows.host("198.18.0.21"), rows.host("198.18.0.22")
    creating = rows.obproxy(cluster, h1, status="CREATING")
    deleting = rows.obproxy(cluster, h2, status="DELETING")
    # An install that has not recorded its obproxy yet acts on the host's SQL port; a delete
    # holds the rows it marked.
    install = rows.task(
        "Install obproxy",
        "RUNNING",
        {
            "stringMap": {"obproxy_cluster_id": str(cluster), "sql_port": "2883"},
            "listMap": {"host_ids": [str(h1)]},
        },
        targets.new_obproxies(cluster, [h1], 2883),
    )
    offline = rows.task(
        "Offline obproxy",
        "RUNNING",
        {
            "stringMap": {"obproxy_cluster_id": str(cluster)},
            "listMap": {"obproxy_server_ids": [str(deleting)], "host_ids": [str(h1)]},
        },
    )
    rows.hold(deleting, offline)
    before = (rows.statuses(), rows.task_count())
    status, body = delete(client, f"{cluster}/obproxies/{creating}")
    assert status == 409 and f"task {install} (Install obproxy)" in body["error"]["message"]
    status, body = delete(client, f"{cluster}/obproxies/{deleting}")
    assert status == 409 and f"task {offline} (Offline obproxy)" in body["error"]["message"]
    assert (rows.statuses(), rows.task_count()) == before

    # Once they failed (waiting for a person), their leftovers may be deleted.
    rows.set_task_status(install, "FAILED")
    rows.set_task_status(offline, "FAILED")
    status, body = delete(client, f"{cluster}/obproxies/{creating},{deleting}")
    assert status == 200, body
    assert body["data"]["context"]["listMap"]["obproxy_previous_statuses"] == [
        "CREATING",
        "DELETING",
    ]


def test_deleting_a_cluster_with_obproxies_offlines_them_all(
    client: TestClient, rows: Rows
) -> None:
    cluster = rows.cluster("pc_whole")
    h1, h2, h3 = (rows.host(f"198.18.0.2{i}") for i in range(3))
    ids = [rows.obproxy(cluster, h) for h in (h1, h2, h3)]
    status, body = delete(client, f"{cluster}")
    assert status == 200, body
    task = body["data"]
    assert_offline_shape(task, 3)
    assert task["context"]["listMap"]["obproxy_server_ids"] == [str(i) for i in ids]
    assert task["context"]["stringMap"]["obproxy_need_delete_cluster"] == "true"
    assert set(rows.statuses().values()) == {("DELETING", "OPERATING")}
    # The cluster stays listed until the task's Finish node forgets it.
    assert client.get(f"/api/v2/obproxy/clusters/{cluster}", headers=ADMIN).status_code == 200


def test_leftovers_of_a_failed_install_are_forgotten_and_their_host_left_alone(
    engine_client: TestClient, engine_rows: Rows
) -> None:
    """Rows whose install never got past its checks: nothing on their (unreachable) hosts is
    theirs, so the whole task runs without touching a host, and forgets the cluster."""
    rows = engine_rows
    cluster = rows.cluster("pc_never")
    h1, h2 = rows.host("198.18.0.21"), rows.host("198.18.0.22")
    ids = [
        rows.obproxy(cluster, h1, status="CREATING"),
        rows.obproxy(cluster, h2, status="CREATING"),
    ]
    status, body = delete(engine_client, f"{cluster}")
    assert status == 200, body
    done = wait_task(engine_client, body["data"]["id"])
    assert done["status"] == "SUCCESSFUL", done
    assert rows.statuses() == {}
    assert (
        engine_client.get(f"/api/v2/obproxy/clusters/{cluster}", headers=ADMIN).status_code == 404
    )
    logs = {
        s["name"] + str(s["parallelIdx"]): engine_client.get(
            f"/api/v2/tasks/instances/{done['id']}/subtasks/{s['id']}/log", headers=ADMIN
        ).json()["data"]["log"]
        for s in done["subtasks"]
    }
    assert "its install never found" in logs["Prepare offline obproxy0"]
    assert "nothing stopped, nothing removed" in logs["Stop and uninstall obproxy1"]
    assert f"obproxy {ids[0]} deleted" in logs["Delete obproxy info-1"]
    assert "obfleet runs no exporter registry" in logs["Offline obproxy exporter0"]
    assert f"host {h2}: freed obproxy {ids[1]}" in logs["Unreserve host-1"]
    assert "No obproxy remains on it" in logs["Unreserve host-1"]
    assert "OBProxy cluster pc_never deleted" in logs["Finish node-1"]


def test_rollback_of_a_failed_prepare_restores_the_status(
    engine_client: TestClient, engine_rows: Rows
) -> None:
    rows = engine_rows
    cluster = rows.cluster("pc_back")
    broken = rows.obproxy(
        cluster, rows.host("198.18.0.21"), status="UNAVAILABLE", install_path=None
    )
    status, body = delete(engine_client, f"{cluster}/obproxies/{broken}")
    assert status == 200, body
    failed = wait_task(engine_client, body["data"]["id"])
    assert failed["status"] == "FAILED"
    assert {s["name"] for s in failed["subtasks"] if s["status"] == "FAILED"} == {
        "Prepare offline obproxy"
    }
    assert rows.statuses() == {broken: ("DELETING", "OPERATING")}
    r = engine_client.post(f"/api/v2/tasks/instances/{failed['id']}/rollback", headers=ADMIN)
    assert r.status_code == 200, r.text
    rolled_back = wait_task(engine_client, failed["id"])
    assert (rolled_back["status"], rolled_back["operation"]) == ("SUCCESSFUL", "ROLLBACK")
    assert rows.statuses() == {broken: ("UNAVAILABLE", "NORMAL")}


def test_concurrent_deletes_of_one_obproxy_start_one_task(client: TestClient, rows: Rows) -> None:
    cluster = rows.cluster("pc_race")
    target = rows.obproxy(cluster, rows.host("198.18.0.21"))
    before = rows.task_count()
    start = threading.Barrier(8)

    def one(_: int) -> int:
        start.wait()
        return delete(client, f"{cluster}/obproxies/{target}")[0]

    with ThreadPoolExecutor(8) as pool:
        answers = sorted(pool.map(one, range(8)))
    assert answers == [200] + [409] * 7
    assert rows.task_count() == before + 1
