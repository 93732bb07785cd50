"""Deployment fixtures: a real `obfleet serve` on the lab's bridge, four real test hosts, the
stand-in OBProxy RPM uploaded, an OceanBase cluster recorded, and helpers to look at what
obfleet left on the hosts.

The server listens on the lab's gateway address with OBFLEET_ADVERTISE_URL pointing there, so
the stand-ins it starts in CONFIG_URL mode read their clusters from its config server. Hosts
are recorded through the hosts API ("Prepare host" pins their keys and marks them ONLINE).
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pymysql
import pytest
from sqlalchemy import select

from obfleet.records import credentials
from obfleet.security.secrets import SecretBox, load_or_create_key
from obfleet.store.db import Database
from obfleet.store.models.obproxy import ObproxyCluster
from tests.conftest import ADMIN, ADMIN_PASSWORD
from tests.server import SECRET_KEY, ServerProcess
from tests.standin.rpm import build_standin_rpm
from tests.support.sshkeys import with_passphrase
from tests.support.testhosts import HostLab, NetnsHost

VERSION, RELEASE = "4.2.3.0", "3.el7"
RPM_NAME = f"obproxy-ce-{VERSION}-{RELEASE}.x86_64.rpm"
HOME = f"/home/admin/obproxy-{VERSION}"
SQL_PORT, EXPORTER_PORT = 2883, 2884
OB_CLUSTER = "ob1"
PROXYRO_PASSWORD = "Proxyro_pw_1"
# An OceanBase root server (ip, rpc port, sql port); nothing needs to answer there.
ROOT_SERVER = ("198.18.250.1", 2882, 2881)
# The subtasks of one host's install, in order.
HOST_CHAIN = [
    "Prepare create obproxy",
    "Check if process not exist",
    "Install rpm by package and version",
    "Start obproxy process",
    "Wait for obproxy login",
    "Set obproxy user and password for connect",
    "Sync obproxy parameter",
    "Update obproxy status",
]


def sha1hex(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


@pytest.fixture(scope="session")
def standin_rpm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("rpmbuild") is None:
        pytest.skip("rpmbuild is not installed (apt-get install rpm)")
    return build_standin_rpm(
        tmp_path_factory.mktemp("deploy-rpm"), version=VERSION, release=RELEASE
    )


@pytest.fixture(scope="module")
def lab(host_lab_factory: Callable[..., HostLab]) -> Iterator[HostLab]:
    lab = host_lab_factory(4)
    yield lab
    lab.close()


@dataclass
class Fleet:
    """obfleet as a client sees it (api) and as the test checks it (db, box), and the hosts."""

    server: ServerProcess
    api: httpx.Client
    db: Database
    box: SecretBox
    lab: HostLab
    host_ids: dict[str, int]  # by host ip

    @property
    def hosts(self) -> list[NetnsHost]:
        return self.lab.hosts

    def host_id(self, host: NetnsHost) -> int:
        return self.host_ids[host.ip]

    def post(self, path: str, body: Any = None) -> Any:
        r = self.api.post(path, json=body)
        assert r.status_code == 200, r.text
        return r.json()["data"]

    def get(self, path: str) -> Any:
        r = self.api.get(path)
        assert r.status_code == 200, r.text
        return r.json()["data"]

    def wait(self, task_id: int, timeout: float = 120) -> dict[str, Any]:
        """The task once it is no longer RUNNING."""
        deadline = time.monotonic() + timeout
        while True:
            task: dict[str, Any] = self.get(f"/api/v2/tasks/instances/{task_id}")
            if task["status"] != "RUNNING":
                return task
            assert time.monotonic() < deadline, f"task {task_id} still RUNNING: {task}"
            time.sleep(0.2)

    def logs(self, task: dict[str, Any]) -> dict[int, str]:
        """Every subtask's log, by subtask id."""
        return {
            s["id"]: self.get(f"/api/v2/tasks/instances/{task['id']}/subtasks/{s['id']}/log")["log"]
            for s in task["subtasks"]
        }

    def succeeded(self, task_id: int) -> dict[str, Any]:
        """Wait for the task; it must end SUCCESSFUL (else: the logs of what failed)."""
        task = self.wait(task_id)
        if task["status"] != "SUCCESSFUL":
            logs = self.logs(task)
            failed = [
                f"{s['name']}:\n{logs[s['id']]}"
                for s in task["subtasks"]
                if s["status"] == "FAILED"
            ]
            pytest.fail(f"task {task_id} is {task['status']}:\n" + "\n".join(failed))
        return task

    def proxysys_password(self, cluster_name: str) -> str:
        with self.db.session() as session:
            cluster = session.scalar(
                select(ObproxyCluster).where(ObproxyCluster.name == cluster_name)
            )
            assert cluster is not None and cluster.proxysys_credential_id is not None
            return credentials.reveal(session, self.box, cluster.proxysys_credential_id).secret


def _add_hosts(fleet: Fleet, passphrase: str | None) -> None:
    """Record the lab's hosts the way an operator does: a key credential (root's key, encrypted
    with `passphrase` when one is given), then batchCreate, whose "Prepare host" tasks pin each
    host key and mark the host ONLINE."""
    lab = fleet.lab
    key = lab.root_private_key
    if passphrase:
        key = with_passphrase(fleet.server.data_dir.parent, key, passphrase)
    credential = fleet.post(
        "/api/v2/credentials",
        {
            "name": "root_key",
            "targetType": "HOST",
            "authType": "PRIVATE_KEY",
            "username": "root",
            "privateKey": key,
            "passphrase": passphrase,
        },
    )
    tasks = fleet.post(
        "/api/v2/compute/hosts/batchCreate",
        {
            "hostBasicDataList": [{"innerIpAddress": h.ip} for h in lab.hosts],
            "sshPort": 22,
            "kind": "DEDICATED_PHYSICAL_MACHINE",
            "credentialId": credential["id"],
        },
    )["contents"]
    for task in tasks:
        fleet.succeeded(task["id"])
    hosts = fleet.get("/api/v2/compute/hosts?size=2000")["contents"]
    fleet.host_ids.update({h["innerIpAddress"]: h["id"] for h in hosts})


