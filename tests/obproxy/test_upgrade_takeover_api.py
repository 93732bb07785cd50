"""Upgrade and takeOver requests, in-process (no hosts): what is refused (with nothing stored),
what is submitted, and the pure parsing and judging the take-over steps rely on."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from obfleet.errors import ApiError
from obfleet.hosts import processes
from obfleet.obproxy import adoption, cmdline
from obfleet.records.credentials import create as create_credential
from obfleet.services import obproxy_takeover
from obfleet.services.users import Principal
from obfleet.store.models.hosts import Host
from obfleet.store.models.obproxy import ObproxyServer
from obfleet.store.models.packages import SoftwarePackage
from obfleet.store.models.tasks import TaskInstance
from tests.conftest import ADMIN
from tests.obproxy.lab import CLUSTERS, add_hosts, app_of, obproxy_package, rs_list_cluster

OLD = ("4.2.3.0", "3")
UPGRADE_CHAIN = [
    "Check upgrade install path",
    "Install rpm by package and version",
    "Stop obproxy process",
    "Copy obproxy config",
    "Start obproxy process",
    "Wait for obproxy login",
    "Set obproxy user and password for connect",
    "Sync obproxy parameter",
    "Update obproxy status",
]
TAKE_OVER_CHAIN = [
    "Check obproxy to take over",
    "Prepare take over obproxy",
    "Set obproxy root password",
    "Set obproxy user and password for connect",
    "Sync obproxy parameter",
    "Update obproxy status",
]


def rpm_name(version: str, build: str, arch: str = "x86_64", name: str = "obproxy-ce") -> str:
    return f"{name}-{version}-{build}.el7.{arch}.rpm"


@pytest.fixture
def lab(client: TestClient) -> dict[str, Any]:
    """An RS_LIST cluster pc1 (runtime parameter client_session_id_version, which OBProxy has
    from 4.2.3.0 on) with obproxies on h1 and h2 running 4.2.3.0-3, h3 OFFLINE, and OBProxy
    packages 4.2.3.0-3, 4.3.0.0-1, 4.2.4.0-7 (uploaded last, older than 4.3) and 4.2.2.0-1."""
    cluster_id = rs_list_cluster(client, [{"name": "client_session_id_version", "value": "2"}])
    ctx = app_of(client)
    with ctx.db.transaction() as session:
        hosts = add_hosts(session, ctx, {1: "ONLINE", 2: "ONLINE", 3: "OFFLINE"})
        packages = [
            obproxy_package(rpm_name(version, build), version, build)
            for version, build in (OLD, ("4.3.0.0", "1"), ("4.2.4.0", "7"), ("4.2.2.0", "1"))
        ]
        session.add_all(packages)
        session.flush()
        rows = [
            ObproxyServer(
                cluster_id=cluster_id,
                host_id=host.id,
                package_id=packages[0].id,
                ip=host.inner_ip_address,
                sql_port=2883,
                exporter_port=2884,
                version="-".join(OLD),
                install_path=f"/home/admin/obproxy-{OLD[0]}",
                status="RUNNING",
                operate_status="NORMAL",
            )
            for host in hosts
        ]
        session.add_all(rows)
        session.flush()
        return {
            "cluster": cluster_id,
            "hosts": {h.name: h.id for h in hosts},
            "obproxies": {h.name: r.id for h, r in zip(hosts, rows, strict=True)},
            "packages": {p.file_name: p.id for p in packages},
        }


def snapshot(client: TestClient) -> tuple[int, list[tuple[Any, ...]]]:
    ctx = client.app.state.ctx
    with ctx.db.session() as session:
        tasks = len(session.scalars(select(TaskInstance.id)).all())
        rows = [
            (r.id, r.host_id, r.sql_port, r.status, r.operate_status, r.version, r.install_path)
            for r in session.scalars(select(ObproxyServer).order_by(ObproxyServer.id))
        ]
    return tasks, rows


def refused(client: TestClient, path: str, body: Any, status: int, code: int, words: str) -> None:
    before = snapshot(client)
    r = client.post(path, headers=ADMIN, json=body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code and words in error["message"], error
    assert snapshot(client) == before


def upgrade_path(lab: dict[str, Any], *names: str, cluster: int | None = None) -> str:
    ids = ",".join(str(lab["obproxies"][n]) for n in names)
    return f"{CLUSTERS}/{cluster or lab['cluster']}/obproxies/{ids}/upgrade"


# --- upgrade -----------------------------------------------------------------------------------


def test_upgrade_by_short_rpm_name_marks_rows_and_runs_one_obproxy_after_the_other(
    client: TestClient, lab: dict[str, Any]
) -> None:
    r = client.post(
        upgrade_path(lab, "h2", "h1"), headers=ADMIN, json={"shortRpmName": "obproxy-ce-4.3.0.0-1"}
    )
    assert r.status_code == 200, r.text
    task = r.json()["data"]
    assert task["name"] == "Upgrade obproxy" and task["status"] == "RUNNING"
    subtasks = task["subtasks"]
    names = [s["name"] for s in subtasks]
    assert names == [
        "Prepare upgrade obproxy",
        *UPGRADE_CHAIN * 2,
        "Remove old obproxy install",
        "Finish node",
    ]
    assert [s["parallelIdx"] for s in subtasks] == [-1, *[0] * 9, *[1] * 9, -1, -1]
    # A chain: each subtask waits for the one before it, so the second obproxy starts its
    # upgrade only once the first one runs the new version.
    for before, after in itertools.pairwise(subtasks):
        assert after["upstreams"] == [before["id"]]
    context = task["context"]
    strings, lists = context["stringMap"], context["listMap"]
    assert strings["package_version"] == "4.3.0.0-1"
    assert strings["install_path"] == "/home/admin/obproxy-4.3.0.0"
    assert lists["obproxy_server_ids"] == [str(lab["obproxies"][n]) for n in ("h2", "h1")]
    assert lists["old_install_paths"] == ["/home/admin/obproxy-4.2.3.0"] * 2
    assert lists["old_versions"] == ["4.2.3.0-3"] * 2
    _, rows = snapshot(client)
    by_id = {row[0]: row for row in rows}
    for name in ("h1", "h2"):
        assert by_id[lab["obproxies"][name]][3:5] == ("UPGRADING", "OPERATING")
    assert by_id[lab["obproxies"]["h3"]][3] == "RUNNING"
    # Busy now: another operation on them is refused.
    refused(client, upgrade_path(lab, "h1"), None, 409, 21003, "UPGRADING")


def test_upgrade_takes_a_full_file_name_or_the_newest_package(
    client: TestClient, lab: dict[str, Any]
) -> None:
    r = client.post(
        upgrade_path(lab, "h1"),
        headers=ADMIN,
        json={"shortRpmName": rpm_name("4.2.4.0", "7")},
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"]["context"]["stringMap"]["package_version"] == "4.2.4.0-7"
    # No body (V3.1): the newest by version, though 4.2.4.0 was uploaded after 4.3.0.0.
    r = client.post(upgrade_path(lab, "h2"), headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["context"]["stringMap"]["package_version"] == "4.3.0.0-1"


def test_upgrade_refusals_store_nothing(client: TestClient, lab: dict[str, Any]) -> None:
    body = {"shortRpmName": "obproxy-ce-4.3.0.0-1"}
    refused(client, upgrade_path(lab, "h1", cluster=4242), body, 404, 21001, "4242")
    path = f"{CLUSTERS}/{lab['cluster']}/obproxies/4242/upgrade"
    refused(client, path, body, 404, 21002, "4242")
    path = f"{CLUSTERS}/{lab['cluster']}/obproxies/1,x/upgrade"
    refused(client, path, body, 400, 1003, "comma-separated")
    refused(
        client,
        upgrade_path(lab, "h1"),
        {"shortRpmName": "obproxy-ce-9.9.9.9-1"},
        404,
        7514,
        "obproxy-ce-9.9.9.9-1",
    )
    refused(
        client,
        upgrade_path(lab, "h1"),
        {"shortRpmName": "obproxy-ce-4.2.3.0-3"},
        400,
        1003,
        "already runs 4.2.3.0-3",
    )
    refused(client, upgrade_path(lab, "h3"), body, 409, 7004, "It is OFFLINE")
    # client_session_id_version exists from OBProxy 4.2.3.0 on.
    refused(
        client,
        upgrade_path(lab, "h1"),
        {"shortRpmName": "obproxy-ce-4.2.2.0-1"},
        400,
        1003,
        "'client_session_id_version' is not a parameter of OBProxy 4.2.2.0",
    )


def add_neighbour(client: TestClient, lab: dict[str, Any], **row: Any) -> None:
    """Another obproxy on h1 (port 3883), of the lab's cluster, with these columns."""
    ctx = client.app.state.ctx
    with ctx.db.transaction() as session:
        session.add(
            ObproxyServer(
                cluster_id=lab["cluster"],
                host_id=lab["hosts"]["h1"],
                ip="198.18.0.11",
                sql_port=3883,
                exporter_port=3884,
                **row,
            )
        )


