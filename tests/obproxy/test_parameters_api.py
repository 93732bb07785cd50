"""Parameter changes (PUT clusters/{id}/parameters, an extension), the live per-obproxy view of
GET clusters/{id}/parameters, and the shapes and refusals of restart, in process on the metadb
under test. The obproxies are rows pointing at the stand-in OBProxy's SQL server on 127.0.0.1
(real MySQL protocol, root@proxysys) or at a port where nothing listens; a runtime change needs
nothing else, so its task runs here end to end."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from obfleet.obproxy import catalog
from obfleet.records import credentials
from obfleet.store.models.hosts import Host
from obfleet.store.models.obproxy import ObproxyCluster, ObproxyServer
from tests.conftest import ADMIN, wait_task
from tests.server import free_port
from tests.standin import obproxy as standin
from tests.support.silent import Silent

VERSION = "4.2.3.0-3"
HOST_NUMBERS = itertools.count(20000)
STARTUP = [{"name": "enable_strict_kernel_release", "value": "false"}]
RUNTIME = [
    {"name": "syslog_level", "value": "WARN"},
    {"name": "proxy_mem_limited", "value": "1GB"},
]


class StandinSql:
    """The stand-in OBProxy's SQL port on 127.0.0.1, in this process."""

    def __init__(self, home: Path, password: str) -> None:
        self.proxy = standin.Proxy(home)
        self.proxy.config.update({"obproxy_sys_password": standin.stage1_hex(password)})
        self.server = standin.SqlServer(0, self.proxy)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def value(self, name: str) -> str:
        return self.proxy.config.get(name)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def import_ob(client: TestClient) -> None:
    r = client.post(
        "/api/v2/ob/clusters/import",
        headers=ADMIN,
        json={
            "name": "hooray",
            "obClusterId": 1,
            "proxyroPassword": "Proxyro_pw_1",
            "rootServers": [{"address": "198.18.0.2:2882", "role": "LEADER", "sqlPort": 2881}],
        },
    )
    assert r.status_code == 200, r.text


def create_cluster(client: TestClient, name: str = "pc1") -> int:
    import_ob(client)
    r = client.post(
        "/api/v2/obproxy/clusters",
        headers=ADMIN,
        json={
            "name": name,
            "workMode": "RS_LIST",
            "obLinks": [{"clusterName": "hooray", "obClusterId": 1}],
            "startupParameters": STARTUP,
            "parameters": RUNTIME,
        },
    )
    assert r.status_code == 200, r.text
    (cluster,) = client.get("/api/v2/obproxy/clusters", headers=ADMIN).json()["data"]["contents"]
    return int(cluster["id"])


def proxysys_password(client: TestClient, cluster_id: int) -> str:
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    with ctx.db.session() as session:
        cluster = session.get(ObproxyCluster, cluster_id)
        return credentials.reveal(session, ctx.secrets, cluster.proxysys_credential_id).secret


def add_obproxy(
    client: TestClient, cluster_id: int, port: int, status: str = "RUNNING", version: str = VERSION
) -> int:
    """An obproxy row on a host of its own at 127.0.0.1:port."""
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    host_number = next(HOST_NUMBERS)  # hosts are unique by (address, SSH port)
    with ctx.db.transaction() as session:
        credential = credentials.create(
            session,
            ctx.secrets,
            name=f"ssh_{host_number}",
            target_type="HOST",
            auth_type="PASSWORD",
            username="root",
            secret="unused",
        )
        host = Host(
            name=f"h{host_number}",
            inner_ip_address="127.0.0.1",
            ssh_port=host_number,
            credential_id=credential.id,
            status="ONLINE",
        )
        session.add(host)
        session.flush()
        row = ObproxyServer(
            cluster_id=cluster_id,
            host_id=host.id,
            ip="127.0.0.1",
            sql_port=port,
            exporter_port=port + 1,
            version=version,
            install_path="/home/admin/obproxy-4.2.3.0",
            status=status,
            operate_status="NORMAL",
            parameter_version=1,
        )
        session.add(row)
        session.flush()
        return row.id