def _setup(api: httpx.Client, rpm: Path) -> None:
    r = api.post("/api/v2/software-packages", files={"file": (rpm.name, rpm.read_bytes())})
    assert r.status_code == 200, r.text
    ip, rpc_port, sql_port = ROOT_SERVER
    r = api.post(
        "/api/v2/ob/clusters/import",
        json={
            "name": OB_CLUSTER,
            "obClusterId": 1,
            "proxyroPassword": PROXYRO_PASSWORD,
            "rootServers": [{"address": f"{ip}:{rpc_port}", "role": "LEADER", "sqlPort": sql_port}],
        },
    )
    assert r.status_code == 200, r.text


def fleet_server(
    lab: HostLab, data_dir: Path, database_url: str = "", env: dict[str, str] | None = None
) -> ServerProcess:
    """A (not yet started) `obfleet serve` on the lab's gateway, advertising its own URL; the
    caller may still change its env, e.g. OBFLEET_ADVERTISE_URL."""
    server = ServerProcess(
        data_dir,
        database_url=database_url,
        host=lab.gateway_ip,
        env={
            "OBFLEET_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "OBFLEET_SECRET_KEY": SECRET_KEY,
            **(env or {}),
        },
    )
    server.env.setdefault("OBFLEET_ADVERTISE_URL", server.url)
    return server


@contextlib.contextmanager
def running_fleet(
    server: ServerProcess,
    lab: HostLab,
    rpm: Path,
    database_url: str = "",
    passphrase: str | None = None,
) -> Iterator[Fleet]:
    """Start `server`, upload `rpm`, import the OceanBase cluster and add every host of the lab
    (ONLINE, reached with root's key, under `passphrase` if given); stop the server at the
    end."""
    url = database_url or f"sqlite:///{server.data_dir / 'obfleet.db'}"
    with server:
        api = httpx.Client(base_url=server.url, headers=ADMIN, trust_env=False, timeout=30)
        db = Database(url)
        box = SecretBox(load_or_create_key(server.data_dir, SECRET_KEY))
        fleet = Fleet(server, api, db, box, lab, {})
        try:
            _setup(api, rpm)
            _add_hosts(fleet, passphrase)
            yield fleet
        finally:
            api.close()
            db.dispose()


@pytest.fixture
def fleet(
    request: pytest.FixtureRequest,
    lab: HostLab,
    standin_rpm: Path,
    tmp_path: Path,
    database_url: str,
) -> Iterator[Fleet]:
    """The fleet, its hosts reached with root's key: encrypted with the passphrase given as
    the fixture's parameter (indirect parametrization), if any."""
    for host in lab.hosts:
        host.reset()  # undo faults; no process, no file of an earlier test
    server = fleet_server(lab, tmp_path / "data", database_url)
    passphrase = getattr(request, "param", None)
    with running_fleet(server, lab, standin_rpm, database_url, passphrase) as fleet:
        yield fleet
    for host in lab.hosts:
        host.reset()  # the stand-ins daemonized: stop them with the test


# --- what is on a host ---------------------------------------------------------------------


def obproxy_argv(host: NetnsHost, home: str = HOME) -> list[str]:
    """The running OBProxy's arguments from its own /proc/<pid>/cmdline, from ./bin/obproxy on
    (the stand-in runs under python3, which comes first)."""
    pid = host.run(f"cat {home}/run/obproxy.pid", check=True).stdout.strip()
    raw = host.run(f"cat /proc/{int(pid)}/cmdline", check=True).stdout
    argv = raw.split("\0")[:-1]
    return argv[argv.index("./bin/obproxy") :]


def proxyconfig(host: NetnsHost, password: str) -> dict[str, str]:
    """`show proxyconfig` as root@proxysys on the host's SQL port."""
    with (
        pymysql.connect(
            host=host.ip, port=SQL_PORT, user="root@proxysys", password=password, connect_timeout=5
        ) as conn,
        conn.cursor() as cursor,
    ):
        cursor.execute("show proxyconfig")
        return {row[0]: row[1] for row in cursor.fetchall()}


def obproxy_processes(host: NetnsHost) -> list[tuple[int, str]]:
    return [(pid, cmd) for pid, cmd in host.processes() if "bin/obproxy" in cmd]


def listening(host: NetnsHost, port: int) -> bool:
    table = host.run("cat /proc/net/tcp /proc/net/tcp6", check=True).stdout
    return any(
        line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A"
        for line in table.splitlines()[1:]
        if len(line.split()) > 3
    )


def assert_clean(host: NetnsHost) -> None:
    """No OBProxy process, no install path, ports free."""
    assert obproxy_processes(host) == []
    assert not host.file_exists(HOME)
    assert not listening(host, SQL_PORT) and not listening(host, EXPORTER_PORT)


def assert_no_secrets(texts: list[str], secrets: list[str]) -> None:
    for secret in secrets:
        for text in texts:
            assert secret not in text, f"a secret leaked into: {text[:2000]}"