def test_upgrade_refuses_a_new_install_path_in_use_on_the_host(
    client: TestClient, lab: dict[str, Any]
) -> None:
    add_neighbour(
        client,
        lab,
        version="4.3.0.0-1",
        install_path="/home/admin/obproxy-4.3.0.0",
        status="RUNNING",
    )
    body = {"shortRpmName": "obproxy-ce-4.3.0.0-1"}
    refused(
        client,
        upgrade_path(lab, "h1"),
        body,
        409,
        1005,
        "/home/admin/obproxy-4.3.0.0 is the install path of obproxy",
    )


def test_upgrade_waits_for_another_upgrade_on_the_same_host(
    client: TestClient, lab: dict[str, Any]
) -> None:
    """The other one's new install path is recorded only once it runs there."""
    add_neighbour(
        client,
        lab,
        version="4.2.3.0-3",
        install_path="/home/admin/obproxy-4.2.3.0-b",
        status="UPGRADING",
        operate_status="OPERATING",
    )
    body = {"shortRpmName": "obproxy-ce-4.3.0.0-1"}
    refused(client, upgrade_path(lab, "h1"), body, 409, 1005, "on the same host is being upgraded")


def test_upgrade_asks_for_the_file_name_when_a_short_name_is_ambiguous(
    client: TestClient, lab: dict[str, Any]
) -> None:
    ctx = client.app.state.ctx
    with ctx.db.transaction() as session:
        for arch in ("aarch64", "ppc64le"):
            session.add(
                SoftwarePackage(
                    name="obproxy-ce",
                    file_name=rpm_name("4.4.0.0", "1", arch),
                    extension="rpm",
                    size=1,
                    sha1="0" * 40,
                    type="OBPROXY_INSTALL_PACKAGE",
                    version="4.4.0.0",
                    build_number="1",
                    operating_system="el7",
                    architecture=arch,
                )
            )
    body = {"shortRpmName": "obproxy-ce-4.4.0.0-1"}
    refused(client, upgrade_path(lab, "h1"), body, 400, 1003, "matches several packages")
    # With one x86_64 build beside them, the hosts' architecture settles it.
    with ctx.db.transaction() as session:
        session.add(
            SoftwarePackage(
                name="obproxy-ce",
                file_name=rpm_name("4.4.0.0", "1"),
                extension="rpm",
                size=1,
                sha1="0" * 40,
                type="OBPROXY_INSTALL_PACKAGE",
                version="4.4.0.0",
                build_number="1",
                operating_system="el7",
                architecture="x86_64",
            )
        )
    r = client.post(upgrade_path(lab, "h1"), headers=ADMIN, json=body)
    assert r.status_code == 200, r.text
    package_id = int(r.json()["data"]["context"]["stringMap"]["package_id"])
    assert package_id not in lab["packages"].values()


