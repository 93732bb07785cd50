"""Tests of the OBProxy test stand-in and of the RPM it is packed into.

Everything runs on 127.0.0.1 in tmp_path; every process a test starts is stopped by its fixture.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pymysql
import pytest

from tests.server import free_port
from tests.standin import obproxy
from tests.standin.rpm import build_standin_rpm

# Every request goes to 127.0.0.1 directly, whatever http_proxy the runner has.
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
VERSION = "4.2.3.0"
RELEASE = "3.el7"
HOME_IN_RPM = f"home/admin/obproxy-{VERSION}"
EXPECTED_FILES = [
    f"/{HOME_IN_RPM}",
    f"/{HOME_IN_RPM}/bin",
    f"/{HOME_IN_RPM}/bin/obproxy",
    f"/{HOME_IN_RPM}/bin/obproxyd.sh",
    f"/{HOME_IN_RPM}/lib",
    f"/{HOME_IN_RPM}/lib/libstandin.so.txt",
]


def sha1hex(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def rpm_query(rpm: Path, *args: str) -> str:
    return subprocess.run(
        ["rpm", "-qp", *args, str(rpm)], capture_output=True, text=True, check=True
    ).stdout


# --------------------------------------------------------------------------- RPM payload


def extract_payload(rpm: Path, dest: Path, *, use_cpio: bool | None = None) -> None:
    """`rpm2cpio | cpio -idm` into dest; without cpio, read the newc archive in Python."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["rpm2cpio", str(rpm)], capture_output=True, check=True).stdout
    if use_cpio is None:
        use_cpio = shutil.which("cpio") is not None
    if use_cpio:
        subprocess.run(["cpio", "-idm", "--quiet"], input=archive, cwd=dest, check=True)
    else:
        extract_newc(archive, dest)


