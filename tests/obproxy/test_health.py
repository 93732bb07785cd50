"""OBProxy health checks in process, on the metadb under test: rows inserted directly, pointing at
the stand-in OBProxy's SQL server run on 127.0.0.1 in this process, at a dead port, or at a
listener that never answers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from obfleet.api.app import create_app
from obfleet.config import Settings
from obfleet.monitor import health as health
from obfleet.monitor.metrics import Metrics
from obfleet.records import obproxy as records
from obfleet.security.secrets import SecretBox, load_or_create_key
from obfleet.store.db import Database
from obfleet.store.models.credentials import Credential
from obfleet.store.models.hosts import Host
from obfleet.store.models.obproxy import ObproxyCluster, ObproxyServer
from tests.conftest import ADMIN, admin_password_hash
from tests.server import free_port
from tests.standin import obproxy as standin
from tests.support.silent import Silent

PASSWORD = "Proxysys_pw_1"
OCP_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d")
EARLIER = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


class StandinSql:
    """The stand-in OBProxy's SQL port (real MySQL protocol, root@proxysys) on 127.0.0.1."""

    def __init__(self, home: Path, password: str) -> None:
        self.proxy = standin.Proxy(home)
        self.proxy.config.update({"obproxy_sys_password": standin.stage1_hex(password)})
        self.server = standin.SqlServer(0, self.proxy)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def box(tmp_path: Path) -> SecretBox:
    return SecretBox(load_or_create_key(tmp_path, "health-test-key"))


@pytest.fixture
def live(tmp_path: Path) -> Iterator[StandinSql]:
    sql = StandinSql(tmp_path / "standin", PASSWORD)
    yield sql
    sql.close()


@dataclass
class Rows:
    db: Database
    box: SecretBox
    cluster_id: int
    ssh_credential_id: int

    def add(
        self,
        port: int,
        status: str = "RUNNING",
        last_active: datetime | None = EARLIER,
        cluster_id: int | None = None,
    ) -> int:
        with self.db.transaction() as session:
            # A host of its own: (host, sqlPort) is unique, and several rows share a port here.
            host = Host(
                name="local",
                inner_ip_address="127.0.0.1",
                ssh_port=1000 + session.query(Host).count(),
                credential_id=self.ssh_credential_id,
            )
            session.add(host)
            session.flush()
            row = ObproxyServer(
                cluster_id=cluster_id or self.cluster_id,
                host_id=host.id,
                ip="127.0.0.1",
                sql_port=port,
                exporter_port=port + 1 if port < 65535 else port - 1,
                status=status,
                operate_status="NORMAL",
                last_active_time=last_active,
                update_time=EARLIER,
            )
            session.add(row)
            session.flush()
            return row.id

    def cluster(self, name: str, password: str | None) -> int:
        with self.db.transaction() as session:
            credential_id = None
            if password is not None:
                credential = Credential(
                    name=f"{name}_proxysys",
                    target_type="OBPROXY",
                    auth_type="PASSWORD",
                    username="root@proxysys",
                    secret_encrypted=self.box.encrypt(password),
                )
                session.add(credential)
                session.flush()
                credential_id = credential.id
            cluster = ObproxyCluster(
                name=name, work_mode="RS_LIST", proxysys_credential_id=credential_id
            )
            session.add(cluster)
            session.flush()
            return cluster.id

    def get(self, server_id: int) -> ObproxyServer:
        with self.db.session() as session:
            row = session.get(ObproxyServer, server_id)
            assert row is not None
            return row

    def set_status(self, server_id: int, status: str) -> None:
        with self.db.transaction() as session:
            session.execute(
                update(ObproxyServer).where(ObproxyServer.id == server_id).values(status=status)
            )


def _insert_base(db: Database, box: SecretBox) -> Rows:
    with db.transaction() as session:
        ssh = Credential(
            name="host_ssh",
            target_type="HOST",
            auth_type="PASSWORD",
            username="root",
            secret_encrypted=box.encrypt("unused"),
        )
        session.add(ssh)
        session.flush()
        ssh_id = ssh.id
    rows = Rows(db, box, 0, ssh_id)
    rows.cluster_id = rows.cluster("pc_health", PASSWORD)
    return rows


@pytest.fixture
def rows(database: Database, box: SecretBox) -> Rows:
    return _insert_base(database, box)


def check(rows: Rows, **kwargs: Any) -> health.RoundResult:
    return asyncio.run(health.check_once(rows.db, rows.box, timeout=2, **kwargs))