# --- takeOver ----------------------------------------------------------------------------------


def take_over_path(lab: dict[str, Any], cluster: int | None = None) -> str:
    return f"{CLUSTERS}/{cluster or lab['cluster']}/takeOver"


def test_take_over_answers_one_task_per_host(client: TestClient, lab: dict[str, Any]) -> None:
    hosts = [
        {"hostId": lab["hosts"]["h1"], "sqlPort": 3883},
        {"hostId": lab["hosts"]["h2"], "sqlPort": 4883},
    ]
    r = client.post(take_over_path(lab), headers=ADMIN, json={"hosts": hosts})
    assert r.status_code == 200, r.text
    tasks = r.json()["data"]["contents"]
    assert [t["hostId"] for t in tasks] == [lab["hosts"]["h1"], lab["hosts"]["h2"]]
    for task, host in zip(tasks, hosts, strict=True):
        assert task["name"] == "Take over obproxy" and task["status"] == "RUNNING"
        assert [s["name"] for s in task["subtasks"]] == TAKE_OVER_CHAIN
        strings = task["context"]["stringMap"]
        assert strings["sql_port"] == str(host["sqlPort"])
        assert strings["obproxy_cluster_name"] == "pc1"
    # Nothing is recorded before the task finds and checks the OBProxy.
    _, rows = snapshot(client)
    assert len(rows) == 3


