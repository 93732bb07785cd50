"""Bad days: the metadb goes away (503, logged once per outage, the connection kept), the disk
fills up (507 naming the data dir). Either way the request changes nothing."""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pymysql
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from obfleet.api.app import create_app
from obfleet.config import Settings
from obfleet.store.db import Database
from obfleet.store.outage import is_unreachable
from tests.conftest import ADMIN, ADMIN_PASSWORD
from tests.engine.processes import wait_until
from tests.server import ServerProcess
from tests.support.tcpproxy import TcpProxy

CLUSTERS = "/api/v2/obproxy/clusters"
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}


def client_port(r: httpx.Response) -> int:
    """The local port of the connection the answer came on."""
    return int(r.extensions["network_stream"].get_extra_info("client_addr")[1])


def wait_for_access_line(server: ServerProcess, request: str, trace_id: str) -> None:
    """The server logs each request's line as it answers: wait for this one's."""
    wanted = (request, f"traceId={trace_id}")
    wait_until(
        lambda: any(all(w in line for w in wanted) for line in server.output().splitlines()),
        10,
        f"the access log line of {trace_id}",
    )


@pytest.fixture
def proxied(database: Database) -> Iterator[tuple[TcpProxy, str]]:
    """The metadb under test behind a TCP proxy the test can stop."""
    if database.dialect == "sqlite":
        pytest.skip("needs a metadb server to take away")
    url = database.engine.url
    with TcpProxy((url.host or "127.0.0.1", url.port or DEFAULT_PORTS[database.dialect])) as proxy:
        yield proxy, url.set(port=proxy.port).render_as_string(hide_password=False)


def test_an_unreachable_metadb_answers_503_and_is_logged_once_per_outage(
    proxied: tuple[TcpProxy, str], tmp_path: Path
) -> None:
    proxy, url = proxied
    server = ServerProcess(
        tmp_path / "data",
        database_url=url,
        env={"OBFLEET_ADMIN_PASSWORD": ADMIN_PASSWORD, "OBFLEET_HEALTH_INTERVAL": "0"},
    )
    with server, httpx.Client(base_url=server.url, headers=ADMIN, timeout=30) as api:
        r = api.get(CLUSTERS)
        assert r.status_code == 200, r.text
        port = client_port(r)
        proxy.stop()
        for _ in range(3):
            r = api.get(CLUSTERS)
            assert r.status_code == 503, r.text
            error = r.json()["error"]
            assert error["code"] == 1120 and "metadb" in error["message"]
            assert "unreachable" in error["message"]
            assert r.json()["traceId"] == r.headers["x-trace-id"]
            wait_for_access_line(server, f"GET {CLUSTERS} 503 ", r.headers["x-trace-id"])
            assert client_port(r) == port, "the keep-alive connection was reset"
        proxy.start()
        r = api.get(CLUSTERS)
        assert r.status_code == 200 and client_port(r) == port, r.text
    log = server.output()
    assert log.count("metadb unreachable") == 1 and log.count("metadb reachable again") == 1
    assert log.index("metadb unreachable") < log.index("metadb reachable again")
    assert "Traceback" not in log


@pytest.fixture
def tiny_data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data dir on a 2 MiB tmpfs of its own, unmounted after."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mount], check=True)
    try:
        yield mount / "data"
    finally:
        subprocess.run(["umount", mount], check=True)


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    with filler.open("wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_answers_507_naming_the_data_dir(
    settings: Settings, tiny_data_dir: Path
) -> None:
    settings = dataclasses.replace(settings, data_dir=tiny_data_dir, database_url="")
    body = {"name": "c1", "targetType": "HOST", "username": "u", "password": "p"}
    rpm = {"file": ("x.rpm", b"\0" * 256 * 1024)}
    with TestClient(create_app(settings, run_engine=False)) as client:
        assert client.get(CLUSTERS, headers=ADMIN).status_code == 200  # logged in, cached
        filler = fill(tiny_data_dir)
        for r in (
            client.post("/api/v2/credentials", headers=ADMIN, json=body),
            client.post("/api/v2/software-packages", headers=ADMIN, files=rpm),
        ):
            assert r.status_code == 507, r.text
            assert r.json()["error"]["code"] == 1121
            assert f"the data dir {tiny_data_dir}" in r.json()["error"]["message"]
        filler.unlink()
        listed = client.get("/api/v2/credentials", headers=ADMIN).json()["data"]["contents"]
        assert listed == []
        assert client.post("/api/v2/credentials", headers=ADMIN, json=body).status_code == 200


def test_only_an_unreachable_server_counts_as_an_outage() -> None:
    """A deadlock or a bug is the request's problem, not an outage (503 is for waiting)."""
    errors = {
        "mysql deadlock": OperationalError("UPDATE", {}, pymysql.err.OperationalError(1213, "x")),
        "mysql lost": OperationalError("SELECT", {}, pymysql.err.OperationalError(2013, "lost")),
        "pg refused": OperationalError("connect", {}, psycopg.OperationalError("refused")),
        "pg shutdown": OperationalError("SELECT", {}, psycopg.errors.AdminShutdown("bye")),
        "pg bug": ProgrammingError("SELECT", {}, psycopg.ProgrammingError("bad parameters")),
        "pg duplicate": IntegrityError("INSERT", {}, psycopg.errors.UniqueViolation("dup")),
    }
    unreachable = {name for name, error in errors.items() if is_unreachable(error)}
    assert unreachable == {"mysql lost", "pg refused", "pg shutdown"}