def test_a_live_obproxy_comes_back_and_a_running_one_gets_a_heartbeat(
    rows: Rows, live: StandinSql, caplog: pytest.LogCaptureFixture
) -> None:
    back = rows.add(live.port, "UNAVAILABLE", last_active=None)
    steady = rows.add(live.port, "RUNNING")  # a second row on the same port: two checks
    before = datetime.now(UTC)
    with caplog.at_level(logging.INFO, logger="obfleet.health"):
        result = check(rows)

    assert [p.alive for p in result.probes] == [True, True]
    for server_id in (back, steady):
        row = rows.get(server_id)
        assert row.status == "RUNNING"
        assert row.last_active_time is not None and row.last_active_time >= before
    assert rows.get(back).update_time > EARLIER, "a status change stamps update_time"
    assert rows.get(steady).update_time == EARLIER, "a heartbeat does not"
    assert [(t.server_id, t.old, t.new) for t in result.transitions] == [
        (back, "UNAVAILABLE", "RUNNING")
    ]
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        f"obproxy {back} (127.0.0.1:{live.port}, cluster pc_health) is RUNNING "
        "(was UNAVAILABLE): root@proxysys logged in again"
    ]

    caplog.clear()
    first_seen = rows.get(steady).last_active_time
    with caplog.at_level(logging.INFO, logger="obfleet.health"):
        again = check(rows)
    assert again.transitions == [] and caplog.records == []
    assert rows.get(steady).last_active_time > first_seen  # type: ignore[operator]


def test_a_dead_port_and_a_wrong_password_make_it_unavailable(
    rows: Rows, live: StandinSql, caplog: pytest.LogCaptureFixture
) -> None:
    dead = rows.add(free_port())
    refused = rows.add(live.port, cluster_id=rows.cluster("pc_other_pw", "Not_the_pw_1"))
    with caplog.at_level(logging.INFO, logger="obfleet.health"):
        result = check(rows)

    for server_id in (dead, refused):
        row = rows.get(server_id)
        assert (row.status, row.last_active_time) == ("UNAVAILABLE", EARLIER)
    reasons = {t.server_id: t.reason for t in result.transitions}
    assert set(reasons) == {dead, refused}
    assert "cannot log in: (2003)" in reasons[dead]
    assert "cannot log in: (1045) Access denied for user 'root@proxysys'" in reasons[refused]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "is UNAVAILABLE (was RUNNING)" in logged
    assert all(r.levelno == logging.WARNING for r in caplog.records)
    for secret in (PASSWORD, "Not_the_pw_1", standin.stage1_hex(PASSWORD)):
        assert secret not in logged

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="obfleet.health"):
        again = check(rows)
    assert [p.alive for p in again.probes] == [False, False]
    assert again.transitions == [] and caplog.records == [], "only changes are logged"
    assert rows.get(dead).last_active_time == EARLIER


def test_each_round_is_exported_per_obproxy(rows: Rows, live: StandinSql) -> None:
    dead_port = free_port()
    rows.add(live.port)
    dead = rows.add(dead_port)
    metrics = Metrics()
    check(rows, metrics=metrics)

    def sample(name: str, port: int) -> float | None:
        labels = {"cluster": "pc_health", "host": "127.0.0.1", "port": str(port)}
        return metrics.registry.get_sample_value(name, labels)

    assert (sample("obfleet_obproxy_up", live.port), sample("obfleet_obproxy_up", dead_port)) == (
        1,
        0,
    )
    assert (sample("obfleet_obproxy_login_seconds", live.port) or 0) > 0
    rows.set_status(dead, "DELETING")  # no longer checked: its series goes
    check(rows, metrics=metrics)
    assert sample("obfleet_obproxy_up", dead_port) is None
    assert sample("obfleet_obproxy_up", live.port) == 1


def test_rows_in_an_operation_are_left_alone(rows: Rows, live: StandinSql) -> None:
    operations = ["CREATING", "RESTARTING", "DELETING", "UPGRADING", "TAKINGOVER"]
    busy = {rows.add(free_port(), status): status for status in operations}
    busy_live = rows.add(live.port, "RESTARTING", last_active=None)
    result = check(rows)
    assert result.probes == [] and result.transitions == []
    for server_id, status in busy.items():
        row = rows.get(server_id)
        assert (row.status, row.last_active_time, row.update_time) == (status, EARLIER, EARLIER)
    assert (rows.get(busy_live).status, rows.get(busy_live).last_active_time) == (
        "RESTARTING",
        None,
    )


