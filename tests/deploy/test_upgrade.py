"""obfleet upgrades deployed OBProxies (the stand-in) on real test hosts: version A on two hosts,
version B uploaded; B installed beside A and started with the same command line, one host after
the other; a failed upgrade rolled back to A; a failure fixed and the task retried."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pymysql
import pytest
from sqlalchemy import update

from obfleet.store.models.obproxy import ObproxyServer
from tests.deploy.conftest import (
    HOME,
    OB_CLUSTER,
    PROXYRO_PASSWORD,
    ROOT_SERVER,
    SQL_PORT,
    Fleet,
    assert_no_secrets,
    obproxy_processes,
    proxyconfig,
    sha1hex,
)
from tests.deploy.liveness import kill_obproxy
from tests.deploy.test_deploy import cluster_named, create, expected_argv
from tests.standin.rpm import build_standin_rpm
from tests.support.testhosts import NetnsHost

pytestmark = pytest.mark.hosts

NEW_VERSION, NEW_RELEASE = "4.3.0.0", "1.el7"
NEW_RPM = f"obproxy-ce-{NEW_VERSION}-{NEW_RELEASE}.x86_64.rpm"
NEW_SHORT = f"obproxy-ce-{NEW_VERSION}-1"
NEW_HOME = f"/home/admin/obproxy-{NEW_VERSION}"
RS_LIST = f"{ROOT_SERVER[0]}:{ROOT_SERVER[2]}"
CHAIN = [
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


@pytest.fixture(scope="module")
def new_rpm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("rpmbuild") is None:
        pytest.skip("rpmbuild is not installed (apt-get install rpm)")
    return build_standin_rpm(
        tmp_path_factory.mktemp("upgrade-rpm"), version=NEW_VERSION, release=NEW_RELEASE
    )


def deploy(fleet: Fleet, name: str, new_rpm: Path) -> tuple[int, list[int], list[NetnsHost]]:
    """Version A on two hosts, version B uploaded: (cluster id, obproxy ids, hosts)."""
    hosts = fleet.hosts[:2]
    fleet.succeeded(create(fleet, name, "RS_LIST", hosts)["id"])
    r = fleet.api.post(
        "/api/v2/software-packages", files={"file": (new_rpm.name, new_rpm.read_bytes())}
    )
    assert r.status_code == 200, r.text
    cluster = cluster_named(fleet, name)
    by_ip = {s["ip"]: s["id"] for s in cluster["obproxies"]}
    return cluster["id"], [by_ip[h.ip] for h in hosts], hosts


def upgrade(fleet: Fleet, cluster_id: int, ids: list[int], body: Any) -> dict[str, Any]:
    path = f"/api/v2/obproxy/clusters/{cluster_id}/obproxies/{','.join(map(str, ids))}/upgrade"
    return fleet.post(path, body)  # type: ignore[no-any-return]


def running_from(host: NetnsHost, home: str) -> tuple[int, list[str]]:
    """The pid of the OBProxy running from `home` (its pid file, its working directory) and its
    arguments from ./bin/obproxy on."""
    pid = int(host.run(f"cat {home}/run/obproxy.pid", check=True).stdout)
    assert host.run(f"readlink /proc/{pid}/cwd", check=True).stdout.strip() == home
    argv = host.run(f"cat /proc/{pid}/cmdline", check=True).stdout.split("\0")[:-1]
    return pid, argv[argv.index("./bin/obproxy") :]


def binary_info(host: NetnsHost, password: str) -> str:
    """What the running process says it is (`show proxyinfo binary`)."""
    with (
        pymysql.connect(
            host=host.ip, port=SQL_PORT, user="root@proxysys", password=password, connect_timeout=5
        ) as conn,
        conn.cursor() as cursor,
    ):
        cursor.execute("show proxyinfo binary")
        return str(cursor.fetchone()[1])


def assert_serves(host: NetnsHost, password: str, name: str, home: str, version: str) -> None:
    """OBProxy `version` runs from `home` with the cluster's command line and configuration."""
    _, argv = running_from(host, home)
    assert argv == expected_argv(name, password, "-r", RS_LIST, "-c", OB_CLUSTER)
    assert f"ODP (OceanBase Database Proxy) {version}-" in binary_info(host, password)
    banner = host.run(f"cd {home} && ./bin/obproxy -V", check=True).stdout
    assert banner.startswith(f"obproxy (OceanBase {version} ")
    config = proxyconfig(host, password)
    assert config["observer_sys_password"] == sha1hex(PROXYRO_PASSWORD)
    assert (config["syslog_level"], config["proxy_mem_limited"]) == ("WARN", "1GB")
    assert config["enable_strict_kernel_release"] == "false"
    assert (config["app_name"], config["rootservice_list"]) == (name, RS_LIST)
    others = [cmd for _, cmd in obproxy_processes(host)]
    assert len(others) == 1, others


