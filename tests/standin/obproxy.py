#!/usr/bin/env python3
"""Test stand-in for OBProxy. This program is NOT OBProxy.

The obfleet test suite cannot download the real OBProxy binary, so it packs this small,
stdlib-only Python program into an RPM with the real layout and deploys it as `bin/obproxy`.
It imitates what a fleet manager can observe of OBProxy, and nothing more:

Command line (as `src/obproxy/ob_proxy_main.cpp`; `-p2883` and `-p 2883` both work)
    -p/--listen_port N          SQL port (1025..65535; default 6688 as the real binary)
    -l/--prometheus_listen_port exporter port (default 2884)
    -s/--rpc_listen_port N      stored only; no RPC service is served
    -n/--appname NAME           stored as `app_name`
    -o/--optstr k=v,k='v'       any config items; values may be single- or double-quoted
    -r/--rs_list 'ip:p;ip:p'    stored as `rootservice_list`
    -c/--cluster_name NAME      stored as `rootservice_cluster_name` (the real item) and as
                                `cluster_name` (an alias some tools expect)
    -e, -d, -u, -R, -t, -P, -H  accepted and ignored
    -N/--nodaemon               stay in the foreground
    -V/--version                print the version and exit 0
    -h/--help                   print usage and exit 0

Home, files
    home is the parent of `bin/` (or $OBPROXY_STANDIN_HOME). Log: `log/obproxy.log`. Pid:
    `run/obproxy.pid`. Config: `etc/obproxy_config.json`, written on the first start from the
    flags and read back by a later start without flags; flags on a later start override it, and
    `alter proxyconfig set` writes through. The same bytes go to `etc/obproxy_config.bin`
    because OBD-style tools test for that file to tell a first start from a restart.

SQL port (MySQL protocol, mysql_native_password, only user `root@proxysys`)
    `obproxy_sys_password` holds SHA1(password) in hex, as the real `-o obproxy_sys_password`
    takes it; empty means an empty password. `alter proxyconfig set obproxy_sys_password = 'pw'`
    takes the plaintext and stores its SHA1, like the real `encrypt_passwd_to_stage1` (the same
    for `observer_sys_password`/`observer_sys_password1`). Logins from non-private addresses are
    refused unless `skip_proxy_sys_private_check` is true, as in the real binary.
    Answers: `show proxyconfig [like 'pat']`, `alter proxyconfig set k = v`,
    `show proxyinfo binary`, `select 1`, `select version()`, `select @@version_comment`,
    `show variables/warnings` (empty), SET/BEGIN/COMMIT/ROLLBACK (OK). Anything else: ERR 1064.

Exporter port
    HTTP `GET /metrics`: `odp_up`, `odp_info{version=...}`, SQL connection and query counters.

CONFIG_URL mode (`-o obproxy_config_server_url=...GetObProxyConfig`)
    At start (before the start command returns) and then every
    $OBPROXY_STANDIN_CONFIG_REFRESH_SECONDS seconds (default 5), the stand-in fetches the URL,
    then every `ObRootServiceInfoUrlList[].ObRootServiceInfoUrl` with `version=2` appended as the
    real OBProxy does (a list answer picks the PRIMARY entry). What it learnt is shown by
    `show proxyconfig` as two read-only items that are never persisted:
        config_server_version   the `Version` of the GetObProxyConfig answer
        config_server_rslist    `cluster1:ip:sql_port;ip:sql_port|cluster2:...`, clusters sorted
    `rootservice_list` stays empty, so "rootservice_list set means RS_LIST mode" holds. The raw
    answers are also dumped to `etc/obproxy_config_server_info.json` and
    `etc/obproxy_rslist_info.json`, like the real binary. Fetch failures are logged, not fatal.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getopt
import hashlib
import ipaddress
import itertools
import json
import os
import re
import secrets
import shlex
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# Baked in by standin/rpm.py when it packs the RPM; the "@" test keeps working copies runnable.
_BAKED_VERSION = "@STANDIN_VERSION@"
_BAKED_RELEASE = "@STANDIN_RELEASE@"
VERSION = _BAKED_VERSION if "@" not in _BAKED_VERSION else "0.0.0.0"
RELEASE = _BAKED_RELEASE if "@" not in _BAKED_RELEASE else "0.standin"

SYS_USER = "root@proxysys"
NATIVE_PLUGIN = "mysql_native_password"
REFRESH_ENV = "OBPROXY_STANDIN_CONFIG_REFRESH_SECONDS"
HOME_ENV = "OBPROXY_STANDIN_HOME"
FETCH_TIMEOUT = 3.0

PASSWORD_ITEMS = frozenset(
    {"obproxy_sys_password", "observer_sys_password", "observer_sys_password1"}
)
RUNTIME_ITEMS = ("config_server_version", "config_server_rslist")

# name -> (default, need_reboot, info). Defaults are the binary's (ob_proxy_config.h), except the
# passwords, which are empty here so that a fresh stand-in accepts an empty root@proxysys password.
CATALOG: dict[str, tuple[str, bool, str]] = {
    "listen_port": ("6688", True, "obproxy listen port"),
    "prometheus_listen_port": ("2884", True, "obproxy prometheus listen port"),
    "rpc_listen_port": ("2885", True, "obproxy rpc listen port (not served by the stand-in)"),
    "app_name": ("undefined", True, "current application name which proxy works for"),
    "rootservice_list": ("", True, "rootservice list, format ip:sql_port;ip:sql_port"),
    "rootservice_cluster_name": ("undefined", True, "default cluster name for rootservice_list"),
    "cluster_name": ("", True, "stand-in alias of rootservice_cluster_name (-c)"),
    "obproxy_config_server_url": ("", True, "url of config info(rs list and so on)"),
    "config_server_refresh_interval": ("60s", False, "config server info refresh task interval"),
    "obproxy_sys_password": ("", False, "password of obproxy sys user (sha1 hex)"),
    "observer_sys_password": ("", False, "password of observer proxyro user (sha1 hex)"),
    "observer_sys_password1": ("", False, "fallback password of observer proxyro user"),
    "skip_proxy_sys_private_check": ("false", False, "allow root@proxysys from public addresses"),
    "enable_metadb_used": ("true", True, "use MetaDataBase when proxy run"),
    "enable_cluster_checkout": ("true", False, "send cluster name when login"),
    "enable_prometheus": ("true", False, "enable prometheus exporter"),
    "prometheus_sync_interval": ("1m", False, "prometheus sync interval"),
    "proxy_id": ("0", False, "id of this obproxy, [0, 8191]"),
    "client_session_id_version": ("1", False, "client session id generation logic, [1, 2]"),
    "proxy_mem_limited": ("2G", False, "upper limit of ODP runtime memory"),
    "syslog_level": ("INFO", False, "log level"),
    "mysql_version": ("5.6.25", False, "mysql version announced to clients"),
    "local_bound_ip": ("0.0.0.0", True, "local bound ip (the stand-in always binds 0.0.0.0)"),
}

# Which config item each value-taking flag sets.
FLAG_ITEMS = {
    "-p": ("listen_port",),
    "--listen_port": ("listen_port",),
    "-l": ("prometheus_listen_port",),
    "--prometheus_listen_port": ("prometheus_listen_port",),
    "-s": ("rpc_listen_port",),
    "--rpc_listen_port": ("rpc_listen_port",),
    "-n": ("app_name",),
    "--appname": ("app_name",),
    "-r": ("rootservice_list",),
    "--rs_list": ("rootservice_list",),
    "-c": ("rootservice_cluster_name", "cluster_name"),
    "--cluster_name": ("rootservice_cluster_name", "cluster_name"),
}
SHORT_OPTS = "hp:l:s:u:deP:H:o:n:r:c:NVRt"
LONG_OPTS = [
    "help",
    "listen_port=",
    "prometheus_listen_port=",
    "rpc_listen_port=",
    "upgrade_ver=",
    "dump_config_sql",
    "execute_config_sql",
    "test_mysql_port=",
    "test_mysql_ip=",
    "optstr=",
    "appname=",
    "rs_list=",
    "cluster_name=",
    "nodaemon",
    "version",
    "releaseid",
    "regression_test",
]
USAGE = """\
obproxy (test stand-in, not OBProxy) {version}
usage: obproxy [-p port] [-l prometheus_port] [-n appname] [-o k=v,k=v]
               [-r 'ip:port;ip:port' -c cluster_name] [-e] [-N] [-V] [-h]
  first start:     ./bin/obproxy -p6789 -r'ip:port;ip:port' -n test -o enable_cluster_checkout=false
  with config url: ./bin/obproxy -p6789 -e -n test -o obproxy_config_server_url='your config url'
  non-first start: ./bin/obproxy
