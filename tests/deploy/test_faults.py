"""Faults on real hosts during an install: a host's link cut in the middle of it, and a host
key changed behind obfleet's back.

The link is cut while the host's "Start obproxy process" is provably in progress, not at a
guessed moment: the OBProxies of this cluster run in CONFIG_URL mode and read their clusters
through `ConfigServerGate`, a TCP relay in front of obfleet's config server. A starting OBProxy
(the stand-in, like the real one) asks the config server before its start command returns, and
the gate answers that host's request one byte at a time, so its start command cannot return
until the test lets it. The test cuts the host's link while it waits there.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from obfleet.obproxy.configurl import config_url
from tests.deploy.conftest import (
    HOST_CHAIN,
    OB_CLUSTER,
    Fleet,
    assert_clean,
    fleet_server,
    obproxy_processes,
    running_fleet,
)
from tests.deploy.test_deploy import RS_LIST, assert_runs, create, expected_argv
from tests.support.testhosts import HostLab

pytestmark = pytest.mark.hosts

# A silent host is given 8 s over SSH (connect, keepalives), so a cut link fails its step in
# seconds instead of the default 15; long enough that a busy machine drops no healthy connection.
SSH_TIMEOUT = "8"
DRIP_INTERVAL = 0.5  # the stand-in gives up on a config server that is silent for 3 s


class ConfigServerGate:
    """A TCP relay from `listen_ip` to obfleet's server. Connections from the held address are
    not relayed: they get an HTTP answer that never ends (a byte every DRIP_INTERVAL), until
    `release()`. `held` is set once such a connection came in."""

    def __init__(self, listen_ip: str, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server((listen_ip, 0))
        self.url = f"http://{listen_ip}:{self.listener.getsockname()[1]}"
        self.held = threading.Event()
        self._hold_ip: str | None = None
        self._released = threading.Event()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def hold(self, ip: str) -> None:
        self._hold_ip = ip
        self._released.clear()
        self.held.clear()

    def release(self) -> None:
        """Stop holding: held connections are closed, new ones are relayed."""
        self._hold_ip = None
        self._released.set()

    def close(self) -> None:
        self._closed.set()
        self._released.set()
        with contextlib.suppress(OSError):
            self.listener.close()
        for sock in list(self._sockets):
            with contextlib.suppress(OSError):
                sock.close()
        for thread in self._threads:
            thread.join(timeout=10)

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, (ip, _) = self.listener.accept()
            except OSError:
                return
            self._sockets.append(client)
            if ip == self._hold_ip:
                self.held.set()
                self._spawn(self._drip, client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            self._sockets.append(server)
            self._spawn(self._pipe, client, server)
            self._spawn(self._pipe, server, client)

    def _drip(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError), client:
            client.sendall(b"HTTP/1.1 200 OK\r\nX-Held: ")
            while not self._released.wait(DRIP_INTERVAL):
                client.sendall(b"x")

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def gated_fleet(
    lab: HostLab, standin_rpm: Path, tmp_path: Path, database_url: str
) -> Iterator[tuple[Fleet, ConfigServerGate]]:
    """The deploy fleet with a short SSH timeout, its hosts' config server behind a gate."""
    for host in lab.hosts:
        host.reset()
    server = fleet_server(
        lab, tmp_path / "data", database_url, env={"OBFLEET_SSH_TIMEOUT": SSH_TIMEOUT}
    )
    gate = ConfigServerGate(lab.gateway_ip, (server.host, server.port))
    server.env["OBFLEET_ADVERTISE_URL"] = gate.url
    try:
        with running_fleet(server, lab, standin_rpm, database_url) as fleet:
            yield fleet, gate
    finally:
        gate.close()
        for host in lab.hosts:
            host.reset()


def branch(task: dict[str, Any], index: int) -> dict[str, dict[str, Any]]:
    """The subtasks of one host's branch (parallelIdx = its place in hostIds), by name."""
    return {s["name"]: s for s in task["subtasks"] if s["parallelIdx"] == index}


def statuses(task: dict[str, Any], index: int) -> list[str]:
    subtasks = branch(task, index)
    return [subtasks[name]["status"] for name in HOST_CHAIN]