def versions(fleet: Fleet, name: str) -> dict[str, tuple[str, str, str]]:
    return {
        s["ip"]: (s["version"], s["status"], s["operateStatus"])
        for s in cluster_named(fleet, name)["obproxies"]
    }


def test_upgrade_installs_beside_the_old_version_and_keeps_the_configuration(
    fleet: Fleet, new_rpm: Path
) -> None:
    cluster_id, ids, hosts = deploy(fleet, "pc_up", new_rpm)
    password = fleet.proxysys_password("pc_up")
    old_pids = [running_from(h, HOME)[0] for h in hosts]
    # The operator changed a runtime setting by hand: it is persisted in etc/ and moves along.
    with (
        pymysql.connect(
            host=hosts[0].ip, port=SQL_PORT, user="root@proxysys", password=password
        ) as conn,
        conn.cursor() as cursor,
    ):
        cursor.execute("alter proxyconfig set prometheus_sync_interval = '30s'")

    task = upgrade(fleet, cluster_id, ids, {"shortRpmName": NEW_SHORT})
    assert task["name"] == "Upgrade obproxy"
    assert [s["name"] for s in task["subtasks"]] == [
        "Prepare upgrade obproxy",
        *CHAIN * 2,
        "Remove old obproxy install",
        "Finish node",
    ]
    done = fleet.succeeded(task["id"])

    for host, old_pid in zip(hosts, old_pids, strict=True):
        assert_serves(host, password, "pc_up", NEW_HOME, NEW_VERSION)
        assert running_from(host, NEW_HOME)[0] != old_pid
        # Once every obproxy runs the new version, the old install is removed.
        assert not host.file_exists(HOME)
    assert proxyconfig(hosts[0], password)["prometheus_sync_interval"] == "30s"
    assert versions(fleet, "pc_up") == {h.ip: ("4.3.0.0-1", "RUNNING", "NORMAL") for h in hosts}
    assert cluster_named(fleet, "pc_up")["versions"] == [{"version": "4.3.0.0-1", "count": 2}]

    # The same version again: refused, nothing to do.
    r = fleet.api.post(
        f"/api/v2/obproxy/clusters/{cluster_id}/obproxies/{ids[0]}/upgrade",
        json={"shortRpmName": NEW_RPM},
    )
    assert r.status_code == 400 and "already runs 4.3.0.0-1" in r.json()["error"]["message"]
    secrets = [password, sha1hex(password), PROXYRO_PASSWORD, sha1hex(PROXYRO_PASSWORD)]
    assert_no_secrets([*fleet.logs(done).values(), str(task), str(done)], secrets)


class Decoy:
    """A stale pid file in the new install path, pointing at a live process that looks like
    obproxy (as after a host reboot recycled the pid): OBProxy refuses to start over it."""

    def __init__(self, host: NetnsHost) -> None:
        self.host = host
        self.proc = host.spawn(["/bin/bash", "-c", "exec -a obproxy-decoy sleep 600"])
        (self.pid,) = wait_for(lambda: host.pgrep("^obproxy-decoy"))

    def plant(self) -> None:
        self.host.run(f"mkdir -p {NEW_HOME}/run", check=True)
        self.host.write_file(f"{NEW_HOME}/run/obproxy.pid", f"{self.pid}\n")

    def kill(self) -> None:
        self.host.run(f"kill {self.pid}", check=True)
        self.proc.wait(timeout=10)


def wait_for(probe: Any, tries: int = 100) -> Any:
    for _ in range(tries):
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("never happened")


def test_failed_upgrade_rolls_back_to_the_old_version_and_a_fixed_one_retries(
    fleet: Fleet, new_rpm: Path
) -> None:
    cluster_id, ids, hosts = deploy(fleet, "pc_back", new_rpm)
    password = fleet.proxysys_password("pc_back")
    decoy = Decoy(hosts[1])
    decoy.plant()

    task = upgrade(fleet, cluster_id, ids, {"shortRpmName": NEW_SHORT})
    failed = fleet.wait(task["id"])
    assert failed["status"] == "FAILED"
    first = [s for s in failed["subtasks"] if s["parallelIdx"] == 0]
    second = {s["name"]: s for s in failed["subtasks"] if s["parallelIdx"] == 1}
    assert all(s["status"] == "SUCCESSFUL" for s in first)
    start = second["Start obproxy process"]
    assert start["status"] == "FAILED"
    assert second["Wait for obproxy login"]["status"] == "PENDING"
    log = fleet.logs(failed)[start["id"]]
    assert f"refusing to start: obproxy is already running with pid {decoy.pid}" in log
    # The first host was upgraded; the second one's old process was stopped before the failure.
    assert_serves(hosts[0], password, "pc_back", NEW_HOME, NEW_VERSION)
    assert obproxy_processes(hosts[1]) == []
    assert versions(fleet, "pc_back") == {
        hosts[0].ip: ("4.3.0.0-1", "RUNNING", "NORMAL"),
        hosts[1].ip: ("4.2.3.0-3", "UPGRADING", "OPERATING"),
    }

    fleet.post(f"/api/v2/tasks/instances/{task['id']}/rollback")
    rolled_back = fleet.wait(task["id"])
    assert (rolled_back["status"], rolled_back["operation"]) == ("SUCCESSFUL", "ROLLBACK")
    for host in hosts:
        assert_serves(host, password, "pc_back", HOME, "4.2.3.0")
    assert not hosts[0].file_exists(NEW_HOME)
    # The second one's new path held the stale pid file before the upgrade: only that stays.
    assert hosts[1].run(["ls", "-A", NEW_HOME]).stdout.split() == ["run"]
    assert hosts[1].read_file(f"{NEW_HOME}/run/obproxy.pid") == f"{decoy.pid}\n"
    assert versions(fleet, "pc_back") == {h.ip: ("4.2.3.0-3", "RUNNING", "NORMAL") for h in hosts}

    # The same failure again, then the fix (the stale process goes), then a retry.
    decoy.plant()
    task = upgrade(fleet, cluster_id, ids, None)  # no body: the newest package, B
    failed = fleet.wait(task["id"])
    assert failed["status"] == "FAILED"
    decoy.kill()
    fleet.post(f"/api/v2/tasks/instances/{task['id']}/retry")
    fleet.succeeded(task["id"])
    for host in hosts:
        assert_serves(host, password, "pc_back", NEW_HOME, NEW_VERSION)
    assert versions(fleet, "pc_back") == {h.ip: ("4.3.0.0-1", "RUNNING", "NORMAL") for h in hosts}