def put(client: TestClient, cluster_id: int, body: dict[str, Any]) -> Any:
    return client.put(f"/api/v2/obproxy/clusters/{cluster_id}/parameters", headers=ADMIN, json=body)


def cluster_view(client: TestClient, cluster_id: int) -> dict[str, Any]:
    r = client.get(f"/api/v2/obproxy/clusters/{cluster_id}", headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


def shown(client: TestClient, cluster_id: int) -> dict[str, dict[str, Any]]:
    r = client.get(f"/api/v2/obproxy/clusters/{cluster_id}/parameters", headers=ADMIN)
    assert r.status_code == 200, r.text
    return {p["name"]: p for p in r.json()["data"]["contents"]}


def recorded(client: TestClient, cluster_id: int) -> dict[str, str]:
    return {name: p["valueString"] for name, p in shown(client, cluster_id).items()}


@pytest.fixture
def make_standin(tmp_path: Path) -> Iterator[Any]:
    made: list[StandinSql] = []

    def make(password: str) -> StandinSql:
        sql = StandinSql(tmp_path / f"standin{len(made)}", password)
        made.append(sql)
        return sql

    yield make
    for sql in made:
        sql.close()


# --- validation: exactly as create -----------------------------------------------------------


REFUSED = [
    ({}, "give parameters, startupParameters or both"),
    ({"parameters": [{"name": "no_such_thing", "value": "1"}]}, "not an OBProxy parameter"),
    ({"parameters": [{"name": "sys_level", "value": "1"}]}, "did you mean"),
    (
        {"parameters": [{"name": "enable_cpu_topology", "value": "true"}]},
        "is a startup parameter: put it in startupParameters",
    ),
    (
        {"startupParameters": [{"name": "syslog_level", "value": "INFO"}]},
        "is a runtime parameter: put it in parameters",
    ),
    ({"startupParameters": [{"name": "listen_port", "value": "2883"}]}, "managed by obfleet"),
    ({"parameters": [{"name": "observer_sys_password", "value": "x"}]}, "password box"),
    ({"parameters": [{"name": "proxy_mem_limited", "value": "lots"}]}, "not a capacity"),
    ({"parameters": [{"name": "proxy_mem_limited", "value": "1TB"}]}, "above the maximum"),
    (
        {"parameters": [{"name": "syslog_level", "value": "INFO"}] * 2},
        "parameters[1] 'syslog_level' is given twice",
    ),
    ({"parameters": [{"name": "syslog_level"}]}, "give either a value or reset: true"),
    (
        {"parameters": [{"name": "syslog_level", "value": "INFO", "reset": True}]},
        "give either a value or reset: true",
    ),
    (
        {
            "parameters": [
                {"name": "syslog_level", "value": "INFO"},
                {"name": "syslog_level", "reset": True},
            ]
        },
        "parameters[1] 'syslog_level' is given twice",
    ),
    ({"parameters": [{"name": "no_such_thing", "reset": True}]}, "not an OBProxy parameter"),
    ({"parameters": [{"name": "enable_cpu_topology", "reset": True}]}, "is a startup parameter"),
    ({"startupParameters": [{"name": "listen_port", "reset": True}]}, "managed by obfleet"),
    (
        {"startupParameters": [{"name": "work_thread_num", "reset": True}]},
        "'work_thread_num' not set through obfleet",
    ),
]


def test_put_is_validated_like_create_and_refusals_change_nothing(client):
    cluster_id = create_cluster(client)
    for body, words in REFUSED:
        r = put(client, cluster_id, body)
        assert r.status_code == 400, (body, r.text)
        error = r.json()["error"]
        assert error["code"] == 1003 and words in error["message"], (body, error)
    assert cluster_view(client, cluster_id)["parameterVersion"] == 1
    assert recorded(client, cluster_id) == {
        "enable_strict_kernel_release": "false",
        "syslog_level": "WARN",
        "proxy_mem_limited": "1GB",
    }
    tasks = client.get("/api/v2/tasks/instances", headers=ADMIN).json()["data"]["contents"]
    assert [t["name"] for t in tasks] == ["Install obproxy"]


def test_put_changes_only_what_it_names_and_replace_is_explicit(client):
    cluster_id = create_cluster(client)

    def change(body: dict[str, Any], query: str = "") -> dict[str, str]:
        r = client.put(
            f"/api/v2/obproxy/clusters/{cluster_id}/parameters{query}", headers=ADMIN, json=body
        )
        assert r.status_code == 200, r.text
        return recorded(client, cluster_id)

    # The case: changing proxy_mem_limited keeps syslog_level=WARN set earlier.
    assert change({"parameters": [{"name": "proxy_mem_limited", "value": "3GB"}]}) == {
        "enable_strict_kernel_release": "false",
        "syslog_level": "WARN",
        "proxy_mem_limited": "3GB",
    }
    # A reset takes one out of the record (the task puts it back to the default).
    assert change({"parameters": [{"name": "syslog_level", "reset": True}]}) == {
        "enable_strict_kernel_release": "false",
        "proxy_mem_limited": "3GB",
    }
    assert cluster_view(client, cluster_id)["parameterVersion"] == 3
    # mode=replace: the list given is the whole runtime list; the startup list is kept.
    replaced = {"parameters": [{"name": "client_max_connections", "value": "100"}]}
    assert change(replaced, "?mode=replace") == {
        "enable_strict_kernel_release": "false",
        "client_max_connections": "100",
    }
    for query, body, words in (
        ("?mode=replace", {"parameters": [{"name": "syslog_level", "reset": True}]}, "values only"),
        ("?mode=overwrite", replaced, "mode"),
    ):
        r = client.put(
            f"/api/v2/obproxy/clusters/{cluster_id}/parameters{query}", headers=ADMIN, json=body
        )
        assert r.status_code == 400 and words in r.json()["error"]["message"], r.text
    assert cluster_view(client, cluster_id)["parameterVersion"] == 4


def test_put_checks_the_version_each_obproxy_runs(client):
    cluster_id = create_cluster(client)
    body = {"startupParameters": [{"name": "rpc_listen_port", "value": "2885"}]}
    add_obproxy(client, cluster_id, free_port())
    r = put(client, cluster_id, body)
    assert r.status_code == 400
    assert "not a parameter of OBProxy 4.2.3.0-3 (it is in 4.3.1)" in r.json()["error"]["message"]


def test_unknown_cluster_and_busy_obproxies_are_refused(client):
    r = put(client, 999999, {"parameters": []})
    assert r.status_code == 404 and r.json()["error"]["code"] == 21001
    r = client.post("/api/v2/obproxy/clusters/999999/obproxies/1/restart", headers=ADMIN)
    assert r.status_code == 404 and r.json()["error"]["code"] == 21001

    cluster_id = create_cluster(client)
    busy = add_obproxy(client, cluster_id, free_port(), status="CREATING")
    r = put(client, cluster_id, {"parameters": []})
    assert r.status_code == 409 and r.json()["error"]["code"] == 21003
    assert str(busy) in r.json()["error"]["message"]
    r = client.post(
        f"/api/v2/obproxy/clusters/{cluster_id}/obproxies/{busy}/restart", headers=ADMIN
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == 21003
    r = client.post(
        f"/api/v2/obproxy/clusters/{cluster_id}/obproxies/{busy + 1000}/restart", headers=ADMIN
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == 21002
    r = client.post(f"/api/v2/obproxy/clusters/{cluster_id}/obproxies/1,x/restart", headers=ADMIN)
    assert r.status_code == 400
    assert cluster_view(client, cluster_id)["parameterVersion"] == 1
    assert recorded(client, cluster_id)["syslog_level"] == "WARN"


# --- the tasks' shapes (no engine: nothing runs) ----------------------------------------------

RESTART_CHAIN = [
    "Stop obproxy process",
    "Start obproxy process",
    "Wait for obproxy login",
    "Set obproxy user and password for connect",
    "Sync obproxy parameter",
    "Update obproxy status",
]
PARAMETER_RESTART_CHAIN = [*RESTART_CHAIN[:4], "Update obproxy parameter", RESTART_CHAIN[5]]


def assert_one_after_the_other(task: dict[str, Any], chain: list[str], count: int) -> None:
    """Prepare, then `count` chains each after the previous one (parallelIdx i), then Finish."""
    subtasks = sorted(task["subtasks"], key=lambda s: s["seriesId"])
    names = [s["name"] for s in subtasks]
    assert names[1:-1] == chain * count and names[-1] == "Finish node"
    for i, subtask in enumerate(subtasks[1:-1]):
        assert subtask["parallelIdx"] == i // len(chain)
    for earlier, later in itertools.pairwise(subtasks):
        assert later["upstreams"] == [earlier["id"]], f"{later['name']} runs after {earlier}"


def test_restart_marks_the_obproxies_and_chains_them_one_after_the_other(client):
    cluster_id = create_cluster(client)
    ids = [add_obproxy(client, cluster_id, free_port()) for _ in range(3)]
    unavailable = add_obproxy(client, cluster_id, free_port(), status="UNAVAILABLE")
    wanted = [ids[2], unavailable, ids[0]]
    r = client.post(
        f"/api/v2/obproxy/clusters/{cluster_id}/obproxies/{','.join(map(str, wanted))}/restart",
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text
    task = r.json()["data"]
    assert task["name"] == "Restart obproxy" and task["status"] == "RUNNING"
    assert task["subtasks"][0]["name"] == "Prepare restart obproxy"
    assert_one_after_the_other(task, RESTART_CHAIN, 3)
    context = task["context"]
    assert context["listMap"]["obproxy_server_ids"] == [str(i) for i in wanted]
    assert context["listMap"]["obproxy_previous_statuses"] == ["RUNNING", "UNAVAILABLE", "RUNNING"]
    assert context["stringMap"]["service_type"] == "OB_PROXY"
    statuses = {
        s["id"]: (s["status"], s["operateStatus"])
        for s in cluster_view(client, cluster_id)["obproxies"]
    }
    assert {statuses[i] for i in wanted} == {("RESTARTING", "OPERATING")}
    assert statuses[ids[1]] == ("RUNNING", "NORMAL")
    # Busy now: neither a second restart nor a parameter change can start on them.
    again = client.post(
        f"/api/v2/obproxy/clusters/{cluster_id}/obproxies/{ids[0]}/restart", headers=ADMIN
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == 21003
    assert put(client, cluster_id, {"parameters": []}).status_code == 409


def test_a_startup_change_restarts_one_obproxy_after_the_other(client):
    cluster_id = create_cluster(client)
    ids = [add_obproxy(client, cluster_id, free_port()) for _ in range(2)]
    body = {"startupParameters": [{"name": "work_thread_num", "value": "64"}]}
    r = put(client, cluster_id, body)
    assert r.status_code == 200, r.text
    task = r.json()["data"]
    assert task["name"] == "Update obproxy parameter"
    assert task["subtasks"][0]["name"] == "Prepare update obproxy parameter"
    assert_one_after_the_other(task, PARAMETER_RESTART_CHAIN, 2)
    view = cluster_view(client, cluster_id)
    assert view["parameterVersion"] == 2
    assert {(s["status"], s["parameterVersion"]) for s in view["obproxies"]} == {("RESTARTING", 1)}
    assert [s["id"] for s in view["obproxies"]] == ids
    # Only the parameter named changed: the rest of both lists is kept.
    assert recorded(client, cluster_id) == {
        "enable_strict_kernel_release": "false",
        "work_thread_num": "64",
        "syslog_level": "WARN",
        "proxy_mem_limited": "1GB",
    }


# --- a runtime change, run by the engine against live SQL ports ---------------------------------


def cluster_on_two_standins(
    client: TestClient, make_standin: Any
) -> tuple[int, tuple[StandinSql, StandinSql], list[int]]:
    """Cluster pc1 with obproxies on two stand-ins that have its runtime parameters, in
    address order, and their ids."""
    cluster_id = create_cluster(client)
    password = proxysys_password(client, cluster_id)
    a, b = sorted((make_standin(password), make_standin(password)), key=lambda sql: sql.port)
    for sql in (a, b):
        sql.proxy.config.update({"syslog_level": "WARN", "proxy_mem_limited": "1GB"})
    ids = [add_obproxy(client, cluster_id, sql.port) for sql in (a, b)]
    return cluster_id, (a, b), ids


def test_a_runtime_change_reaches_every_obproxy_and_get_shows_each_ones_value(
    engine_client, make_standin
):
    client = engine_client
    cluster_id, (a, b), ids = cluster_on_two_standins(client, make_standin)
    labels = [f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"]  # two share an IP: ip:port

    # Only the parameters named change: syslog_level changes, proxy_mem_limited is reset (back
    # to its default in 4.2.3.0), client_max_connections is new; the startup list is kept.
    r = put(
        client,
        cluster_id,
        {
            "parameters": [
                {"name": "SYSLOG_LEVEL", "value": "error"},
                {"name": "client_max_connections", "value": "1000"},
                {"name": "proxy_mem_limited", "reset": True},
            ]
        },
    )
    assert r.status_code == 200, r.text
    task = r.json()["data"]
    assert task["name"] == "Update obproxy parameter"
    names = [s["name"] for s in sorted(task["subtasks"], key=lambda s: s["seriesId"])]
    assert names == [
        "Prepare update obproxy parameter",
        *["Update obproxy parameter", "Update obproxy status"] * 2,
        "Finish node",
    ]
    assert sorted({s["parallelIdx"] for s in task["subtasks"]}) == [-1, 0, 1]
    done = wait_task(client, task["id"])
    assert done["status"] == "SUCCESSFUL", done
    for sql in (a, b):
        assert sql.value("syslog_level") == "ERROR"
        assert sql.value("client_max_connections") == "1000"
        assert sql.value("proxy_mem_limited") == "2G"  # OBProxy's default
    view = cluster_view(client, cluster_id)
    assert view["parameterVersion"] == 2
    assert [
        (s["id"], s["status"], s["operateStatus"], s["parameterVersion"]) for s in view["obproxies"]
    ] == [(i, "RUNNING", "NORMAL", 2) for i in ids]
    params = shown(client, cluster_id)
    assert set(params) == {"enable_strict_kernel_release", "syslog_level", "client_max_connections"}
    assert params["syslog_level"]["valueString"] == "ERROR"
    assert params["syslog_level"]["values"] == [{"value": "ERROR", "obproxies": labels}]
    assert params["syslog_level"]["needReboot"] is False
    assert params["syslog_level"]["drift"] is False
    # The stand-in has no such item unless it is set: each obproxy shows what it really has.
    assert params["enable_strict_kernel_release"]["values"] == [
        {"value": None, "obproxies": labels}
    ]

    # Drift: one obproxy changed by hand shows as a second value.
    b.proxy.config.set("syslog_level", "DEBUG")
    drifted = shown(client, cluster_id)["syslog_level"]
    assert drifted["values"] == [
        {"value": "DEBUG", "obproxies": [labels[1]]},  # as many of each: by value
        {"value": "ERROR", "obproxies": [labels[0]]},
    ]
    assert (drifted["valueString"], drifted["drift"]) == ("ERROR", True)
    # The same values again change nothing recorded, and set them again where they drifted.
    r = put(
        client,
        cluster_id,
        {
            "parameters": [
                {"name": "syslog_level", "value": "ERROR"},
                {"name": "client_max_connections", "value": "1000"},
            ]
        },
    )
    assert r.status_code == 200, r.text
    assert wait_task(client, r.json()["data"]["id"])["status"] == "SUCCESSFUL"
    assert b.value("syslog_level") == "ERROR"
    assert cluster_view(client, cluster_id)["parameterVersion"] == 2


def test_get_lists_what_differs_from_the_default_on_any_obproxy_and_all_lists_everything(
    engine_client, make_standin
):
    client = engine_client
    cluster_id, (a, b), _ = cluster_on_two_standins(client, make_standin)
    labels = [f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"]
    before = shown(client, cluster_id)
    assert "enable_reroute" not in before

    # Changed by hand on both, not through obfleet: listed with the live value, no drift.
    for sql in (a, b):
        sql.proxy.config.set("enable_reroute", "true")
    # Spelled otherwise than the default but the same value: not listed.
    a.proxy.config.set("routing_cache_mem_limited", "131072KB")  # the default, 128MB
    params = shown(client, cluster_id)
    assert set(params) == set(before) | {"enable_reroute"}
    assert params["enable_reroute"] == {
        "name": "enable_reroute",
        "description": "if this and protocol_v2 enabled, proxy will reroute when routing error",
        "needReboot": False,
        "valueString": "true",
        "values": [{"value": "true", "obproxies": labels}],
        "drift": False,
    }
    # Passwords are never listed, though the obproxies show them (hashed) away from the default.
    assert not {name for name in params if "password" in name}

    r = client.get(f"/api/v2/obproxy/clusters/{cluster_id}/parameters?all=true", headers=ADMIN)
    assert r.status_code == 200, r.text
    every = {p["name"]: p for p in r.json()["data"]["contents"]}
    assert len(every) == len([i for i in catalog.catalog(VERSION) if not i.secret])
    assert set(params) <= set(every)
    assert not {name for name in every if "password" in name}
    spelled = every["routing_cache_mem_limited"]
    assert (spelled["valueString"], spelled["drift"]) == ("131072KB", False)
    assert spelled["values"] == [
        {"value": "131072KB", "obproxies": labels[:1]},
        {"value": None, "obproxies": labels[1:]},  # the stand-in shows it only once set
    ]
    # An item the stand-in does not show: no obproxy value, the default as valueString.
    assert every["enable_full_username"]["values"] == [{"value": None, "obproxies": labels}]
    assert every["enable_full_username"]["valueString"] == "false"

    # A reset of what obfleet did not set: back to the default on every obproxy, unrecorded.
    r = put(client, cluster_id, {"parameters": [{"name": "enable_reroute", "reset": True}]})
    assert r.status_code == 200, r.text
    assert wait_task(client, r.json()["data"]["id"])["status"] == "SUCCESSFUL"
    assert (a.value("enable_reroute"), b.value("enable_reroute")) == ("false", "false")
    assert "enable_reroute" not in shown(client, cluster_id)
    assert cluster_view(client, cluster_id)["parameterVersion"] == 1


def test_an_unreachable_obproxy_is_listed_without_failing_the_request(client):
    cluster_id = create_cluster(client)
    dead_port = free_port()
    add_obproxy(client, cluster_id, dead_port, status="UNAVAILABLE")
    for query in ("", "?all=true"):
        r = client.get(f"/api/v2/obproxy/clusters/{cluster_id}/parameters{query}", headers=ADMIN)
        assert r.status_code == 200, r.text
        entries = {p["name"]: p for p in r.json()["data"]["contents"]}
        (value,) = entries["syslog_level"]["values"]
        assert value["value"] is None and value["obproxies"] == ["127.0.0.1"]  # the only one
        assert f"127.0.0.1:{dead_port}: cannot log in" in value["error"]
        assert entries["syslog_level"]["valueString"] == "WARN"  # as recorded
        assert entries["syslog_level"]["drift"] is False
    assert len(entries) > 250


def test_an_unreachable_obproxy_is_shown_and_fails_only_its_branch_and_rollback_restores(
    engine_client, make_standin
):
    client = engine_client
    cluster_id = create_cluster(client)
    password = proxysys_password(client, cluster_id)
    live = make_standin(password)
    live.proxy.config.update({"syslog_level": "WARN", "proxy_mem_limited": "1GB"})
    live_id = add_obproxy(client, cluster_id, live.port)
    dead_port = free_port()
    dead_id = add_obproxy(client, cluster_id, dead_port, status="UNAVAILABLE")

    values = shown(client, cluster_id)["syslog_level"]["values"]
    assert values[0] == {"value": "WARN", "obproxies": [f"127.0.0.1:{live.port}"]}
    (dead,) = values[1:]
    assert dead["value"] is None and dead["obproxies"] == [f"127.0.0.1:{dead_port}"]
    assert f"root@proxysys at 127.0.0.1:{dead_port}: cannot log in" in dead["error"]

    # mode=replace: the runtime list given replaces the recorded one (proxy_mem_limited is left
    # out, so it goes back to its default).
    r = client.put(
        f"/api/v2/obproxy/clusters/{cluster_id}/parameters?mode=replace",
        headers=ADMIN,
        json={"parameters": [{"name": "syslog_level", "value": "ERROR"}]},
    )
    assert r.status_code == 200, r.text
    task_id = r.json()["data"]["id"]
    failed = wait_task(client, task_id)
    assert failed["status"] == "FAILED"
    by_status = {(s["name"], s["parallelIdx"]): s["status"] for s in failed["subtasks"]}
    assert by_status[("Update obproxy parameter", 0)] == "SUCCESSFUL"
    assert by_status[("Update obproxy parameter", 1)] == "FAILED"
    assert by_status[("Finish node", -1)] == "PENDING"
    (bad,) = [s for s in failed["subtasks"] if s["status"] == "FAILED"]
    log = client.get(
        f"/api/v2/tasks/instances/{task_id}/subtasks/{bad['id']}/log", headers=ADMIN
    ).json()["data"]["log"]
    assert f"root@proxysys at 127.0.0.1:{dead_port}: cannot log in" in log
    assert password not in log
    assert live.value("syslog_level") == "ERROR"
    assert live.value("proxy_mem_limited") == "2G"
    assert cluster_view(client, cluster_id)["parameterVersion"] == 2

    # Rollback: the live obproxy gets the old values, the record its old lists and version,
    # and each obproxy the status a login says.
    r = client.post(f"/api/v2/tasks/instances/{task_id}/rollback", headers=ADMIN)
    assert r.status_code == 200, r.text
    # The unreachable obproxy cannot be set back either: its rollback fails, and the operator
    # skips it (nothing was set there).
    rolling = wait_task(client, task_id)
    assert (rolling["status"], rolling["operation"]) == ("FAILED", "ROLLBACK")
    (stuck,) = [s for s in rolling["subtasks"] if s["status"] == "FAILED"]
    assert (stuck["name"], stuck["parallelIdx"]) == ("Update obproxy parameter", 1)
    r = client.post(f"/api/v2/tasks/instances/{task_id}/subtasks/{stuck['id']}/skip", headers=ADMIN)
    assert r.status_code == 200, r.text
    rolling = wait_task(client, task_id)
    assert (rolling["status"], rolling["operation"]) == ("SUCCESSFUL", "ROLLBACK")
    assert live.value("syslog_level") == "WARN" and live.value("proxy_mem_limited") == "1GB"
    view = cluster_view(client, cluster_id)
    assert view["parameterVersion"] == 1
    assert {
        s["id"]: (s["status"], s["operateStatus"], s["parameterVersion"]) for s in view["obproxies"]
    } == {live_id: ("RUNNING", "NORMAL", 1), dead_id: ("UNAVAILABLE", "NORMAL", 1)}
    assert recorded(client, cluster_id) == {
        "enable_strict_kernel_release": "false",
        "syslog_level": "WARN",
        "proxy_mem_limited": "1GB",
    }


def test_get_reads_every_obproxy_at_once_and_gives_up_on_a_silent_one(client):
    cluster_id = create_cluster(client)
    silent = Silent()
    try:
        for _ in range(3):
            add_obproxy(client, cluster_id, silent.port)  # three hosts, one silent listener
        values = shown(client, cluster_id)["syslog_level"]["values"]
    finally:
        silent.close()
    assert silent.most == 3, "the three were read at the same time"
    assert len(values) == 3
    for entry in values:
        assert entry["value"] is None and entry["obproxies"] == [f"127.0.0.1:{silent.port}"]
        assert "cannot log in" in entry["error"] and "timed out" in entry["error"]
