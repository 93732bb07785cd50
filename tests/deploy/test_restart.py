"""Restarting OBProxies on real test hosts: one at a time (watched from outside: never two down
at once), a killed one brought back with the same command line, a Start that fails (its port
taken) failing the task with a clear message, a retry that finishes, and a rollback that leaves
every host and row consistent."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pymysql
import pytest

from tests.deploy.conftest import (
    EXPORTER_PORT,
    HOME,
    PROXYRO_PASSWORD,
    SQL_PORT,
    Fleet,
    fleet_server,
    obproxy_processes,
    proxyconfig,
    running_fleet,
    sha1hex,
)
from tests.deploy.liveness import (
    HEALTH_ENV,
    Launch,
    kill_obproxy,
    running_obproxy,
    wait_for_obproxy,
)
from tests.deploy.test_deploy import cluster_named, create
from tests.support.testhosts import HostLab, NetnsHost

pytestmark = pytest.mark.hosts

CHAIN = [
    "Stop obproxy process",
    "Start obproxy process",
    "Wait for obproxy login",
    "Set obproxy user and password for connect",
    "Sync obproxy parameter",
    "Update obproxy status",
]


@pytest.fixture
def fleet(lab: HostLab, standin_rpm: Path, tmp_path: Path, database_url: str) -> Iterator[Fleet]:
    """The deploy fleet, with health checks every second: a killed obproxy shows UNAVAILABLE
    within seconds, so the status a restart starts from is known."""
    for host in lab.hosts:
        host.reset()
    server = fleet_server(lab, tmp_path / "data", database_url, env=HEALTH_ENV)
    with running_fleet(server, lab, standin_rpm, database_url) as running:
        yield running
    for host in lab.hosts:
        host.reset()


def can_log_in(ip: str, password: str) -> bool:
    try:
        pymysql.connect(
            host=ip,
            port=SQL_PORT,
            user="root@proxysys",
            password=password,
            # A host that is down refuses at once; a live one on a busy machine may be slow.
            connect_timeout=10,
            read_timeout=10,
        ).close()
    except pymysql.MySQLError:
        return False
    return True


class DownWatch:
    """Logs in as root@proxysys on every host's SQL port, round after round (~10 a second), in a
    thread, for at most `limit` seconds. A round probes the hosts in order and then in reverse;
    a host is down in a round when both its probes failed, so it was down over the instant
    between them, which every host's pair of probes brackets: two hosts down in one round
    were down at the same time."""

    def __init__(self, hosts: list[NetnsHost], password: str, limit: float = 300) -> None:
        self.hosts = hosts
        self.password = password
        self.limit = limit
        self.rounds: list[set[str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.limit
        ips = [h.ip for h in self.hosts]
        while not self._stop.is_set() and time.monotonic() < deadline:
            first = {ip: can_log_in(ip, self.password) for ip in ips}
            second = {ip: can_log_in(ip, self.password) for ip in reversed(ips)}
            self.rounds.append({ip for ip in ips if not first[ip] and not second[ip]})
            self._stop.wait(0.1)

    def __enter__(self) -> DownWatch:
        self._thread.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def restart(fleet: Fleet, cluster_id: int, ids: list[int]) -> dict[str, Any]:
    return fleet.post(  # type: ignore[no-any-return]
        f"/api/v2/obproxy/clusters/{cluster_id}/obproxies/{','.join(map(str, ids))}/restart"
    )


def deploy(fleet: Fleet, name: str) -> tuple[int, dict[str, int], str]:
    """Three obproxies (RS_LIST) on the first three hosts: the cluster id, the obproxy ids by
    host ip, and the root@proxysys password."""
    fleet.succeeded(create(fleet, name, "RS_LIST", fleet.hosts[:3])["id"])
    cluster = cluster_named(fleet, name)
    return (
        cluster["id"],
        {s["ip"]: s["id"] for s in cluster["obproxies"]},
        fleet.proxysys_password(name),
    )


def statuses(fleet: Fleet, name: str) -> dict[str, tuple[str, str]]:
    return {
        s["ip"]: (s["status"], s["operateStatus"]) for s in cluster_named(fleet, name)["obproxies"]
    }


def assert_serving(host: NetnsHost, password: str, before: Launch) -> Launch:
    """The host runs OBProxy from the install path with the same arguments as `before`, root
    logs in, and what was set with ALTER PROXYCONFIG is still set."""
    now = running_obproxy(host)
    assert (now.argv, now.cwd) == (before.argv, HOME)
    config = proxyconfig(host, password)
    assert config["observer_sys_password"] == sha1hex(PROXYRO_PASSWORD)
    assert (config["syslog_level"], config["proxy_mem_limited"]) == ("WARN", "1GB")
    return now


def test_obproxies_restart_one_at_a_time_and_a_killed_one_comes_back(fleet: Fleet) -> None:
    hosts = fleet.hosts[:3]
    cluster_id, ids, password = deploy(fleet, "pc_restart")
    before = {h.ip: running_obproxy(h) for h in hosts}

    with DownWatch(hosts, password) as watch:
        task = restart(fleet, cluster_id, [ids[h.ip] for h in hosts])
        assert task["name"] == "Restart obproxy"
        assert [s["name"] for s in sorted(task["subtasks"], key=lambda s: s["seriesId"])] == [
            "Prepare restart obproxy",
            *CHAIN * 3,
            "Finish node",
        ]
        done = fleet.succeeded(task["id"])
    assert watch.rounds and max(len(down) for down in watch.rounds) <= 1, [
        down for down in watch.rounds if len(down) > 1
    ]
    # Each was restarted: a new pid below. (The watch may miss a short restart on a loaded
    # machine, so it only checks that no two were down at once; the order is checked below.)
    for host in hosts:
        after = assert_serving(host, password, before[host.ip])
        assert after.pid != before[host.ip].pid
    assert set(statuses(fleet, "pc_restart").values()) == {("RUNNING", "NORMAL")}
    # The chains ran in the order of the ids, each after the previous one had logged in.
    finished = {(s["name"], s["parallelIdx"]): s["finishTime"] for s in done["subtasks"]}
    for i in (1, 2):
        assert finished[("Update obproxy status", i - 1)] < finished[("Stop obproxy process", i)]

    # A crashed OBProxy (SIGKILL) shows UNAVAILABLE; restarting it brings it back as it ran.
    victim = hosts[1]
    killed = kill_obproxy(victim)
    wait_for_obproxy(fleet, "pc_restart", victim.ip, "UNAVAILABLE")
    task = restart(fleet, cluster_id, [ids[victim.ip]])
    assert task["context"]["listMap"]["obproxy_previous_statuses"] == ["UNAVAILABLE"]
    assert [s["name"] for s in task["subtasks"]][1:-1] == CHAIN
    logs = fleet.logs(fleet.succeeded(task["id"]))
    assert any(f"no process runs from {HOME}" in log for log in logs.values())
    assert_serving(victim, password, killed)
    assert statuses(fleet, "pc_restart")[victim.ip] == ("RUNNING", "NORMAL")


def test_a_failed_start_then_retry_then_a_rolled_back_restart(fleet: Fleet) -> None:
    hosts = fleet.hosts[:3]
    first, middle, last = hosts
    cluster_id, ids, password = deploy(fleet, "pc_fail")
    order = [ids[h.ip] for h in hosts]
    launches = {h.ip: running_obproxy(h) for h in hosts}

    # The middle obproxy crashed, and something took its exporter port: its Start cannot listen
    # (not the SQL port: the health checks' closed logins may hold it in TIME_WAIT for a while).
    kill_obproxy(middle)
    wait_for_obproxy(fleet, "pc_fail", middle.ip, "UNAVAILABLE")
    with middle.occupy_port(EXPORTER_PORT):
        task = restart(fleet, cluster_id, order)
        failed = fleet.wait(task["id"])
        assert failed["status"] == "FAILED"
        (bad,) = [s for s in failed["subtasks"] if s["status"] == "FAILED"]
        assert (bad["name"], bad["parallelIdx"]) == ("Start obproxy process", 1)
        log = fleet.logs(failed)[bad["id"]]
        assert f"cannot listen on prometheus_listen_port {EXPORTER_PORT}" in log
        assert "Address already in use" in log
        assert {s["status"] for s in failed["subtasks"] if s["parallelIdx"] == 2} == {"PENDING"}
        launches[first.ip] = assert_serving(first, password, launches[first.ip])
        assert running_obproxy(last).pid == launches[last.ip].pid  # not touched
        assert statuses(fleet, "pc_fail") == {
            first.ip: ("RUNNING", "NORMAL"),
            middle.ip: ("RESTARTING", "OPERATING"),
            last.ip: ("RESTARTING", "OPERATING"),
        }
    # The port is free again: a retry starts it and restarts the last one.
    retried = fleet.post(f"/api/v2/tasks/instances/{task['id']}/retry")
    assert retried["operation"] == "RETRY"
    fleet.succeeded(task["id"])
    for host in hosts:
        launches[host.ip] = assert_serving(host, password, launches[host.ip])
    assert set(statuses(fleet, "pc_fail").values()) == {("RUNNING", "NORMAL")}

    # The same failure again, rolled back this time.
    kill_obproxy(middle)
    wait_for_obproxy(fleet, "pc_fail", middle.ip, "UNAVAILABLE")
    with middle.occupy_port(EXPORTER_PORT):
        task = restart(fleet, cluster_id, order)
        assert fleet.wait(task["id"])["status"] == "FAILED"
        launches[first.ip] = assert_serving(first, password, launches[first.ip])
    fleet.post(f"/api/v2/tasks/instances/{task['id']}/rollback")
    rolled_back = fleet.wait(task["id"])
    assert (rolled_back["status"], rolled_back["operation"]) == ("SUCCESSFUL", "ROLLBACK")
    # Restarted stays restarted, untouched stays as it was, and the middle one, down before the
    # task, stays down: nothing runs from its path, its ports are free.
    assert_serving(first, password, launches[first.ip])
    assert assert_serving(last, password, launches[last.ip]).pid == launches[last.ip].pid
    assert obproxy_processes(middle) == []
    assert not any(can_log_in(middle.ip, password) for _ in range(2))
    assert statuses(fleet, "pc_fail") == {
        first.ip: ("RUNNING", "NORMAL"),
        middle.ip: ("UNAVAILABLE", "NORMAL"),
        last.ip: ("RUNNING", "NORMAL"),
    }
    # ...and a restart brings it back.
    fleet.succeeded(restart(fleet, cluster_id, [ids[middle.ip]])["id"])
    assert_serving(middle, password, launches[middle.ip])


def test_an_obproxy_that_exits_before_its_login_fails_the_wait_then_and_there(
    fleet: Fleet,
) -> None:
    host = fleet.hosts[0]
    fleet.succeeded(create(fleet, "pc_exit", "RS_LIST", [host])["id"])
    cluster = cluster_named(fleet, "pc_exit")
    (server,) = cluster["obproxies"]
    password = fleet.proxysys_password("pc_exit")
    launch = kill_obproxy(host)
    wait_for_obproxy(fleet, "pc_exit", host.ip, "UNAVAILABLE")
    with host.occupy_port(EXPORTER_PORT):  # the restart's start fails: the task stops there
        task = restart(fleet, cluster["id"], [server["id"]])
        assert fleet.wait(task["id"])["status"] == "FAILED"

    # A process runs from the install path, never listens and exits after a while: to the
    # retried start it is the OBProxy already running; the login wait sees it go.
    doomed = host.spawn(["/bin/bash", "-c", f"cd {HOME} && exec -a obproxy-doomed sleep 12"])
    try:
        deadline = time.monotonic() + 30
        while not host.pgrep("^obproxy-doomed"):
            assert time.monotonic() < deadline, "the doomed process never started"
            time.sleep(0.05)
        fleet.post(f"/api/v2/tasks/instances/{task['id']}/retry")
        # Well inside the login wait's own 240 s: the wait ends when the process does.
        failed = fleet.wait(task["id"], timeout=120)
    finally:
        host.run("pkill -KILL -f '^obproxy-doomed'")
        doomed.wait(timeout=10)
    assert failed["status"] == "FAILED"
    steps = {s["name"]: s for s in failed["subtasks"]}
    assert steps["Start obproxy process"]["status"] == "SUCCESSFUL"
    assert steps["Wait for obproxy login"]["status"] == "FAILED"
    logs = fleet.logs(failed)
    assert "OBProxy already runs from" in logs[steps["Start obproxy process"]["id"]]
    wait_log = logs[steps["Wait for obproxy login"]["id"]]
    assert (
        f"OBProxy exited before root@proxysys could log in; see {HOME}/log/obproxy.log on {host.ip}"
    ) in wait_log, wait_log
    assert password not in wait_log and sha1hex(password) not in wait_log

    # A retry would wait again for what is gone; rolled back, then a new restart starts it.
    fleet.post(f"/api/v2/tasks/instances/{task['id']}/rollback")
    assert fleet.wait(task["id"])["status"] == "SUCCESSFUL"
    fleet.succeeded(restart(fleet, cluster["id"], [server["id"]])["id"])
    assert_serving(host, password, launch)
    assert statuses(fleet, "pc_exit") == {host.ip: ("RUNNING", "NORMAL")}