def extract_newc(archive: bytes, dest: Path) -> None:
    """Minimal reader of the SVR4 "newc" cpio format that rpm2cpio writes."""
    pos = 0
    while True:
        header = archive[pos : pos + 110]
        assert header[:6] in (b"070701", b"070702"), f"not a newc header at {pos}"
        fields = [int(header[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        mode, size, name_size = fields[1], fields[6], fields[11]
        name_start = pos + 110
        name = archive[name_start : name_start + name_size - 1].decode()
        data_start = (name_start + name_size + 3) & ~3
        pos = (data_start + size + 3) & ~3
        if name == "TRAILER!!!":
            return
        target = dest / name.lstrip("./")
        if mode & 0o170000 == 0o040000:
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive[data_start : data_start + size])
        target.chmod(mode & 0o7777)


@pytest.fixture(scope="session")
def standin_rpm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("rpmbuild") is None:
        pytest.skip("rpmbuild is not installed (apt-get install rpm)")
    return build_standin_rpm(tmp_path_factory.mktemp("rpms"))


# --------------------------------------------------------------------------- a deployed stand-in


class Deployed:
    """One extracted stand-in home; remembers every pid it started so teardown can kill it."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.pid_file = home / "run" / "obproxy.pid"
        self.log = home / "log" / "obproxy.log"
        self.pids: set[int] = set()
        self.popens: list[subprocess.Popen[str]] = []

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.home / "bin" / "obproxy"), *args],
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **(env or {})},
        )
        if proc.returncode == 0 and self.pid_file.exists():
            self.pids.add(self.pid())
        return proc

    def start(self, *args: str, env: dict[str, str] | None = None) -> int:
        proc = self.run(*args, env=env)
        assert proc.returncode == 0, proc.stderr
        return self.pid()

    def pid(self) -> int:
        return int(self.pid_file.read_text().strip())

    def stop(self) -> None:
        pid = self.pid()
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not alive(pid), what=f"pid {pid} to exit")
        assert not self.pid_file.exists()

    def cleanup(self) -> None:
        for popen in self.popens:
            with contextlib.suppress(ProcessLookupError):
                popen.kill()
            popen.wait(timeout=10)
        for pid in self.pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
                wait_for(lambda pid=pid: not alive(pid), what=f"pid {pid} to die")


@pytest.fixture
def deployed(standin_rpm: Path, tmp_path: Path) -> Iterator[Deployed]:
    extract_payload(standin_rpm, tmp_path / "root")
    d = Deployed(tmp_path / "root" / HOME_IN_RPM)
    try:
        yield d
    finally:
        d.cleanup()


def alive(pid: int) -> bool:
    """True while pid runs; a zombie (nobody reaps double-forked daemons here) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(predicate, *, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def connect(port: int, password: str = "secret") -> pymysql.Connection:
    return pymysql.connect(
        host="127.0.0.1", port=port, user="root@proxysys", password=password, connect_timeout=5
    )


def query(port: int, sql: str, password: str = "secret") -> list[tuple]:
    with connect(port, password) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return list(cur.fetchall())


def config_value(port: int, name: str, password: str = "secret") -> str:
    rows = query(port, f"show proxyconfig like '{name}'", password)
    assert [row[0] for row in rows] == [name]
    return rows[0][1]


def first_start(d: Deployed, sql_port: int, metrics_port: int, *extra: str) -> int:
    return d.start(
        "-p",
        str(sql_port),
        "-l",
        str(metrics_port),
        "-n",
        "myapp",
        "-o",
        f"obproxy_sys_password={sha1hex('secret')},enable_metadb_used=false",
        "-r",
        "127.0.0.1:2881",
        "-c",
        "ob1",
        *extra,
    )


# --------------------------------------------------------------------------- the RPM


def test_rpm_headers_layout_and_modes(standin_rpm: Path) -> None:
    assert standin_rpm.name == f"obproxy-ce-{VERSION}-{RELEASE}.x86_64.rpm"
    headers = rpm_query(standin_rpm, "--queryformat", "%{NAME}|%{VERSION}|%{RELEASE}|%{ARCH}")
    assert headers == f"obproxy-ce|{VERSION}|{RELEASE}|x86_64"
    assert "not OBProxy" in rpm_query(standin_rpm, "--queryformat", "%{SUMMARY}")
    assert rpm_query(standin_rpm, "-l").split() == EXPECTED_FILES
    modes = dict(
        line.split()
        for line in rpm_query(standin_rpm, "--queryformat", "[%{FILENAMES} %{FILEMODES:perms}\n]")
        .strip()
        .splitlines()
    )
    assert modes[f"/{HOME_IN_RPM}/bin/obproxy"] == "-rwxr-xr-x"
    assert modes[f"/{HOME_IN_RPM}/bin/obproxyd.sh"] == "-rwxr-xr-x"
    assert modes[f"/{HOME_IN_RPM}/lib/libstandin.so.txt"] == "-rw-r--r--"


def test_rpm_fields_come_from_arguments_and_builds_are_reused(
    standin_rpm: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = {"name": "obproxy", "version": "4.3.1.0", "release": "4.el8", "arch": "aarch64"}
    rpm = build_standin_rpm(out, **args)
    assert rpm == out / "obproxy-4.3.1.0-4.el8.aarch64.rpm"
    headers = rpm_query(rpm, "--queryformat", "%{NAME}|%{VERSION}|%{RELEASE}|%{ARCH}")
    assert headers == "obproxy|4.3.1.0|4.el8|aarch64"
    assert "/home/admin/obproxy-4.3.1.0/bin/obproxy" in rpm_query(rpm, "-l").split()

    mtime = rpm.stat().st_mtime_ns
    assert build_standin_rpm(out, **args) == rpm
    assert rpm.stat().st_mtime_ns == mtime, "the second identical build should reuse the file"

    extract_payload(rpm, tmp_path / "root")
    version = subprocess.run(
        [str(tmp_path / "root/home/admin/obproxy-4.3.1.0/bin/obproxy"), "-V"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "4.3.1.0" in version.stdout

    with pytest.raises(ValueError):
        build_standin_rpm(out, version="4.3-1")


def test_python_payload_reader_matches_cpio(standin_rpm: Path, tmp_path: Path) -> None:
    extract_payload(standin_rpm, tmp_path / "py", use_cpio=False)
    home = tmp_path / "py" / HOME_IN_RPM
    assert os.access(home / "bin" / "obproxy", os.X_OK)
    assert (home / "lib" / "libstandin.so.txt").read_text().strip()
    if shutil.which("cpio") is None:
        return  # nothing to compare against; the Python reader is what the other tests use
    extract_payload(standin_rpm, tmp_path / "cpio", use_cpio=True)
    for rel in ("bin/obproxy", "bin/obproxyd.sh", "lib/libstandin.so.txt"):
        ours, theirs = home / rel, tmp_path / "cpio" / HOME_IN_RPM / rel
        assert ours.read_bytes() == theirs.read_bytes()
        assert ours.stat().st_mode == theirs.stat().st_mode


def test_obproxyd_script_is_valid_shell(deployed: Deployed) -> None:
    subprocess.run(["bash", "-n", str(deployed.home / "bin" / "obproxyd.sh")], check=True)


# --------------------------------------------------------------------------- command line


def test_version_flag_prints_baked_version(deployed: Deployed) -> None:
    for flag in ("-V", "--version"):
        proc = deployed.run(flag)
        assert proc.returncode == 0
        assert f"obproxy (OceanBase {VERSION} 3)" in proc.stdout
    assert not deployed.pid_file.exists()


def test_parse_args_accepts_both_forms() -> None:
    joined = obproxy.parse_args(["-p2883", "-l2884", "-nfoo", "-r127.0.0.1:2881;127.0.0.2:2881"])
    spaced = obproxy.parse_args(["-p", "2883", "--prometheus_listen_port", "2884", "--appname=foo"])
    assert joined.overrides["listen_port"] == spaced.overrides["listen_port"] == "2883"
    assert joined.overrides["prometheus_listen_port"] == "2884"
    assert joined.overrides["app_name"] == spaced.overrides["app_name"] == "foo"
    assert joined.overrides["rootservice_list"] == "127.0.0.1:2881;127.0.0.2:2881"
    opts = obproxy.parse_args(["-N", "-e", "-c", "'ob1'", "--rs_list", "'1.1.1.1:2881'"])
    assert opts.nodaemon
    assert opts.overrides["rootservice_cluster_name"] == opts.overrides["cluster_name"] == "ob1"
    assert opts.overrides["rootservice_list"] == "1.1.1.1:2881"
    assert obproxy.parse_args(["-V"]).action == "version"
    with pytest.raises(obproxy.StartError):
        obproxy.parse_args(["--no-such-flag"])


def test_optstr_quotes_and_commas() -> None:
    parsed = obproxy.parse_optstr(
        "obproxy_sys_password='abc',enable_cluster_checkout=False,"
        "obproxy_config_server_url='http://h:8080/services?Action=GetObProxyConfig&a=1,2'"
    )
    assert parsed == {
        "obproxy_sys_password": "abc",
        "enable_cluster_checkout": "False",
        "obproxy_config_server_url": "http://h:8080/services?Action=GetObProxyConfig&a=1,2",
    }
    with pytest.raises(obproxy.StartError):
        obproxy.parse_optstr("novalue")


def test_native_password_check_and_like() -> None:
    scramble = os.urandom(20)
    token = pymysql._auth.scramble_native_password(b"secret", scramble)
    assert obproxy.native_token_matches(sha1hex("secret"), scramble, token)
    assert not obproxy.native_token_matches(sha1hex("other"), scramble, token)
    assert obproxy.native_token_matches("", scramble, b"")
    assert not obproxy.native_token_matches("", scramble, token)
    assert obproxy.like_to_regex("%port").fullmatch("listen_port")
    assert obproxy.like_to_regex("APP_NAME").fullmatch("app_name")
    assert not obproxy.like_to_regex("app\\_name").fullmatch("appXname")
    assert obproxy.sql_literal("'it''s \\'x\\''") == "it's 'x'"


# --------------------------------------------------------------------------- running it


def test_first_start_login_and_admin_sql(deployed: Deployed) -> None:
    sql_port, metrics_port = free_port(), free_port()
    pid = first_start(deployed, sql_port, metrics_port)
    assert alive(pid)
    log = deployed.log.read_text()
    assert f"-p {sql_port} -l {metrics_port} -n myapp -o" in log
    assert "-r 127.0.0.1:2881 -c ob1" in log  # the full argv

    # The start command returned, so the SQL port must already answer; no polling here.
    with connect(sql_port) as conn, conn.cursor() as cur:
        cur.execute("show proxyconfig like 'app_name'")
        assert [d[0] for d in cur.description] == [
            "name",
            "value",
            "info",
            "need_reboot",
            "visible_level",
        ]
        assert cur.fetchall()[0][:2] == ("app_name", "myapp")
        cur.execute("SHOW   PROXYCONFIG   LIKE '%port' ;")
        ports = {row[0]: row[1] for row in cur.fetchall()}
        assert ports["listen_port"] == str(sql_port)
        assert ports["prometheus_listen_port"] == str(metrics_port)
        cur.execute("show proxyconfig")
        everything = {row[0]: row[1] for row in cur.fetchall()}
        assert everything["rootservice_list"] == "127.0.0.1:2881"
        assert everything["cluster_name"] == everything["rootservice_cluster_name"] == "ob1"
        assert everything["enable_metadb_used"] == "false"
        assert everything["obproxy_sys_password"] == sha1hex("secret")

        assert cur.execute("alter proxyconfig set standin_probe = 'yyy'") == 0
        cur.execute("show proxyconfig like 'standin_probe'")
        assert cur.fetchall()[0][:2] == ("standin_probe", "yyy")
        cur.execute("alter proxyconfig set client_session_id_version=2")
        cur.execute("show proxyconfig like 'client_session_id_version'")
        assert cur.fetchone()[1] == "2"

        cur.execute("show proxyinfo binary")
        assert [d[0] for d in cur.description] == ["name", "info"]
        name, info = cur.fetchone()
        assert name == "binary info"
        assert f"ODP (OceanBase Database Proxy) {VERSION}-{RELEASE}" in info

        cur.execute("select 1")
        assert cur.fetchall() == ((1,),)
        cur.execute("select version()")
        assert cur.fetchone()[0] == "5.6.25"
        cur.execute("show variables like 'x%'")
        assert cur.fetchall() == ()
        conn.ping()
        conn.commit()
        conn.select_db("oceanbase")

        with pytest.raises(pymysql.err.ProgrammingError) as syntax:
            cur.execute("select * from information_schema.tables")
        assert syntax.value.args[0] == 1064
        with pytest.raises(pymysql.MySQLError) as refused:
            cur.execute("alter proxyconfig set app_name = 'other'")
        assert "only modified when restart" in str(refused.value)

    persisted = json.loads((deployed.home / "etc" / "obproxy_config.json").read_text())["items"]
    assert persisted["standin_probe"] == "yyy"
    assert persisted["client_session_id_version"] == "2"
    assert (deployed.home / "etc" / "obproxy_config.bin").exists()


def test_wrong_password_and_user_are_refused(deployed: Deployed) -> None:
    sql_port = free_port()
    first_start(deployed, sql_port, free_port())
    for user, password in (("root@proxysys", "wrong"), ("root@proxysys", ""), ("root", "secret")):
        with pytest.raises(pymysql.err.OperationalError) as denied:
            pymysql.connect(host="127.0.0.1", port=sql_port, user=user, password=password)
        assert denied.value.args[0] == 1045
        assert f"Access denied for user '{user}'" in denied.value.args[1]


def test_alter_sys_password_applies_to_new_logins(deployed: Deployed) -> None:
    sql_port = free_port()
    first_start(deployed, sql_port, free_port())
    query(sql_port, "alter proxyconfig set obproxy_sys_password = 'n3w pass'")
    query(sql_port, "alter proxyconfig set observer_sys_password = 'proxyro-pw'", "n3w pass")
    assert config_value(sql_port, "obproxy_sys_password", "n3w pass") == sha1hex("n3w pass")
    assert config_value(sql_port, "observer_sys_password", "n3w pass") == sha1hex("proxyro-pw")
    with pytest.raises(pymysql.err.OperationalError) as denied:
        connect(sql_port, "secret")
    assert denied.value.args[0] == 1045


def test_metrics_endpoint(deployed: Deployed) -> None:
    sql_port, metrics_port = free_port(), free_port()
    first_start(deployed, sql_port, metrics_port)
    query(sql_port, "select 1")
    with NO_PROXY.open(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        body = resp.read().decode()
    lines = body.splitlines()
    assert "odp_up 1" in lines
    assert any(line.startswith("odp_info{") and f'version="{VERSION}"' in line for line in lines)
    connections = next(line for line in lines if line.startswith("odp_sql_connections_total "))
    assert int(connections.split()[1]) >= 1
    with pytest.raises(urllib.error.HTTPError) as missing:
        NO_PROXY.open(f"http://127.0.0.1:{metrics_port}/nothing", timeout=5)
    assert missing.value.code == 404


def test_sigterm_restart_without_flags_and_second_start(deployed: Deployed) -> None:
    sql_port, metrics_port = free_port(), free_port()
    first_pid = first_start(deployed, sql_port, metrics_port)
    query(sql_port, "alter proxyconfig set standin_probe = kept")

    second = deployed.run("-p", str(free_port()), "-l", str(free_port()))
    assert second.returncode != 0
    assert "already running" in second.stderr
    assert "already running" in deployed.log.read_text()
    assert deployed.pid() == first_pid

    deployed.stop()

    # The real "non-first start": no flags at all, everything from etc/.
    restarted = deployed.start()
    assert restarted != first_pid
    assert config_value(sql_port, "app_name") == "myapp"
    assert config_value(sql_port, "rootservice_list") == "127.0.0.1:2881"
    assert config_value(sql_port, "standin_probe") == "kept"
    with NO_PROXY.open(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as resp:
        assert resp.status == 200
    deployed.stop()

    # Flags on a later start override what was persisted, and are persisted in turn.
    deployed.start("-o", "proxy_id=7", "-n", "renamed")
    assert config_value(sql_port, "proxy_id") == "7"
    assert config_value(sql_port, "app_name") == "renamed"
    deployed.stop()
    assert "non-first start" in deployed.log.read_text()


def test_taken_ports_make_start_fail(deployed: Deployed) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        for args, item in (
            (["-p", str(busy), "-l", str(free_port())], "listen_port"),
            (["-p", str(free_port()), "-l", str(busy)], "prometheus_listen_port"),
        ):
            proc = deployed.run(*args)
            assert proc.returncode != 0
            assert f"cannot listen on {item} {busy}" in proc.stderr
            assert not deployed.pid_file.exists()
        assert "refusing to start" in deployed.log.read_text()
    bad = deployed.run("-p", "80")
    assert bad.returncode != 0
    assert "invalid listen_port" in bad.stderr


def test_nodaemon_stays_in_foreground(deployed: Deployed) -> None:
    sql_port = free_port()
    popen = subprocess.Popen(
        [str(deployed.home / "bin" / "obproxy"), "-N", "-p", str(sql_port), "-l", str(free_port())],
        cwd=deployed.home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deployed.popens.append(popen)
    wait_for(lambda: deployed.pid_file.exists(), what="the pid file")
    assert deployed.pid() == popen.pid
    wait_for(lambda: _answers(sql_port), what="the SQL port")
    popen.send_signal(signal.SIGTERM)
    assert popen.wait(timeout=15) == 0
    assert not deployed.pid_file.exists()


def _answers(port: int) -> bool:
    try:
        return query(port, "select 1", "") == [(1,)]
    except pymysql.err.OperationalError:
        return False


@pytest.mark.skipif(shutil.which("mysql") is None, reason="no mysql command-line client")
def test_mysql_command_line_client(deployed: Deployed) -> None:
    sql_port = free_port()
    first_start(deployed, sql_port, free_port())
    proc = subprocess.run(
        [
            "mysql",
            "-h127.0.0.1",
            f"-P{sql_port}",
            "-uroot@proxysys",
            "-psecret",
            "-A",
            "-N",
            "-e",
            "show proxyconfig like 'app_name'",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\t")[:2] == ["app_name", "myapp"]


# --------------------------------------------------------------------------- CONFIG_URL mode


class FakeConfigServer:
    """The two ob-configserver answers the stand-in needs, served on 127.0.0.1."""

    def __init__(self) -> None:
        self.rs_lists = {
            "cluster1": [("127.0.0.1", 2881), ("127.0.0.2", 2881)],
            "cluster2": [("127.0.0.3", 3881)],
        }
        self.requests: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.requests.append(self.path)
                status, body = fake.answer(self.path)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)

    @staticmethod
    def envelope(data: object, code: int = 200) -> dict:
        return {
            "Code": code,
            "Message": "successful" if code == 200 else "error",
            "Success": code == 200,
            "Data": data,
            "Trace": "t",
            "Server": "127.0.0.1",
            "Cost": 1,
        }

    def answer(self, path: str) -> tuple[int, dict]:
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query))
        action = params.get("Action")
        if action == "GetObProxyConfig":
            return 200, self.envelope(self.proxy_config())
        if action == "ObRootServiceInfo" and params.get("ObCluster") in self.rs_lists:
            info = self.rs_info(params["ObCluster"])
            # Like ob-configserver: version=2 without ObClusterId answers a list.
            return 200, self.envelope([info] if params.get("version") == "2" else info)
        return 404, self.envelope(None, 404)

    def proxy_config(self) -> dict:
        names = sorted(self.rs_lists)
        rs_url = f"{self.base}/services?Action=ObRootServiceInfo"
        return {
            "ObProxyBinUrl": f"{self.base}/client?Action=GetObProxy",
            "ObProxyDatabaseInfo": {
                "DataBase": "***",
                "MetaDataBase": "",
                "Password": "***",
                "User": "***",
            },
            "ObRootServiceInfoUrlList": [
                {
                    "ObRegion": name,
                    "ObRootServiceInfoUrl": f"{rs_url}&ObCluster={name}",
                }
                for name in names
            ],
            "Version": hashlib.md5(",".join(names).encode()).hexdigest(),
        }

    def rs_info(self, name: str) -> dict:
        cluster_id = sorted(self.rs_lists).index(name) + 1
        return {
            "ObCluster": name,
            "ObRegion": name,
            "ObClusterId": cluster_id,
            "ObRegionId": cluster_id,
            "Type": "PRIMARY",
            "timestamp": 1652419587417171,
            "ReadonlyRsList": [],
            "RsList": [
                {
                    "address": f"{ip}:{port + 1}",
                    "role": "LEADER" if i == 0 else "FOLLOWER",
                    "sql_port": port,
                }
                for i, (ip, port) in enumerate(self.rs_lists[name])
            ],
        }


@pytest.fixture
def config_server() -> Iterator[FakeConfigServer]:
    server = FakeConfigServer()
    try:
        yield server
    finally:
        server.close()


def test_config_url_mode_exposes_fetched_root_servers(
    deployed: Deployed, config_server: FakeConfigServer
) -> None:
    sql_port = free_port()
    url = f"{config_server.base}/services?Action=GetObProxyConfig"
    deployed.start(
        "-p",
        str(sql_port),
        "-l",
        str(free_port()),
        "-e",
        "-n",
        "cfgapp",
        "-o",
        f"obproxy_config_server_url='{url}',obproxy_sys_password={sha1hex('secret')}",
        env={obproxy.REFRESH_ENV: "0.2"},
    )

    # Fetched before the start command returned.
    rslist = config_value(sql_port, "config_server_rslist")
    assert rslist == "cluster1:127.0.0.1:2881;127.0.0.2:2881|cluster2:127.0.0.3:3881"
    rows = dict(row[:2] for row in query(sql_port, "show proxyconfig like 'config_server%'"))
    assert rows["config_server_version"] == config_server.proxy_config()["Version"]
    assert config_value(sql_port, "rootservice_list") == ""
    assert config_value(sql_port, "obproxy_config_server_url") == url
    assert any("version=2" in p and "ObCluster=cluster2" in p for p in config_server.requests)
    dumped = json.loads((deployed.home / "etc" / "obproxy_rslist_info.json").read_text())
    assert {info["ObCluster"] for info in dumped} == {"cluster1", "cluster2"}

    # Polled again: a changed RS list and a new cluster show up.
    config_server.rs_lists["cluster2"] = [("127.0.0.4", 3881)]
    config_server.rs_lists["cluster3"] = [("127.0.0.5", 2881)]
    expected = (
        "cluster1:127.0.0.1:2881;127.0.0.2:2881|cluster2:127.0.0.4:3881|cluster3:127.0.0.5:2881"
    )
    wait_for(lambda: config_value(sql_port, "config_server_rslist") == expected, what="a refresh")

    with pytest.raises(pymysql.MySQLError):
        query(sql_port, "alter proxyconfig set config_server_rslist = 'x'")

    # A config server that goes away is logged, not fatal; the last answer is kept.
    config_server.close()
    wait_for(lambda: "config server:" in deployed.log.read_text(), what="a logged fetch error")
    assert config_value(sql_port, "config_server_rslist") == expected
    deployed.stop()


def test_unreachable_config_server_does_not_stop_start(deployed: Deployed) -> None:
    sql_port = free_port()
    dead = f"http://127.0.0.1:{free_port()}/services?Action=GetObProxyConfig"
    deployed.start(
        "-p", str(sql_port), "-l", str(free_port()), "-o", f"obproxy_config_server_url={dead}"
    )
    assert config_value(sql_port, "config_server_rslist", "") == ""
    assert "config server:" in deployed.log.read_text()