def test_an_obproxy_down_before_the_upgrade_stays_down_after_its_rollback(
    fleet: Fleet, new_rpm: Path
) -> None:
    cluster_id, ids, hosts = deploy(fleet, "pc_down", new_rpm)
    password = fleet.proxysys_password("pc_down")
    up, down = hosts
    kill_obproxy(down)
    with fleet.db.transaction() as session:  # what the health check records for it
        session.execute(
            update(ObproxyServer).where(ObproxyServer.id == ids[1]).values(status="UNAVAILABLE")
        )
    decoy = Decoy(down)
    decoy.plant()  # its new version cannot start: the task fails there
    try:
        task = upgrade(fleet, cluster_id, ids, {"shortRpmName": NEW_SHORT})
        assert fleet.wait(task["id"])["status"] == "FAILED"
        assert_serves(up, password, "pc_down", NEW_HOME, NEW_VERSION)

        fleet.post(f"/api/v2/tasks/instances/{task['id']}/rollback")
        rolled_back = fleet.wait(task["id"])
        assert (rolled_back["status"], rolled_back["operation"]) == ("SUCCESSFUL", "ROLLBACK")
    finally:
        decoy.kill()
    # The one that ran runs its old version again; the one that was down stays down (its old
    # version is not started by a rollback) and is recorded as it was, by a login.
    assert_serves(up, password, "pc_down", HOME, "4.2.3.0")
    assert obproxy_processes(down) == []
    assert versions(fleet, "pc_down") == {
        up.ip: ("4.2.3.0-3", "RUNNING", "NORMAL"),
        down.ip: ("4.2.3.0-3", "UNAVAILABLE", "NORMAL"),
    }


def test_a_new_install_path_holding_another_obproxy_is_refused_and_left_untouched(
    fleet: Fleet, new_rpm: Path
) -> None:
    cluster_id, ids, hosts = deploy(fleet, "pc_other", new_rpm)
    password = fleet.proxysys_password("pc_other")
    host = hosts[1]
    # A manual install of the new version lives there already.
    host.run(f"mkdir -p {NEW_HOME}/bin {NEW_HOME}/etc", check=True)
    host.write_file(f"{NEW_HOME}/bin/obproxy", b"manual\n", 0o755)
    host.write_file(f"{NEW_HOME}/etc/obproxy_config.bin", b"its config\n", 0o644)

    task = upgrade(fleet, cluster_id, [ids[1]], {"shortRpmName": NEW_SHORT})
    failed = fleet.wait(task["id"])
    assert failed["status"] == "FAILED"
    (bad,) = [s for s in failed["subtasks"] if s["status"] == "FAILED"]
    assert bad["name"] == "Check upgrade install path"
    log = fleet.logs(failed)[bad["id"]]
    assert f"{NEW_HOME} on {host.ip} already holds an OBProxy install (bin/, etc/)" in log, log
    fleet.post(f"/api/v2/tasks/instances/{task['id']}/rollback")
    assert fleet.wait(task["id"])["status"] == "SUCCESSFUL"
    # Nothing of it was touched, and the old version never stopped serving.
    assert host.read_file(f"{NEW_HOME}/bin/obproxy") == "manual\n"
    assert host.read_file(f"{NEW_HOME}/etc/obproxy_config.bin") == "its config\n"
    assert_serves(host, password, "pc_other", HOME, "4.2.3.0")
    assert versions(fleet, "pc_other")[host.ip] == ("4.2.3.0-3", "RUNNING", "NORMAL")
