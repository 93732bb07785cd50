"""obfleet takes over OBProxies (the stand-in) that were started by hand on real test hosts: found
by their SQL port, checked, recorded RUNNING with what they are (version, install path, exporter
port), never restarted; the wrong port, a process that is not OBProxy and a root@proxysys
password obfleet does not know each fail with a message that says what to do."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pymysql
import pytest
from sqlalchemy import select

from obfleet.obproxy import cmdline
from obfleet.obproxy.layout import ROOT
from obfleet.packages.rpm import extract
from obfleet.store.models.obproxy import ObproxyServer
from tests.deploy.conftest import (
    HOME,
    OB_CLUSTER,
    PROXYRO_PASSWORD,
    ROOT_SERVER,
    SQL_PORT,
    Fleet,
    assert_no_secrets,
    proxyconfig,
    sha1hex,
)
from tests.deploy.test_deploy import cluster_named, create
from tests.support.testhosts import NetnsHost

pytestmark = pytest.mark.hosts

NAME = "pc_take"
HAND_PASSWORD = "Hand_made_pw_1"
CHAIN = [
    "Check obproxy to take over",
    "Prepare take over obproxy",
    "Set obproxy root password",
    "Set obproxy user and password for connect",
    "Sync obproxy parameter",
    "Update obproxy status",
]


@pytest.fixture(scope="module")
def payload(standin_rpm: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The RPM's files, as an operator's own `rpm -i` would lay them out: path -> (data, mode)."""
    root = tmp_path_factory.mktemp("takeover-payload")
    return {
        str(f.path): ((root / f.path.relative_to("/")).read_bytes(), f.mode)
        for f in extract(standin_rpm, root)
    }


def start_by_hand(
    host: NetnsHost,
    payload: dict[str, Any],
    *,
    exporter_port: int,
    password: str | None,
    app_name: str = NAME,
    run_user: str = ROOT,
) -> int:
    """Install the package's files and start OBProxy the way obfleet would (obproxy/cmdline.py),
    but outside obfleet, as `run_user` (owning the files); password None: no root@proxysys
    password at all (OBProxy's default). Returns the pid."""
    for path, (data, mode) in payload.items():
        host.run(f"mkdir -p {shlex.quote(str(Path(path).parent))}", check=True)
        host.write_file(path, data, mode)
    spec = cmdline.StartSpec(
        home=HOME,
        sql_port=SQL_PORT,
        exporter_port=exporter_port,
        app_name=app_name,
        proxysys_password=password or "unused",
        upstream=cmdline.RsList(OB_CLUSTER, (f"{ROOT_SERVER[0]}:{ROOT_SERVER[2]}",)),
    )
    argv = cmdline.argv(spec)
    if password is None:
        options = argv.index("-o") + 1
        argv[options] = argv[options].rpartition(",obproxy_sys_password=")[0]
    started = f"cd {HOME} && LD_LIBRARY_PATH={HOME}/lib {shlex.join(argv)}"
    if run_user != ROOT:
        host.run(f"chown -R {shlex.quote(run_user)}: {HOME}", check=True)
        started = shlex.join(["runuser", "-u", run_user, "--", "/bin/sh", "-c", started])
    host.run(started, check=True)
    return int(host.read_file(f"{HOME}/run/obproxy.pid"))


def logs_in(host: NetnsHost, password: str) -> bool:
    try:
        proxyconfig(host, password)
    except pymysql.MySQLError:
        return False
    return True


def take_over(fleet: Fleet, cluster_id: int, hosts: list[tuple[NetnsHost, int]]) -> list[Any]:
    body = {"hosts": [{"hostId": fleet.host_id(h), "sqlPort": port} for h, port in hosts]}
    return fleet.post(f"/api/v2/obproxy/clusters/{cluster_id}/takeOver", body)["contents"]  # type: ignore[no-any-return]


def failure(fleet: Fleet, task: dict[str, Any]) -> tuple[str, str]:
    """(name, log) of the one failed subtask of a FAILED task."""
    done = fleet.wait(task["id"])
    assert done["status"] == "FAILED"
    (failed,) = [s for s in done["subtasks"] if s["status"] == "FAILED"]
    return failed["name"], fleet.logs(done)[failed["id"]]


def recorded(fleet: Fleet) -> dict[str, ObproxyServer]:
    with fleet.db.session() as session:
        rows = session.scalars(select(ObproxyServer)).all()
        session.expunge_all()
    return {row.ip: row for row in rows}