def test_a_concurrent_status_change_wins_over_the_check(rows: Rows, live: StandinSql) -> None:
    """A task moves the rows into an operation between the round's read and its write."""
    going_down = rows.add(free_port(), "RUNNING")
    coming_up = rows.add(live.port, "UNAVAILABLE", last_active=None)
    heartbeat = rows.add(live.port, "RUNNING")
    with rows.db.session() as session:
        targets = health.load_targets(session, rows.box)
    assert [t.server_id for t in targets] == [going_down, coming_up, heartbeat]
    assert "Proxysys_pw_1" not in repr(targets)
    probes = asyncio.run(health.probe_all(targets, timeout=2))
    assert [p.alive for p in probes] == [False, True, True]

    for server_id in (going_down, coming_up, heartbeat):
        rows.set_status(server_id, "RESTARTING")
    with rows.db.transaction() as session:
        assert health.record(session, probes) == []
    assert (rows.get(going_down).status, rows.get(going_down).last_active_time) == (
        "RESTARTING",
        EARLIER,
    )
    assert (rows.get(coming_up).status, rows.get(coming_up).last_active_time) == (
        "RESTARTING",
        None,
    )
    assert (rows.get(heartbeat).status, rows.get(heartbeat).last_active_time) == (
        "RESTARTING",
        EARLIER,
    )


def test_another_replica_got_there_first(rows: Rows, live: StandinSql) -> None:
    """Two replicas saw the same change: one writes and logs it, the other only heartbeats."""
    server_id = rows.add(live.port, "UNAVAILABLE", last_active=None)
    with rows.db.session() as session:
        targets = health.load_targets(session, rows.box)
    first = asyncio.run(health.probe_all(targets, timeout=2))
    second = asyncio.run(health.probe_all(targets, timeout=2))
    with rows.db.transaction() as session:
        assert [t.new for t in health.record(session, first)] == ["RUNNING"]
    with rows.db.transaction() as session:
        assert health.record(session, second) == []
    row = rows.get(server_id)
    assert row.status == "RUNNING" and row.last_active_time == second[0].at