"""


class StartError(Exception):
    """The stand-in cannot start; the message goes to stderr and to the log."""


# --------------------------------------------------------------------------- command line


@dataclasses.dataclass
class Options:
    action: str = "run"  # run | version | help
    nodaemon: bool = False
    overrides: dict[str, str] = dataclasses.field(default_factory=dict)


def parse_optstr(text: str) -> dict[str, str]:
    """Parse `-o k=v,k='v,with,commas'`; commas inside quotes do not split."""
    items: dict[str, str] = {}
    for part in _split_outside_quotes(text, ","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise StartError(f"invalid -o item {part!r}, expected key=value")
        items[key.strip()] = _unquote(value.strip())
    return items


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts, current, quote = [], [], ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == sep:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] in "'\"" and value[-1] == value[0]:
        return value[1:-1]
    return value


def parse_args(argv: list[str]) -> Options:
    try:
        pairs, rest = getopt.gnu_getopt(argv, SHORT_OPTS, LONG_OPTS)
    except getopt.GetoptError as exc:
        raise StartError(f"{exc}\n{USAGE.format(version=VERSION)}") from exc
    if rest:
        raise StartError(f"unexpected arguments {rest}")
    opts = Options()
    for flag, value in pairs:
        if flag in ("-V", "--version"):
            opts.action = "version"
        elif flag in ("-h", "--help"):
            opts.action = "help"
        elif flag in ("-N", "--nodaemon"):
            opts.nodaemon = True
        elif flag in ("-o", "--optstr"):
            opts.overrides.update(parse_optstr(value))
        elif flag in FLAG_ITEMS:
            for item in FLAG_ITEMS[flag]:
                opts.overrides[item] = _unquote(value)
        # Every other flag is accepted and ignored, as the stand-in has nothing to do for it.
    return opts


def version_text() -> str:
    return (
        f"obproxy (OceanBase {VERSION} {RELEASE.split('.')[0]})\n"
        f"REVISION: {RELEASE}-standin\n"
        "BUILD_TIME: test stand-in, not OBProxy\n"
    )


# --------------------------------------------------------------------------- log and config


class Log:
    """Plain lines in log/obproxy.log; the file is reopened per line so rotation is harmless."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def write(self, level: str, message: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        line = f"[{stamp}] {level} [{os.getpid()}] {message}\n"
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(line)

    def info(self, message: str) -> None:
        self.write("INFO", message)

    def error(self, message: str) -> None:
        self.write("ERROR", message)