@pytest.mark.parametrize(
    "hosts, status, code, words",
    [
        ([{"hostId": 4242, "sqlPort": 3883}], 404, 7005, "4242"),
        ([{"hostId": "h3", "sqlPort": 3883}], 409, 7004, "obproxies are taken over on ONLINE"),
        ([{"hostId": "h1", "sqlPort": 1024}], 400, 1003, "hosts[0].sqlPort 1024 is outside"),
        (
            [{"hostId": "h1", "sqlPort": 3883}, {"hostId": "h1", "sqlPort": 3883}],
            400,
            1003,
            "hosts[1]: host",
        ),
        ([{"hostId": "h1", "sqlPort": 2883}], 409, 1005, "is the SQL port of obproxy"),
        ([{"hostId": "h2", "sqlPort": 2884}], 409, 1005, "is the exporter port of obproxy"),
    ],
)
def test_take_over_refusals_store_nothing(
    client: TestClient,
    lab: dict[str, Any],
    hosts: list[dict[str, Any]],
    status: int,
    code: int,
    words: str,
) -> None:
    body = {
        "hosts": [
            {**h, "hostId": lab["hosts"].get(h["hostId"], h["hostId"])}
            if isinstance(h["hostId"], str)
            else h
            for h in hosts
        ]
    }
    refused(client, take_over_path(lab), body, status, code, words)


def test_take_over_needs_a_known_cluster_and_a_proxyro_password(
    client: TestClient, lab: dict[str, Any]
) -> None:
    body = {"hosts": [{"hostId": lab["hosts"]["h1"], "sqlPort": 3883}]}
    refused(client, take_over_path(lab, cluster=4242), body, 404, 21001, "4242")
    r = client.post(
        "/api/v2/ob/clusters/import",
        headers=ADMIN,
        json={
            "name": "bare",
            "obClusterId": 2,
            "rootServers": [{"address": "198.18.0.2:2882", "role": "LEADER", "sqlPort": 2881}],
        },
    )
    assert r.status_code == 200, r.text
    r = client.post(
        CLUSTERS,
        headers=ADMIN,
        json={
            "name": "pc_bare",
            "workMode": "RS_LIST",
            "obLinks": [{"clusterName": "bare", "obClusterId": 2}],
        },
    )
    assert r.status_code == 200, r.text
    (bare,) = client.get(f"{CLUSTERS}?name=pc_bare", headers=ADMIN).json()["data"]["contents"]
    refused(client, take_over_path(lab, bare["id"]), body, 400, 1003, "no proxyro credential")


def test_take_over_checks_the_given_proxysys_credential(
    client: TestClient, lab: dict[str, Any]
) -> None:
    ctx = client.app.state.ctx
    principal = Principal(user_id=1, username="admin", permissions=frozenset())
    with ctx.db.session() as session:
        host_cred = session.scalar(select(Host.credential_id).where(Host.name == "h1"))
    assert host_cred is not None

    def submit(credential_id: int) -> list[int]:
        with ctx.db.transaction() as session:
            entry = obproxy_takeover.TakeOverHost(lab["hosts"]["h1"], 3883, credential_id)
            return obproxy_takeover.take_over(
                session, ctx.secrets, lab["cluster"], [entry], principal
            )

    with pytest.raises(ApiError) as unknown:
        submit(4242)
    assert unknown.value.error_code.code == 7601
    with pytest.raises(ApiError) as wrong_kind:
        submit(host_cred)
    assert "is a HOST credential, not a OBPROXY one" in wrong_kind.value.message
    with ctx.db.transaction() as session:
        given = create_credential(
            session,
            ctx.secrets,
            name="old_proxysys",
            target_type="OBPROXY",
            auth_type="PASSWORD",
            username="root@proxysys",
            secret="Old_pw_1",
        ).id
    (task_id,) = submit(given)
    with ctx.db.session() as session:
        task = session.get(TaskInstance, task_id)
        assert task is not None
        assert task.context["stringMap"]["proxysys_credential_id"] == str(given)
        assert "Old_pw_1" not in str(task.context)


# --- the take-over steps' parsing and judging ----------------------------------------------------