def test_a_link_cut_during_the_start_fails_that_host_only_and_a_retry_finishes(
    gated_fleet: tuple[Fleet, ConfigServerGate],
) -> None:
    fleet, gate = gated_fleet
    victim, *others = fleet.hosts[:3]
    gate.hold(victim.ip)
    task = create(fleet, "pc_cut", "CONFIG_URL", [victim, *others])
    # The victim's OBProxy is starting and waits for the config server: its start command
    # cannot have returned. Cut the host off the network right there.
    assert gate.held.wait(120), "the victim's OBProxy never asked the config server"
    during = fleet.get(f"/api/v2/tasks/instances/{task['id']}")
    assert statuses(during, 0)[:4] == ["SUCCESSFUL"] * 3 + ["RUNNING"]
    victim.cut_link()
    try:
        gate.release()
        failed = fleet.wait(task["id"])
        assert failed["status"] == "FAILED"
        # Only the victim's branch stopped, at the step that was running; the others finished.
        done, cut, pending = ["SUCCESSFUL"] * 3, ["FAILED"], ["PENDING"] * 4
        assert statuses(failed, 0) == done + cut + pending
        assert statuses(failed, 1) == statuses(failed, 2) == ["SUCCESSFUL"] * len(HOST_CHAIN)
        start = branch(failed, 0)["Start obproxy process"]
        log = fleet.logs(failed)[start["id"]]
        assert (
            f"The subtask failed: root@{victim.ip}:22: connection lost before the command "
            "finished: "
            "the host stopped answering (no reply to SSH keepalives): down or unreachable"
        ) in log, log
        password = fleet.proxysys_password("pc_cut")
        url = config_url(gate.url, "pc_cut")
        for host in others:
            assert_runs(host, password, expected_argv("pc_cut", password, url=url))
    finally:
        victim.restore_link()

    retried = fleet.post(f"/api/v2/tasks/instances/{task['id']}/retry")
    assert retried["operation"] == "RETRY"
    done = fleet.succeeded(task["id"])
    assert statuses(done, 0) == ["SUCCESSFUL"] * len(HOST_CHAIN)
    # One OBProxy on the victim, started once (the retried start found it running), and
    # root@proxysys logs in with the cluster's password.
    assert len(obproxy_processes(victim)) == 1
    assert_runs(victim, password, expected_argv("pc_cut", password, url=url))
    retry_log = fleet.logs(done)[start["id"]]
    assert "OBProxy already runs from" in retry_log or "OBProxy runs from" in retry_log
    servers = fleet.get("/api/v2/obproxy/clusters?name=pc_cut")["contents"][0]["obproxies"]
    assert sorted(s["ip"] for s in servers) == sorted(h.ip for h in fleet.hosts[:3])
    assert {s["status"] for s in servers} == {"RUNNING"}


def test_a_changed_host_key_refuses_the_install_on_that_host(fleet: Fleet) -> None:
    host = fleet.hosts[0]
    pinned = host.host_key_fingerprint()
    # The host is reinstalled behind obfleet's back: every session (the pooled one too) is
    # gone, and sshd comes back with a new key.
    host.kill_sshd()
    host.regenerate_host_key()
    offered = host.host_key_fingerprint()
    assert offered != pinned
    sshd_log = len(host.sshd_log())

    task = create(fleet, "pc_key", "RS_LIST", [host])
    failed = fleet.wait(task["id"])
    assert failed["status"] == "FAILED"
    assert statuses(failed, 0) == ["SUCCESSFUL", "FAILED"] + ["PENDING"] * 6
    log = fleet.logs(failed)[branch(failed, 0)["Check if process not exist"]["id"]]
    assert f"The subtask failed: root@{host.ip}:22: host key changed: pinned {pinned}" in log, log
    assert f"host offered {offered}; refusing to connect" in log
    assert "remove it from obfleet and add it again to pin the new key" in log
    # Nothing went to the host: no login, no file, no process.
    assert "Accepted" not in host.sshd_log()[sshd_log:]
    assert_clean(host)

    # The way forward the message gives: undo the install, forget the host, add it again
    # (which pins the new key), install.
    fleet.post(f"/api/v2/tasks/instances/{task['id']}/rollback")
    assert fleet.wait(task["id"])["status"] == "SUCCESSFUL"
    host_id = fleet.host_id(host)
    r = fleet.api.delete(f"/api/v2/compute/hosts/{host_id}")
    assert r.status_code == 200, r.text
    (credential,) = fleet.get("/api/v2/credentials?targetType=HOST")["contents"]
    (again,) = fleet.post(
        "/api/v2/compute/hosts/batchCreate",
        {
            "hostBasicDataList": [{"innerIpAddress": host.ip}],
            "sshPort": 22,
            "kind": "DEDICATED_PHYSICAL_MACHINE",
            "credentialId": credential["id"],
        },
    )["contents"]
    fleet.succeeded(again["id"])
    fleet.host_ids[host.ip] = again["hostId"]
    assert fleet.get(f"/api/v2/compute/hosts/{again['hostId']}")["hostKeyFingerprint"] == offered
    fleet.succeeded(create(fleet, "pc_key", "RS_LIST", [host])["id"])
    password = fleet.proxysys_password("pc_key")
    assert_runs(host, password, expected_argv("pc_key", password, "-r", RS_LIST, "-c", OB_CLUSTER))
