"""Parameter changes on real test hosts: a runtime change set on every OBProxy without a restart
and shown per obproxy (a hand-made drift shows as a second value), a startup change that
restarts them one at a time onto the new command line, and a failed startup change rolled back
onto the old one."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

from tests.deploy.conftest import (
    EXPORTER_PORT,
    SQL_PORT,
    Fleet,
    fleet_server,
    obproxy_argv,
    proxyconfig,
    running_fleet,
)
from tests.deploy.liveness import kill_obproxy, running_obproxy
from tests.deploy.test_deploy import cluster_named, create, expected_argv
from tests.support.testhosts import HostLab, NetnsHost

pytestmark = pytest.mark.hosts

NAME = "pc_params"
# What obfleet's command line sets away from OBProxy's defaults (cmdline.start_command):
# GET lists them though no parameter list names them.
OWN_COMMAND_LINE = {
    "listen_port",
    "app_name",
    "rootservice_list",
    "rootservice_cluster_name",
    "enable_metadb_used",
    "skip_proxy_sys_private_check",
}


@pytest.fixture
def fleet(lab: HostLab, standin_rpm: Path, tmp_path: Path, database_url: str) -> Iterator[Fleet]:
    """The deploy fleet without health checks: a killed obproxy stays RUNNING in the record, so
    the status a change starts from is known."""
    for host in lab.hosts:
        host.reset()
    server = fleet_server(
        lab, tmp_path / "data", database_url, env={"OBFLEET_HEALTH_INTERVAL": "0"}
    )
    with running_fleet(server, lab, standin_rpm, database_url) as running:
        yield running
    for host in lab.hosts:
        host.reset()


def put(fleet: Fleet, cluster_id: int, body: dict[str, Any]) -> dict[str, Any]:
    r = fleet.api.put(f"/api/v2/obproxy/clusters/{cluster_id}/parameters", json=body)
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


def shown(fleet: Fleet, cluster_id: int) -> dict[str, dict[str, Any]]:
    return {
        p["name"]: p
        for p in fleet.get(f"/api/v2/obproxy/clusters/{cluster_id}/parameters")["contents"]
    }


def versions(fleet: Fleet) -> tuple[int, set[int]]:
    cluster = cluster_named(fleet, NAME)
    return cluster["parameterVersion"], {s["parameterVersion"] for s in cluster["obproxies"]}


def alter_by_hand(host: NetnsHost, password: str, name: str, value: str) -> None:
    with (
        pymysql.connect(
            host=host.ip, port=SQL_PORT, user="root@proxysys", password=password, connect_timeout=5
        ) as conn,
        conn.cursor() as cursor,
    ):
        cursor.execute(f"alter proxyconfig set {name} = %s", (value,))


def with_option(argv: list[str], item: str) -> list[str]:
    """`argv` with `item` added to -o after the operator's startup parameters."""
    options = argv[argv.index("-o") + 1].split(",")
    options.insert(1, item)
    changed = list(argv)
    changed[argv.index("-o") + 1] = ",".join(options)
    return changed