def test_take_over_obproxies_started_by_hand(fleet: Fleet, payload: dict[str, Any]) -> None:
    # Started by hand as root: a cluster whose obproxies run as root takes it over.
    fleet.succeeded(create(fleet, NAME, "RS_LIST", [], runUser="root")["id"])
    cluster_id = cluster_named(fleet, NAME)["id"]
    password = fleet.proxysys_password(NAME)
    open_host, other_pw_host, own_pw_host, busy_host = fleet.hosts
    pids = {
        open_host.ip: start_by_hand(open_host, payload, exporter_port=2890, password=None),
        other_pw_host.ip: start_by_hand(
            other_pw_host, payload, exporter_port=2884, password=HAND_PASSWORD
        ),
        own_pw_host.ip: start_by_hand(own_pw_host, payload, exporter_port=2884, password=password),
    }
    with busy_host.occupy_port(SQL_PORT):
        tasks = take_over(
            fleet,
            cluster_id,
            [
                (open_host, SQL_PORT),
                (other_pw_host, SQL_PORT),
                (own_pw_host, SQL_PORT),
                (own_pw_host, 2993),  # nothing listens there
                (busy_host, SQL_PORT),  # not OBProxy
            ],
        )
        assert [t["name"] for t in tasks] == ["Take over obproxy"] * 5
        assert all([s["name"] for s in t["subtasks"]] == CHAIN for t in tasks)
        opened, other_pw, own_pw, wrong_port, not_obproxy = tasks

        name, log = failure(fleet, not_obproxy)
        assert name == "Check obproxy to take over"
        assert f"listening on {busy_host.ip}:{SQL_PORT} is not OBProxy" in log
    name, log = failure(fleet, wrong_port)
    assert name == "Check obproxy to take over"
    assert f"nothing listens on {own_pw_host.ip}:2993" in log
    assert "Give the SQL port the OBProxy listens on" in log
    name, log = failure(fleet, other_pw)
    assert name == "Check obproxy to take over"
    assert "accepts none of the passwords obfleet knows (this OBProxy cluster's, an empty" in log
    assert "alter proxyconfig set obproxy_sys_password to the empty string ''" in log

    for task in (opened, own_pw):
        fleet.succeeded(task["id"])
    rows = recorded(fleet)
    assert sorted(rows) == sorted([open_host.ip, own_pw_host.ip])
    for host, exporter_port in ((open_host, 2890), (own_pw_host, 2884)):
        row = rows[host.ip]
        assert (row.status, row.operate_status) == ("RUNNING", "NORMAL")
        assert (row.version, row.install_path) == ("4.2.3.0-3", HOME)
        assert (row.sql_port, row.exporter_port) == (SQL_PORT, exporter_port)
        assert row.package_id is not None  # the uploaded package of that version
        # Untouched: the same process serves, now with the cluster's passwords and parameters.
        assert int(host.read_file(f"{HOME}/run/obproxy.pid")) == pids[host.ip]
        config = proxyconfig(host, password)
        assert config["observer_sys_password"] == sha1hex(PROXYRO_PASSWORD)
        assert (config["syslog_level"], config["proxy_mem_limited"]) == ("WARN", "1GB")
    assert not logs_in(open_host, "")  # its open root@proxysys now has the cluster's password

    # The failures: one rolled back (nothing stays recorded), the others fixed and retried.
    fleet.post(f"/api/v2/tasks/instances/{wrong_port['id']}/rollback")
    assert fleet.wait(wrong_port["id"])["status"] == "SUCCESSFUL"
    with (
        pymysql.connect(
            host=other_pw_host.ip, port=SQL_PORT, user="root@proxysys", password=HAND_PASSWORD
        ) as conn,
        conn.cursor() as cursor,
    ):
        cursor.execute("alter proxyconfig set obproxy_sys_password = ''")  # as the message says
    fleet.post(f"/api/v2/tasks/instances/{other_pw['id']}/retry")
    done = fleet.succeeded(other_pw["id"])
    assert int(other_pw_host.read_file(f"{HOME}/run/obproxy.pid")) == pids[other_pw_host.ip]
    assert logs_in(other_pw_host, password) and not logs_in(other_pw_host, "")

    servers = cluster_named(fleet, NAME)["obproxies"]
    assert {(s["ip"], s["version"], s["status"], s["exporterPort"]) for s in servers} == {
        (open_host.ip, "4.2.3.0-3", "RUNNING", 2890),
        (other_pw_host.ip, "4.2.3.0-3", "RUNNING", 2884),
        (own_pw_host.ip, "4.2.3.0-3", "RUNNING", 2884),
    }
    secrets = [password, sha1hex(password), PROXYRO_PASSWORD, HAND_PASSWORD, sha1hex(HAND_PASSWORD)]
    logs = [log for task in tasks for log in fleet.logs(fleet.wait(task["id"])).values()]
    assert_no_secrets([*logs, str(done), str(tasks)], secrets)