def test_logins_run_concurrently_and_no_more_than_the_bound_at_once(
    rows: Rows, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Counted where the logins are made: a listener's count of open connections can run one
    # over while it has yet to see a timed-out client hang up.
    lock = threading.Lock()
    running = [0]
    most = [0]
    login = health._login

    def counted(target: health.Target, timeout: float) -> health.Probe:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            return login(target, timeout)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(health, "_login", counted)
    silent = Silent()
    try:
        ids = [rows.add(silent.port) for _ in range(6)]
        with rows.db.session() as session:
            targets = health.load_targets(session, rows.box)
        probes = asyncio.run(health.probe_all(targets, timeout=2, concurrency=3))
    finally:
        silent.close()
    assert most[0] == 3, "three logins were waiting for the greeting at the same time"
    assert silent.most >= 3, "they reached the listener"
    assert all(not p.alive and "timed out" in (p.error or "") for p in probes), probes
    assert [p.target.server_id for p in probes] == ids


def test_a_cluster_whose_credential_cannot_be_opened_is_skipped(
    rows: Rows, live: StandinSql, database: Database, tmp_path: Path
) -> None:
    server_id = rows.add(live.port, "RUNNING")
    other_key = SecretBox(load_or_create_key(tmp_path / "other", "another-key"))
    result = asyncio.run(health.check_once(database, other_key, timeout=2))
    assert result.probes == []
    assert (rows.get(server_id).status, rows.get(server_id).last_active_time) == (
        "RUNNING",
        EARLIER,
    )


def test_the_monitor_loop_checks_until_stopped(rows: Rows, live: StandinSql) -> None:
    server_id = rows.add(live.port, "UNAVAILABLE", last_active=None)

    async def scenario() -> int:
        monitor = health.HealthMonitor(rows.db, rows.box, interval=0.05, timeout=2)
        monitor.start()
        try:
            await until(lambda: monitor.rounds >= 3)
        finally:
            await monitor.stop()
        return monitor.rounds

    rounds = asyncio.run(scenario())
    assert rows.get(server_id).status == "RUNNING"
    seen = rows.get(server_id).last_active_time
    time.sleep(0.2)
    assert rows.get(server_id).last_active_time == seen, "no round after stop"
    assert rounds >= 3
    with pytest.raises(ValueError):
        health.HealthMonitor(rows.db, rows.box, interval=0)


async def until(predicate: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_the_service_runs_the_checks_and_the_api_shows_them(
    tmp_path: Path, database_url: str, live: StandinSql
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        admin_password_hash=admin_password_hash(),
        secret_key="test-secret-key",
        health_interval_s=0.1,
        health_timeout_s=2,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        ctx = client.app.state.ctx  # type: ignore[attr-defined]
        assert isinstance(ctx.extras["health"], health.HealthMonitor)
        rows = _insert_base(ctx.db, ctx.secrets)
        up = rows.add(live.port, "UNAVAILABLE", last_active=None)
        down = rows.add(free_port(), "RUNNING")

        def obproxies() -> dict[int, dict[str, Any]]:
            r = client.get(f"/api/v2/obproxy/clusters/{rows.cluster_id}", headers=ADMIN)
            assert r.status_code == 200, r.text
            return {s["id"]: s for s in r.json()["data"]["obproxies"]}

        deadline = time.monotonic() + 20
        while [obproxies()[i]["status"] for i in (up, down)] != ["RUNNING", "UNAVAILABLE"]:
            assert time.monotonic() < deadline, obproxies()
            time.sleep(0.05)
        shown = obproxies()
        assert OCP_TIME.fullmatch(shown[up]["lastActiveTime"]), shown[up]
        seen = datetime.fromisoformat(shown[up]["lastActiveTime"])
        assert datetime.now(UTC) - seen < timedelta(minutes=5)
        assert datetime.fromisoformat(shown[down]["lastActiveTime"]) == EARLIER
    assert "health" not in ctx.extras, "stopped with the service"


def test_interval_zero_turns_the_checks_off(tmp_path: Path, database_url: str) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        admin_password_hash=admin_password_hash(),
        health_interval_s=0,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert "health" not in client.app.state.ctx.extras  # type: ignore[attr-defined]


def test_settings_read_the_health_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBFLEET_HEALTH_INTERVAL", "7.5")
    monkeypatch.setenv("OBFLEET_HEALTH_TIMEOUT", "1.5")
    settings = Settings.from_env()
    assert (settings.health_interval_s, settings.health_timeout_s) == (7.5, 1.5)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OBFLEET_HEALTH_TIMEOUT", "0"),
        ("OBFLEET_HEALTH_TIMEOUT", "-1"),
        ("OBFLEET_HEALTH_TIMEOUT", "nan"),
        ("OBFLEET_HEALTH_TIMEOUT", "inf"),
        ("OBFLEET_HEALTH_TIMEOUT", "31536001"),
        ("OBFLEET_HEALTH_TIMEOUT", "soon"),
        ("OBFLEET_HEALTH_INTERVAL", "-1"),
        ("OBFLEET_HEALTH_INTERVAL", "nan"),
        ("OBFLEET_HEALTH_INTERVAL", "inf"),
        ("OBFLEET_HEALTH_INTERVAL", "-inf"),
    ],
)
def test_settings_refuse_health_values_pymysql_or_the_loop_cannot_use(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        Settings.from_env()


def test_settings_accept_the_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBFLEET_HEALTH_INTERVAL", "0")
    monkeypatch.setenv("OBFLEET_HEALTH_TIMEOUT", "31536000")
    settings = Settings.from_env()
    assert (settings.health_interval_s, settings.health_timeout_s) == (0, 31536000)


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), 31536001])
def test_a_timeout_pymysql_refuses_fails_the_round_and_marks_nothing(
    rows: Rows, timeout: float
) -> None:
    server_id = rows.add(free_port(), "RUNNING")
    with pytest.raises(ValueError, match="login timeout"):
        asyncio.run(health.check_once(rows.db, rows.box, timeout=timeout))
    assert (rows.get(server_id).status, rows.get(server_id).update_time) == ("RUNNING", EARLIER)
    with pytest.raises(ValueError, match="login timeout"):
        health.HealthMonitor(rows.db, rows.box, interval=30, timeout=timeout)