def test_runtime_and_startup_changes_reach_every_obproxy_and_a_failed_one_rolls_back(
    fleet: Fleet,
) -> None:
    hosts = fleet.hosts[:3]
    ips = sorted((h.ip for h in hosts), key=ipaddress.ip_address)
    fleet.succeeded(create(fleet, NAME, "RS_LIST", hosts)["id"])
    cluster_id = cluster_named(fleet, NAME)["id"]
    password = fleet.proxysys_password(NAME)
    rs_list = ["-r", "198.18.250.1:2881", "-c", "ob1"]
    argv = expected_argv(NAME, password, *rs_list)
    pids = {h.ip: running_obproxy(h).pid for h in hosts}

    # Runtime: syslog_level changes, proxy_mem_limited is reset (back to its default),
    # client_max_connections is new. Set in parallel, no restart.
    task = put(
        fleet,
        cluster_id,
        {
            "parameters": [
                {"name": "syslog_level", "value": "ERROR"},
                {"name": "client_max_connections", "value": "1000"},
                {"name": "proxy_mem_limited", "reset": True},
            ]
        },
    )
    assert task["name"] == "Update obproxy parameter"
    assert [s["name"] for s in sorted(task["subtasks"], key=lambda s: s["seriesId"])] == [
        "Prepare update obproxy parameter",
        *["Update obproxy parameter", "Update obproxy status"] * 3,
        "Finish node",
    ]
    fleet.succeeded(task["id"])
    for host in hosts:
        config = proxyconfig(host, password)
        assert (config["syslog_level"], config["client_max_connections"]) == ("ERROR", "1000")
        assert config["proxy_mem_limited"] == "2G"
        assert running_obproxy(host).pid == pids[host.ip]
    assert versions(fleet) == (2, {2})
    params = shown(fleet, cluster_id)
    # What obfleet set, and what obfleet's own command line puts away from OBProxy's defaults;
    # proxy_mem_limited is at its default again, passwords are never listed.
    assert set(params) == {
        "enable_strict_kernel_release",
        "syslog_level",
        "client_max_connections",
        *OWN_COMMAND_LINE,
    }
    assert params["syslog_level"]["values"] == [{"value": "ERROR", "obproxies": ips}]
    every = fleet.get(f"/api/v2/obproxy/clusters/{cluster_id}/parameters?all=true")["contents"]
    assert len(every) > 250 and set(params) < {p["name"] for p in every}
    assert not [p for p in every if "password" in p["name"]]
    assert params["app_name"] == {
        "name": "app_name",
        "description": params["app_name"]["description"],
        "needReboot": True,
        "valueString": NAME,
        "values": [{"value": NAME, "obproxies": ips}],
        "drift": False,
    }
    assert params["enable_strict_kernel_release"]["values"] == [
        {"value": "false", "obproxies": ips}
    ]

    # Drift by hand on one host shows as a second value; the host that cannot be reached shows
    # its reason.
    drifted, down = hosts[0], hosts[2]
    alter_by_hand(drifted, password, "syslog_level", "DEBUG")
    down.cut_link()
    try:
        values = shown(fleet, cluster_id)["syslog_level"]
    finally:
        down.restore_link()
    assert values["values"][:2] == [  # as many of each: by value
        {"value": "DEBUG", "obproxies": [drifted.ip]},
        {"value": "ERROR", "obproxies": [hosts[1].ip]},
    ]
    assert (values["valueString"], values["drift"]) == ("ERROR", True)
    (unreachable,) = values["values"][2:]
    assert unreachable["value"] is None and unreachable["obproxies"] == [down.ip]
    assert f"root@proxysys at {down.ip}:{SQL_PORT}: cannot log in" in unreachable["error"]

    # Startup: a new one restarts the obproxies one at a time onto the new command line; the
    # runtime values survive it and the drift is set right.
    task = put(
        fleet, cluster_id, {"startupParameters": [{"name": "work_thread_num", "value": "64"}]}
    )
    assert [s["name"] for s in sorted(task["subtasks"], key=lambda s: s["seriesId"])][1:7] == [
        "Stop obproxy process",
        "Start obproxy process",
        "Wait for obproxy login",
        "Set obproxy user and password for connect",
        "Update obproxy parameter",
        "Update obproxy status",
    ]
    fleet.succeeded(task["id"])
    new_argv = with_option(argv, "work_thread_num=64")
    for host in hosts:
        launch = running_obproxy(host)
        assert launch.argv == new_argv and launch.pid != pids[host.ip]
        pids[host.ip] = launch.pid
        config = proxyconfig(host, password)
        assert (config["syslog_level"], config["work_thread_num"]) == ("ERROR", "64")
    assert versions(fleet) == (3, {3})
    assert shown(fleet, cluster_id)["syslog_level"]["values"] == [
        {"value": "ERROR", "obproxies": ips}
    ]

    # A startup change that fails half-way (the second obproxy crashed and its exporter port is
    # taken), rolled back: every obproxy runs the command line from before again, with the
    # runtime values from before, and the record is as it was.
    # The obproxies restart in the order of their ids.
    by_ip = {h.ip: h for h in hosts}
    order = sorted(cluster_named(fleet, NAME)["obproxies"], key=lambda s: s["id"])
    first, middle, last = (by_ip[s["ip"]] for s in order)
    kill_obproxy(middle)
    with middle.occupy_port(EXPORTER_PORT):
        task = put(
            fleet,
            cluster_id,
            {
                "startupParameters": [
                    {"name": "enable_strict_kernel_release", "value": "true"},
                    {"name": "work_thread_num", "reset": True},
                ],
                "parameters": [{"name": "syslog_level", "value": "WARN"}],
            },
        )
        failed = fleet.wait(task["id"])
        assert failed["status"] == "FAILED"
        (bad,) = [s for s in failed["subtasks"] if s["status"] == "FAILED"]
        assert (bad["name"], bad["parallelIdx"]) == ("Start obproxy process", 1)
        # work_thread_num was reset: the new command line carries its default.
        assert obproxy_argv(first)[8].startswith(
            "enable_strict_kernel_release=true,work_thread_num=128,"
        )
        assert proxyconfig(first, password)["syslog_level"] == "WARN"
    fleet.post(f"/api/v2/tasks/instances/{task['id']}/rollback")
    rolled_back = fleet.wait(task["id"])
    assert (rolled_back["status"], rolled_back["operation"]) == ("SUCCESSFUL", "ROLLBACK")
    for host in hosts:
        assert obproxy_argv(host) == new_argv
        config = proxyconfig(host, password)
        assert (config["syslog_level"], config["client_max_connections"]) == ("ERROR", "1000")
        assert config["work_thread_num"] == "64"
    assert running_obproxy(last).pid == pids[last.ip]  # never touched
    assert versions(fleet) == (3, {3})
    cluster = cluster_named(fleet, NAME)
    assert {(s["status"], s["operateStatus"]) for s in cluster["obproxies"]} == {
        ("RUNNING", "NORMAL")
    }
    params = shown(fleet, cluster_id)
    assert {name: params[name]["valueString"] for name in set(params) - OWN_COMMAND_LINE} == {
        "enable_strict_kernel_release": "false",
        "work_thread_num": "64",
        "syslog_level": "ERROR",
        "client_max_connections": "1000",
    }