def test_process_facts_and_program() -> None:
    text = (
        "exe=/usr/bin/python3.11\ncwd=/home/admin/obproxy-4.2.3.0\nuser=root\nme=root\nargv\n"
        "python3\n./bin/obproxy\n-p\n2883\n-l\n2884\n-n\npc1\n"
        "-o\nenable_metadb_used=false,obproxy_sys_password=abc\n"
    )
    facts = processes.parse_facts(12, text)
    assert facts.cwd == "/home/admin/obproxy-4.2.3.0" and facts.argv[:2] == (
        "python3",
        "./bin/obproxy",
    )
    assert facts.program("obproxy") == "/home/admin/obproxy-4.2.3.0/bin/obproxy"
    real = processes.ProcessFacts(
        1, "/opt/taobao/install/obproxy-1.8.3/bin/obproxy", "/tmp", "admin", "root", ("x",)
    )
    assert real.program("obproxy") == "/opt/taobao/install/obproxy-1.8.3/bin/obproxy"
    other = processes.ProcessFacts(1, "/usr/bin/python3", "/", "root", "root", ("python3", "-c"))
    assert other.program("obproxy") is None


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            ["-p", "2883", "-l2884", "-n", "pc1", "-o", "a=1,b='x,y'", "-r", "'1.2.3.4:2881'"],
            {
                "listen_port": "2883",
                "prometheus_listen_port": "2884",
                "app_name": "pc1",
                "a": "1",
                "b": "x,y",
                "rootservice_list": "1.2.3.4:2881",
            },
        ),
        (["--listen_port=2883", "--appname", "x", "-N"], {"listen_port": "2883", "app_name": "x"}),
        (["--listen_port", "2883"], {"listen_port": "2883"}),
    ],
)
def test_parse_command_line(args: list[str], expected: dict[str, str]) -> None:
    assert cmdline.parse_command_line(args) == expected


def test_parse_banner() -> None:
    assert cmdline.parse_banner("obproxy (OceanBase 4.2.3.0 3)\nREVISION: x") == ("4.2.3.0", "3")
    assert cmdline.parse_banner("junk\nobproxy (OceanBase 3.2.3.5 2)") == ("3.2.3.5", "2")
    assert cmdline.parse_banner("obproxy (1.9.1.1)") == ("1.9.1.1", None)
    assert cmdline.parse_banner("Python 3.11.2") is None


RS_EXPECTED = adoption.Expected(
    cluster_name="pc1",
    work_mode="RS_LIST",
    sql_port=2883,
    ob_clusters={"ob1": ["198.18.0.1:2881"]},
    services_url="http://198.18.0.254:8080/services",
)
RS_CONFIG = {
    "app_name": "pc1",
    "rootservice_list": "198.18.0.1:2881",
    "rootservice_cluster_name": "ob1",
    "obproxy_config_server_url": "",
    "prometheus_listen_port": "2884",
}


def test_judge_accepts_an_obproxy_of_the_cluster() -> None:
    verdict = adoption.judge(RS_CONFIG, RS_EXPECTED)
    assert verdict.problems == [] and verdict.exporter_port == 2884
    partial = {**RS_CONFIG, "rootservice_list": "198.18.0.1:2881;198.18.0.9:2881"}
    verdict = adoption.judge(partial, RS_EXPECTED)
    assert verdict.problems == [] and "differs from the root servers" in verdict.notes[0]


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"app_name": "other"}, "take it over with an OBProxy cluster named 'other'"),
        ({"rootservice_list": ""}, "neither obproxy_config_server_url nor rootservice_list"),
        ({"obproxy_config_server_url": "http://x/services?Action=GetObProxyConfig"}, "CONFIG_URL"),
        ({"rootservice_cluster_name": "ob9"}, "connects to OceanBase cluster 'ob9'"),
        ({"rootservice_list": "10.0.0.1:2881"}, "shares no root server"),
        ({"prometheus_listen_port": "2883"}, "prometheus_listen_port '2883'"),
    ],
)
def test_judge_refuses_what_does_not_belong(changes: dict[str, str], words: str) -> None:
    verdict = adoption.judge({**RS_CONFIG, **changes}, RS_EXPECTED)
    assert any(words in p for p in verdict.problems), verdict.problems


def test_judge_in_config_url_mode() -> None:
    expected = adoption.Expected(
        "pc1", "CONFIG_URL", 2883, {"ob1": []}, "http://198.18.0.254:8080/services"
    )
    own = "http://198.18.0.254:8080/services?Action=GetObProxyConfig&ObproxyClusterName="
    config = {"app_name": "pc1", "prometheus_listen_port": "2884"}
    assert (
        adoption.judge({**config, "obproxy_config_server_url": own + "pc1"}, expected).problems
        == []
    )
    other = adoption.judge({**config, "obproxy_config_server_url": own + "pc2"}, expected)
    assert "take it over with that OBProxy cluster" in other.problems[0]
    foreign = adoption.judge(
        {**config, "obproxy_config_server_url": "http://ocp:8080/services?Action=GetObProxyConfig"},
        expected,
    )
    assert foreign.problems == [] and "not from obfleet" in foreign.notes[0]
    rs = adoption.judge({**config, "rootservice_list": "1.2.3.4:2881"}, expected)
    assert "works in RS_LIST mode, but OBProxy cluster pc1 works in CONFIG_URL" in rs.problems[0]