class ConfigStore:
    """Config items set explicitly (persisted) over the catalog defaults, plus runtime items."""

    def __init__(self, etc: Path) -> None:
        self.path = etc / "obproxy_config.json"
        self.bin_path = etc / "obproxy_config.bin"
        self._lock = threading.RLock()
        self._items: dict[str, str] = {}
        self._runtime: dict[str, str] = dict.fromkeys(RUNTIME_ITEMS, "")

    def load(self) -> bool:
        if not self.path.exists():
            return False
        data = json.loads(self.path.read_text(encoding="utf-8"))
        with self._lock:
            self._items = {str(k): str(v) for k, v in data.get("items", {}).items()}
        return True

    def save(self) -> None:
        with self._lock:
            text = json.dumps({"items": self._items}, indent=2, sort_keys=True) + "\n"
            for path in (self.path, self.bin_path):
                tmp = path.with_name(path.name + ".tmp")
                tmp.write_text(text, encoding="utf-8")
                os.replace(tmp, path)

    def update(self, values: dict[str, str]) -> None:
        with self._lock:
            self._items.update(values)

    def set(self, name: str, value: str) -> None:
        with self._lock:
            self._items[name] = value
            self.save()

    def get(self, name: str) -> str:
        with self._lock:
            if name in self._runtime:
                return self._runtime[name]
            return self._items.get(name, CATALOG.get(name, ("",))[0])

    def set_runtime(self, values: dict[str, str]) -> None:
        with self._lock:
            self._runtime.update(values)

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        """Rows of `show proxyconfig`: name, value, info, need_reboot, visible_level."""
        with self._lock:
            names = sorted(set(CATALOG) | set(self._items) | set(self._runtime))
            rows = []
            for name in names:
                _, reboot, info = CATALOG.get(name, ("", False, "set by -o or alter proxyconfig"))
                if name in self._runtime:
                    info = "learnt from the config server (stand-in, read-only)"
                rows.append((name, self.get(name), info, str(reboot).lower(), "SYS"))
            return rows


def stage1_hex(plain: str) -> str:
    """SHA1 hex of a plaintext password, as OBProxy stores `obproxy_sys_password`."""
    return hashlib.sha1(plain.encode()).hexdigest() if plain else ""


def port_item(store: ConfigStore, name: str) -> int:
    raw = store.get(name)
    if not raw.isdigit() or not 1024 < int(raw) < 65536:
        raise StartError(f"invalid {name} {raw!r}: must be >1024 and <65536")
    return int(raw)


# --------------------------------------------------------------------------- MySQL protocol

CLIENT_CONNECT_WITH_DB = 0x8
CLIENT_PROTOCOL_41 = 0x200
CLIENT_SSL = 0x800
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_PLUGIN_AUTH = 0x80000
CLIENT_PLUGIN_AUTH_LENENC = 0x200000
SERVER_CAPABILITIES = (
    0x1  # LONG_PASSWORD
    | 0x2  # FOUND_ROWS
    | 0x4  # LONG_FLAG
    | CLIENT_CONNECT_WITH_DB
    | CLIENT_PROTOCOL_41
    | 0x2000  # TRANSACTIONS
    | CLIENT_SECURE_CONNECTION
    | 0x20000  # MULTI_RESULTS
    | CLIENT_PLUGIN_AUTH
    | 0x100000  # CONNECT_ATTRS
    | CLIENT_PLUGIN_AUTH_LENENC
)
STATUS_AUTOCOMMIT = 0x2
CHARSET_UTF8 = 33
CHARSET_BINARY = 63
TYPE_LONGLONG = 0x08
TYPE_VAR_STRING = 0xFD
COM_QUIT, COM_INIT_DB, COM_QUERY, COM_FIELD_LIST, COM_PING = 0x01, 0x02, 0x03, 0x04, 0x0E


def lenenc_int(n: int) -> bytes:
    if n < 251:
        return bytes([n])
    if n < 1 << 16:
        return b"\xfc" + n.to_bytes(2, "little")
    if n < 1 << 24:
        return b"\xfd" + n.to_bytes(3, "little")
    return b"\xfe" + n.to_bytes(8, "little")


def lenenc_str(value: bytes) -> bytes:
    return lenenc_int(len(value)) + value


def read_lenenc_int(data: bytes, pos: int) -> tuple[int, int]:
    first = data[pos]
    sizes = {0xFC: 2, 0xFD: 3, 0xFE: 8}
    if first not in sizes:
        return first, pos + 1
    size = sizes[first]
    return int.from_bytes(data[pos + 1 : pos + 1 + size], "little"), pos + 1 + size