def test_an_error_of_obfleet_own_fails_the_round_and_marks_nothing(
    rows: Rows, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only what the OBProxy's answer (or silence) causes counts as down: a PyMySQL refusal of
    its arguments, or a bug, is raised instead of marking the whole fleet UNAVAILABLE."""
    server_id = rows.add(free_port(), "RUNNING")

    def refused(self: Any) -> None:
        raise TypeError("connect() got an unexpected keyword argument")

    monkeypatch.setattr(health.ProxysysClient, "login", refused)
    with pytest.raises(TypeError):
        check(rows)
    assert (rows.get(server_id).status, rows.get(server_id).update_time) == ("RUNNING", EARLIER)


class Garbled:
    """A listener that greets every client with a MySQL packet PyMySQL cannot decode."""

    def __init__(self, greeting: bytes) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.05)
        self.stopped = threading.Event()
        self.port = int(self.sock.getsockname()[1])
        self.greeting = len(greeting).to_bytes(3, "little") + b"\x00" + greeting
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(self.greeting)
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    conn.recv(1024)

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)
        self.sock.close()


def _greeting(version: bytes, capabilities_high: int = 0, plugin: bytes = b"") -> bytes:
    """A MySQL handshake packet's payload with these fields (the rest zeros and a dummy salt)."""
    return (
        b"\x0a"
        + version
        + b"\x00"
        + b"\x01\x00\x00\x00"  # thread id
        + b"saltsalt\x00"
        + b"\x00\x00"  # capabilities, low
        + bytes([33])
        + b"\x00\x00"  # status
        + capabilities_high.to_bytes(2, "little")
        + bytes([21])  # salt length
        + b"\x00" * 10
        + b"moresaltmore\x00"
        + plugin
    )


@pytest.mark.parametrize(
    ("greeting", "raised"),
    [
        (b"\x0a5.7\x00\x01", "error"),  # cut short: struct.error
        (_greeting(b"5.7")[:20], "UnboundLocalError"),  # no salt length
        (_greeting(b"abc"), "ValueError"),  # int() of the major version
        (_greeting(b"5.7", 0x0008, b"\xff\xfe\x00"), "UnicodeDecodeError"),  # auth plugin
    ],
    ids=["short", "no-salt-length", "version", "plugin-name"],
)
def test_a_garbled_greeting_counts_as_down(rows: Rows, greeting: bytes, raised: str) -> None:
    """Something other than an OBProxy on the port: PyMySQL raises stdlib errors decoding its
    greeting; that is the target's answer, not obfleet's fault."""
    garbled = Garbled(greeting)
    try:
        server_id = rows.add(garbled.port, "RUNNING")
        result = check(rows)
    finally:
        garbled.close()
    assert [t.server_id for t in result.transitions] == [server_id]
    assert f"not an OBProxy greeting ({raised})" in result.transitions[0].reason
    assert rows.get(server_id).status == "UNAVAILABLE"


def _operate(rows: Rows, server_id: int, *statuses: str) -> None:
    """An operation as the flows run it: one ORM status change per transaction."""
    for status in statuses:
        with rows.db.transaction() as session:
            row = session.get(ObproxyServer, server_id)
            assert row is not None
            records.set_status(row, status, None)


def test_a_stale_probe_does_not_undo_an_operation_that_came_and_went(
    rows: Rows, live: StandinSql
) -> None:
    """A round reads the rows; a restart runs to its end meanwhile (RESTARTING, then RUNNING or
    UNAVAILABLE again); the round's probes, made before or during it, then change nothing."""
    went_down = rows.add(free_port(), "RUNNING")  # its probe fails: it was being restarted
    came_up = rows.add(live.port, "UNAVAILABLE", last_active=None)  # answered, then failed
    with rows.db.session() as session:
        targets = health.load_targets(session, rows.box)
    probes = asyncio.run(health.probe_all(targets, timeout=2))
    assert [p.alive for p in probes] == [False, True]

    _operate(rows, went_down, "RESTARTING", "RUNNING")
    _operate(rows, came_up, "RESTARTING", "UNAVAILABLE")
    restarted = {i: rows.get(i).update_time for i in (went_down, came_up)}
    assert all(t > EARLIER for t in restarted.values())
    with rows.db.transaction() as session:
        assert health.record(session, probes) == []
    down, up = rows.get(went_down), rows.get(came_up)
    assert (down.status, down.last_active_time, down.update_time) == (
        "RUNNING",
        EARLIER,
        restarted[went_down],
    )
    assert (up.status, up.last_active_time, up.update_time) == (
        "UNAVAILABLE",
        None,
        restarted[came_up],
    )

    # The next round, reading the rows afresh, judges them as usual.
    result = check(rows)
    assert {(t.server_id, t.new) for t in result.transitions} == {
        (went_down, "UNAVAILABLE"),
        (came_up, "RUNNING"),
    }


def test_a_heartbeat_in_between_does_not_stop_a_status_change(rows: Rows, live: StandinSql) -> None:
    """Another replica's heartbeat leaves update_time alone, so this round's failed probe
    still takes the row down."""
    server_id = rows.add(free_port(), "RUNNING")
    with rows.db.session() as session:
        (target,) = health.load_targets(session, rows.box)
    failed = asyncio.run(health.probe_all([target], timeout=2))
    alive = health.Probe(target, datetime.now(UTC))
    with rows.db.transaction() as session:
        assert health.record(session, [alive]) == []
    assert rows.get(server_id).update_time == EARLIER
    with rows.db.transaction() as session:
        assert [t.new for t in health.record(session, failed)] == ["UNAVAILABLE"]