def read_nul(data: bytes, pos: int) -> tuple[bytes, int]:
    end = data.find(b"\0", pos)
    end = len(data) if end < 0 else end
    return data[pos:end], end + 1


def native_token_matches(stage1_hexstr: str, scramble: bytes, token: bytes) -> bool:
    """Check a mysql_native_password token against the stored SHA1(password).

    The client sends SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))); knowing stage1 = SHA1(pw)
    the server recomputes the mask and checks that unmasking the token gives stage1 back.
    """
    if not stage1_hexstr:
        return token == b""
    try:
        stage1 = bytes.fromhex(stage1_hexstr)
    except ValueError:
        return False
    if len(token) != 20 or len(stage1) != 20:
        return False
    mask = hashlib.sha1(scramble + hashlib.sha1(stage1).digest()).digest()
    return bytes(a ^ b for a, b in zip(token, mask, strict=True)) == stage1


@dataclasses.dataclass
class Ok:
    pass


@dataclasses.dataclass
class Err:
    code: int
    message: str
    state: str = "42000"


@dataclasses.dataclass
class ResultSet:
    columns: list[str]
    rows: list[tuple[object, ...]]


Response = Ok | Err | ResultSet


class PacketIO:
    """MySQL packet framing over one socket, tracking the sequence id."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.seq = 0

    def read(self) -> bytes | None:
        header = self._recv_exact(4)
        if header is None:
            return None
        length = int.from_bytes(header[:3], "little")
        self.seq = (header[3] + 1) % 256
        return self._recv_exact(length)

    def write(self, *payloads: bytes) -> None:
        out = bytearray()
        for payload in payloads:
            out += len(payload).to_bytes(3, "little") + bytes([self.seq]) + payload
            self.seq = (self.seq + 1) % 256
        self.sock.sendall(out)

    def _recv_exact(self, n: int) -> bytes | None:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)


def ok_packet(status: int) -> bytes:
    return b"\x00" + lenenc_int(0) + lenenc_int(0) + struct.pack("<HH", status, 0)


def err_packet(err: Err) -> bytes:
    return b"\xff" + struct.pack("<H", err.code) + b"#" + err.state.encode() + err.message.encode()


def eof_packet(status: int) -> bytes:
    return b"\xfe" + struct.pack("<HH", 0, status)


def column_packet(name: str, numeric: bool) -> bytes:
    encoded = name.encode()
    kind, charset, length = (
        (TYPE_LONGLONG, CHARSET_BINARY, 20) if numeric else (TYPE_VAR_STRING, CHARSET_UTF8, 3072)
    )
    return (
        lenenc_str(b"def")
        + lenenc_str(b"")
        + lenenc_str(b"")
        + lenenc_str(b"")
        + lenenc_str(encoded)
        + lenenc_str(encoded)
        + b"\x0c"
        + struct.pack("<HIBHB", charset, length, kind, 0, 0)
        + b"\x00\x00"
    )


def resultset_packets(rs: ResultSet, status: int) -> list[bytes]:
    # A column is sent as BIGINT when every value is an int, so clients convert it (select 1).
    numeric = [
        bool(rs.rows) and all(isinstance(row[i], int) for row in rs.rows)
        for i in range(len(rs.columns))
    ]
    packets = [lenenc_int(len(rs.columns))]
    packets += [column_packet(name, numeric[i]) for i, name in enumerate(rs.columns)]
    packets.append(eof_packet(status))
    for row in rs.rows:
        cells = [b"\xfb" if v is None else lenenc_str(str(v).encode()) for v in row]
        packets.append(b"".join(cells))
    packets.append(eof_packet(status))
    return packets


# --------------------------------------------------------------------------- admin commands


def like_to_regex(pattern: str) -> re.Pattern[str]:
    """SQL LIKE (% and _, backslash escapes) to a case-insensitive full-match regex."""
    out, escaped = [], False
    for ch in pattern:
        if escaped:
            out.append(re.escape(ch))
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def sql_literal(raw: str) -> str:
    """The value of `x`, `'x'` or `"x"` with MySQL backslash and doubled-quote escapes undone."""
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] in "'\"" and raw[-1] == raw[0]:
        quote, body = raw[0], raw[1:-1]
        body = body.replace(quote * 2, quote)
        return re.sub(r"\\(.)", r"\1", body)
    return raw


_QUOTED = r"""('(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")"""
_IGNORED_STATEMENTS = re.compile(
    r"(set|begin|commit|rollback|start\s+transaction|use)\b.*", re.I | re.S
)


class AdminCommands:
    """What `root@proxysys` can run: the real admin statements plus what clients send on connect."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.routes = [
            (r"show\s+proxyconfig(?:\s+like\s+" + _QUOTED + r")?", self.show_proxyconfig),
            (r"alter\s+proxyconfig\s+set\s+(\w+)\s*=\s*(.*)", self.alter_proxyconfig),
            (r"show\s+proxyinfo\s+binary", self.show_binary),
            (r"select\s+(\d+)", self.select_number),
            (r"select\s+version\(\s*\)", self.select_version),
            (r"select\s+@@(\w+)(?:\s+limit\s+\d+)?", self.select_variable),
            (r"show\s+(?:session\s+|global\s+)?variables(?:\s+like\s+.*)?", self.empty_variables),
            (r"show\s+warnings(?:\s+limit\s+.*)?", self.empty_warnings),
        ]
        self.routes = [(re.compile(p, re.I | re.S), fn) for p, fn in self.routes]

    def run(self, sql: str) -> Response:
        text = sql.strip().rstrip(";").strip()
        for pattern, handler in self.routes:
            match = pattern.fullmatch(text)
            if match:
                return handler(*match.groups())
        if _IGNORED_STATEMENTS.fullmatch(text):
            return Ok()
        return Err(
            1064,
            f"You have an error in your SQL syntax; the OBProxy stand-in does not "
            f"support: {text[:200]}",
        )

    def show_proxyconfig(self, pattern: str | None) -> Response:
        rows = self.proxy.config.rows()
        if pattern is not None:
            regex = like_to_regex(sql_literal(pattern))
            rows = [row for row in rows if regex.fullmatch(row[0])]
        return ResultSet(["name", "value", "info", "need_reboot", "visible_level"], rows)

    def alter_proxyconfig(self, name: str, raw_value: str) -> Response:
        name, value = name.lower(), sql_literal(raw_value)
        if name == "app_name":
            return Err(4007, "app_name can only modified when restart", "0A000")
        if name in RUNTIME_ITEMS:
            return Err(4007, f"{name} is read-only: the stand-in learns it from the config server")
        if name in PASSWORD_ITEMS:
            value = stage1_hex(value)
        self.proxy.config.set(name, value)
        self.proxy.log.info(
            f"alter proxyconfig set {name}" + ("" if name in PASSWORD_ITEMS else f" = {value}")
        )
        return Ok()

    def show_binary(self) -> Response:
        info = (
            f"ODP (OceanBase Database Proxy) {VERSION}-{RELEASE}\n"
            "version:RELEASE_7U\n"
            "MD5:\n"
            f"REVISION:{RELEASE}-standin\n"
            "BUILD_TIME:test stand-in, not OBProxy"
        )
        return ResultSet(["name", "info"], [("binary info", info)])

    def select_number(self, number: str) -> Response:
        return ResultSet([number], [(int(number),)])

    def select_version(self) -> Response:
        return ResultSet(["version()"], [(self.proxy.config.get("mysql_version"),)])

    def select_variable(self, name: str) -> Response:
        values = {
            "version": self.proxy.config.get("mysql_version"),
            "version_comment": f"OceanBase Database Proxy stand-in {VERSION}",
        }
        if name.lower() not in values:
            return Err(1193, f"Unknown system variable '{name}'", "HY000")
        return ResultSet([f"@@{name}"], [(values[name.lower()],)])

    def empty_variables(self) -> Response:
        return ResultSet(["Variable_name", "Value"], [])

    def empty_warnings(self) -> Response:
        return ResultSet(["Level", "Code", "Message"], [])


class SqlHandler(socketserver.BaseRequestHandler):
    """One MySQL client connection: handshake, login as root@proxysys, then commands."""

    server: SqlServer

    def handle(self) -> None:
        proxy = self.server.proxy
        proxy.count_connection(+1)
        try:
            io = PacketIO(self.request)
            if self.login(io, proxy):
                self.command_loop(io, proxy)
        except (OSError, IndexError, struct.error, ValueError) as exc:
            proxy.log.info(f"connection from {self.client_address[0]} ended: {exc!r}")
        finally:
            proxy.count_connection(-1)

    def login(self, io: PacketIO, proxy: Proxy) -> bool:
        scramble = bytes(secrets.randbelow(94) + 33 for _ in range(20))
        io.write(
            handshake_packet(
                proxy.next_connection_id(), scramble, proxy.config.get("mysql_version")
            )
        )
        packet = io.read()
        if packet is None:
            return False
        user, token, plugin = parse_handshake_response(packet)
        if plugin not in ("", NATIVE_PLUGIN):
            # e.g. a MySQL 8 client offering caching_sha2_password: ask it to switch.
            io.write(b"\xfe" + NATIVE_PLUGIN.encode() + b"\0" + scramble + b"\0")
            token = io.read() or b""
        error = proxy.check_login(user, token, scramble, self.client_address[0])
        if error:
            proxy.log.info(f"login refused for {user!r} from {self.client_address[0]}: {error}")
            io.write(err_packet(Err(1045, error, "28000")))
            return False
        io.write(ok_packet(STATUS_AUTOCOMMIT))
        return True

    def command_loop(self, io: PacketIO, proxy: Proxy) -> None:
        status = STATUS_AUTOCOMMIT
        admin = AdminCommands(proxy)
        while (packet := io.read()) is not None and packet and packet[0] != COM_QUIT:
            command = packet[0]
            if command == COM_QUERY:
                sql = packet[1:].decode("utf-8", "replace")
                proxy.count_query()
                status = autocommit_status(sql, status)
                send_response(io, admin.run(sql), status)
            elif command in (COM_PING, COM_INIT_DB):
                io.write(ok_packet(status))
            elif command == COM_FIELD_LIST:
                io.write(eof_packet(status))
            else:
                io.write(err_packet(Err(1047, f"Unknown command {command}", "08S01")))


def autocommit_status(sql: str, status: int) -> int:
    """Track SET AUTOCOMMIT so clients that read it back from OK packets see what they set."""
    match = re.fullmatch(r"\s*set\s+(?:@@)?autocommit\s*=\s*(\w+)\s*;?\s*", sql, re.I)
    if not match:
        return status
    on = match.group(1).lower() in ("1", "on", "true")
    return status | STATUS_AUTOCOMMIT if on else status & ~STATUS_AUTOCOMMIT


def send_response(io: PacketIO, response: Response, status: int) -> None:
    if isinstance(response, Ok):
        io.write(ok_packet(status))
    elif isinstance(response, Err):
        io.write(err_packet(response))
    else:
        io.write(*resultset_packets(response, status))


def handshake_packet(connection_id: int, scramble: bytes, server_version: str) -> bytes:
    caps = SERVER_CAPABILITIES
    return (
        b"\x0a"
        + server_version.encode()
        + b"\0"
        + struct.pack("<I", connection_id)
        + scramble[:8]
        + b"\0"
        + struct.pack("<HBHH", caps & 0xFFFF, CHARSET_UTF8, STATUS_AUTOCOMMIT, caps >> 16)
        + bytes([len(scramble) + 1])
        + b"\0" * 10
        + scramble[8:]
        + b"\0"
        + NATIVE_PLUGIN.encode()
        + b"\0"
    )


def parse_handshake_response(packet: bytes) -> tuple[str, bytes, str]:
    """(user, auth token, auth plugin) from a HandshakeResponse41."""
    caps = struct.unpack_from("<I", packet)[0]
    if caps & CLIENT_SSL and len(packet) <= 32:
        raise ValueError("client asked for TLS, which the stand-in does not offer")
    user, pos = read_nul(packet, 32)
    if caps & CLIENT_PLUGIN_AUTH_LENENC:
        size, pos = read_lenenc_int(packet, pos)
        token, pos = packet[pos : pos + size], pos + size
    elif caps & CLIENT_SECURE_CONNECTION:
        size = packet[pos]
        token, pos = packet[pos + 1 : pos + 1 + size], pos + 1 + size
    else:
        token, pos = read_nul(packet, pos)
    if caps & CLIENT_CONNECT_WITH_DB and pos < len(packet):
        _, pos = read_nul(packet, pos)
    plugin = b""
    if caps & CLIENT_PLUGIN_AUTH and pos < len(packet):
        plugin, pos = read_nul(packet, pos)
    return user.decode("utf-8", "replace"), token, plugin.decode("ascii", "replace")


class SqlServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True  # rebinding over TIME_WAIT after a restart, as real servers do
    daemon_threads = True

    def __init__(self, port: int, proxy: Proxy) -> None:
        self.proxy = proxy
        super().__init__(("0.0.0.0", port), SqlHandler)


# --------------------------------------------------------------------------- exporter


class MetricsHandler(BaseHTTPRequestHandler):
    server: MetricsServer
    server_version = "obproxy-standin"

    def do_GET(self) -> None:
        if urllib.parse.urlsplit(self.path).path != "/metrics":
            self.send_error(404, "only /metrics is served")
            return
        body = self.server.proxy.metrics_text().encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # stderr is /dev/null when daemonized; scrapes would only flood the log


class MetricsServer(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, port: int, proxy: Proxy) -> None:
        self.proxy = proxy
        super().__init__(("0.0.0.0", port), MetricsHandler)


def prom_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


# --------------------------------------------------------------------------- config server


class FetchError(Exception):
    pass


# What a well-formed envelope with unexpected contents raises while it is picked apart.
MALFORMED = (KeyError, TypeError, AttributeError, ValueError, IndexError)


# Straight to the config server: an http_proxy inherited from a test runner must not interfere.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch_data(url: str) -> object:
    """GET an ob-configserver URL and return `Data` from its envelope."""
    try:
        with _NO_PROXY.open(url, timeout=FETCH_TIMEOUT) as resp:
            envelope = json.loads(resp.read().decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise FetchError(f"GET {url}: {exc}") from exc
    if not isinstance(envelope, dict) or not envelope.get("Success") or envelope.get("Code") != 200:
        raise FetchError(f"GET {url}: unsuccessful answer {str(envelope)[:300]}")
    return envelope.get("Data")


def with_version2(url: str) -> str:
    """Append version=2 as the real OBProxy does (its configserver then may answer a list)."""
    if re.search(r"[?&]version=", url):
        return url
    return url + ("&" if "?" in url else "?") + "version=2"


def cluster_urls(data: dict) -> list[tuple[str, str]]:
    """(cluster, RS URL) from GetObProxyConfig, or from GetObRootServiceInfoUrlTemplate."""
    if data.get("ObRootServiceInfoUrlList") is not None:
        return [
            (e.get("ObRegion", ""), e["ObRootServiceInfoUrl"])
            for e in data["ObRootServiceInfoUrlList"]
        ]
    template = data.get("ObRootServiceInfoUrlTemplate", "")
    return [
        (name, template.replace("${ObRegion}", name)) for name in data.get("ObClusterList") or []
    ]


def pick_primary(data: object) -> dict:
    """A version=2 answer is a list of clusters under one name: prefer PRIMARY, then newest."""
    if isinstance(data, dict):
        return data
    if not isinstance(data, list) or not data:
        raise FetchError(f"no root service info in {str(data)[:200]}")
    return max(data, key=lambda d: (d.get("Type") == "PRIMARY", d.get("timestamp", 0)))


def rs_addresses(info: dict) -> list[str]:
    """`ip:sql_port` for each RsList entry (`address` is ip:rpc_port)."""
    out = []
    for server in info.get("RsList") or []:
        host = server["address"].rsplit(":", 1)[0]
        out.append(f"{host}:{server['sql_port']}")
    return out


class ConfigServerPoller:
    def __init__(self, proxy: Proxy, url: str) -> None:
        self.proxy = proxy
        self.url = url
        self.rslists: dict[str, list[str]] = {}

    def refresh(self) -> None:
        """One round; failures are logged and the last good answer per cluster is kept."""
        try:
            data = fetch_data(self.url)
            urls = cluster_urls(data)
        except (FetchError, *MALFORMED) as exc:
            self.proxy.log.error(f"config server: {self.url}: {exc!r}")
            return
        rslists, raw = {}, []
        for name, url in urls:
            try:
                info = pick_primary(fetch_data(with_version2(url)))
                addresses = rs_addresses(info)
            except (FetchError, *MALFORMED) as exc:
                self.proxy.log.error(f"config server: cluster {name}: {exc!r}")
                if name in self.rslists:
                    rslists[name] = self.rslists[name]
                continue
            raw.append(info)
            rslists[info.get("ObCluster") or info.get("ObRegion") or name] = addresses
        self.rslists = rslists
        rendered = "|".join(f"{name}:{';'.join(addrs)}" for name, addrs in sorted(rslists.items()))
        self.proxy.config.set_runtime(
            {
                "config_server_version": str(data.get("Version", "")),
                "config_server_rslist": rendered,
            }
        )
        self.proxy.dump_json("obproxy_config_server_info.json", data)
        self.proxy.dump_json("obproxy_rslist_info.json", raw)

    def loop(self, stop: threading.Event) -> None:
        interval = float(os.environ.get(REFRESH_ENV) or 5)
        while not stop.wait(interval):
            try:
                self.refresh()
            except Exception as exc:  # the poller must outlive any surprise in an answer
                self.proxy.log.error(f"config server: refresh failed: {exc!r}")


# --------------------------------------------------------------------------- the process


class Proxy:
    """State shared by the SQL server, the exporter and the config-server poller."""

    def __init__(self, home: Path) -> None:
        self.home = home
        for sub in ("log", "etc", "run"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        self.log = Log(home / "log" / "obproxy.log")
        self.config = ConfigStore(home / "etc")
        self.pid_file = home / "run" / "obproxy.pid"
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.connections_total = 0
        self.connections_current = 0
        self.queries_total = 0

    def next_connection_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def count_connection(self, delta: int) -> None:
        with self._lock:
            self.connections_current += delta
            self.connections_total += max(delta, 0)

    def count_query(self) -> None:
        with self._lock:
            self.queries_total += 1

    def check_login(self, user: str, token: bytes, scramble: bytes, client_ip: str) -> str | None:
        denied = f"Access denied for user '{user}'"
        if user != SYS_USER:
            return denied + f" (the OBProxy stand-in only accepts {SYS_USER})"
        private = ipaddress.ip_address(client_ip).is_private
        if not private and self.config.get("skip_proxy_sys_private_check").lower() != "true":
            return denied + " (root@proxysys from a public address)"
        if not native_token_matches(self.config.get("obproxy_sys_password"), scramble, token):
            return denied + " (using password: " + ("YES)" if token else "NO)")
        return None

    def metrics_text(self) -> str:
        labels = ",".join(
            f'{key}="{prom_label(value)}"'
            for key, value in (
                ("version", VERSION),
                ("release", RELEASE),
                ("app_name", self.config.get("app_name")),
                ("standin", "true"),
            )
        )
        with self._lock:
            counters = (self.connections_total, self.connections_current, self.queries_total)
        return (
            "# HELP odp_up Whether the OBProxy stand-in is up.\n# TYPE odp_up gauge\nodp_up 1\n"
            "# HELP odp_info Version of the OBProxy stand-in.\n# TYPE odp_info gauge\n"
            f"odp_info{{{labels}}} 1\n"
            "# HELP odp_sql_connections_total Client connections accepted on the SQL port.\n"
            f"# TYPE odp_sql_connections_total counter\nodp_sql_connections_total {counters[0]}\n"
            "# HELP odp_sql_current_connections Client connections open now.\n"
            f"# TYPE odp_sql_current_connections gauge\nodp_sql_current_connections {counters[1]}\n"
            "# HELP odp_sql_queries_total COM_QUERY packets received.\n"
            f"# TYPE odp_sql_queries_total counter\nodp_sql_queries_total {counters[2]}\n"
        )

    def dump_json(self, name: str, data: object) -> None:
        path = self.home / "etc" / name
        tmp = path.with_name(name + ".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)


def home_dir() -> Path:
    override = os.environ.get(HOME_ENV)
    if override:
        return Path(override).absolute()
    # abspath, not resolve: a home reached through a symlink stays that home.
    return Path(os.path.abspath(__file__)).parent.parent


def live_obproxy_pid(pid_file: Path) -> int | None:
    """The pid in the pid file if that process is alive (not a zombie) and is an obproxy."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    proc = Path(f"/proc/{pid}")
    try:
        stat = (proc / "stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return None
        cmdline = (proc / "cmdline").read_bytes()
    except FileNotFoundError:
        return None
    except OSError:
        return pid  # cannot look, so assume it is ours rather than start a second one
    # A recycled pid belonging to something else does not block the start.
    return pid if b"obproxy" in cmdline else None


def prepare(proxy: Proxy, overrides: dict[str, str]) -> tuple[SqlServer, MetricsServer]:
    """Checks, config and bound sockets; raises StartError with the reason to refuse."""
    running = live_obproxy_pid(proxy.pid_file)
    if running is not None:
        raise StartError(f"obproxy is already running with pid {running} ({proxy.pid_file})")
    first_start = not proxy.config.load()
    proxy.config.update(overrides)
    sql_port = port_item(proxy.config, "listen_port")
    metrics_port = port_item(proxy.config, "prometheus_listen_port")
    try:
        sql = SqlServer(sql_port, proxy)
    except OSError as exc:
        raise StartError(f"cannot listen on listen_port {sql_port}: {exc}") from exc
    try:
        metrics = MetricsServer(metrics_port, proxy)
    except OSError as exc:
        sql.server_close()
        raise StartError(f"cannot listen on prometheus_listen_port {metrics_port}: {exc}") from exc
    proxy.config.save()
    proxy.log.info(
        f"{'first' if first_start else 'non-first'} start, config in {proxy.config.path}"
    )
    return sql, metrics


def serve(proxy: Proxy, servers: tuple[SqlServer, MetricsServer], ready_fd: int | None) -> int:
    """Run until SIGTERM/SIGINT; report readiness on ready_fd once everything listens."""
    proxy.pid_file.write_text(f"{os.getpid()}\n")
    try:
        run_until_stopped(proxy, servers, ready_fd)
    finally:
        # Only our own pid file: a second instance must never delete the first one's.
        with contextlib.suppress(OSError):
            if proxy.pid_file.read_text().strip() == str(os.getpid()):
                proxy.pid_file.unlink()
    proxy.log.info("obproxy stand-in exits cleanly")
    return 0


def run_until_stopped(
    proxy: Proxy, servers: tuple[SqlServer, MetricsServer], ready_fd: int | None
) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: proxy.stop.set())
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    url = proxy.config.get("obproxy_config_server_url")
    if url:
        poller = ConfigServerPoller(proxy, url)
        poller.refresh()  # before "ready", so a started proxy already knows its clusters
        threads.append(threading.Thread(target=poller.loop, args=(proxy.stop,), daemon=True))
    for thread in threads:
        thread.start()
    proxy.log.info(
        f"obproxy stand-in {VERSION}-{RELEASE} ready: listen_port={servers[0].server_address[1]} "
        f"prometheus_listen_port={servers[1].server_address[1]} pid={os.getpid()}"
    )
    if ready_fd is not None:
        report(ready_fd, "ok")
    while not proxy.stop.wait(0.5):
        pass
    for server in servers:
        server.shutdown()
        server.server_close()


def report(fd: int, message: str) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, message.encode())
        os.close(fd)


def daemonize(proxy: Proxy, servers: tuple[SqlServer, MetricsServer]) -> int:
    """Double fork like daemon(3); the caller's exit status says whether the daemon came up."""
    read_fd, write_fd = os.pipe()
    child = os.fork()
    if child:
        os.close(write_fd)
        chunks = []
        while chunk := os.read(read_fd, 4096):
            chunks.append(chunk)
        os.waitpid(child, 0)
        answer = b"".join(chunks).decode("utf-8", "replace")
        if answer == "ok":
            return 0
        sys.stderr.write(f"obproxy: {answer or 'the daemon died before it was ready'}\n")
        return 1
    os.close(read_fd)
    os.setsid()
    if os.fork():
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    try:
        code = serve(proxy, servers, write_fd)
    except BaseException as exc:  # the parent must hear about any failure, whatever it is
        proxy.log.error(f"daemon failed: {exc!r}")
        report(write_fd, f"daemon failed: {exc!r}")
        code = 1
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        opts = parse_args(argv)
    except StartError as exc:
        sys.stderr.write(f"obproxy: {exc}\n")
        return 1
    if opts.action == "version":
        sys.stdout.write(version_text())
        return 0
    if opts.action == "help":
        sys.stdout.write(USAGE.format(version=VERSION))
        return 0
    proxy = Proxy(home_dir())
    proxy.log.info(f"start: {shlex.join([sys.argv[0], *argv])} (cwd {os.getcwd()})")
    try:
        servers = prepare(proxy, opts.overrides)
    except StartError as exc:
        proxy.log.error(f"refusing to start: {exc}")
        sys.stderr.write(f"obproxy: refusing to start: {exc}\n")
        return 1
    if opts.nodaemon:
        return serve(proxy, servers, None)
    return daemonize(proxy, servers)


if __name__ == "__main__":
    sys.exit(main())
