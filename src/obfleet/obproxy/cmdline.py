"""OBProxy's start command line, built from what obfleet knows. Pure: no I/O, no database.

The flags are the real binary's (`src/obproxy/ob_proxy_main.cpp`; reference
obproxy-deployment-facts.md §1.6 and its appendix)::

    cd <home> && LD_LIBRARY_PATH=<home>/lib ./bin/obproxy -p <sqlPort> -l <exporterPort>
        -n <app name> -o <k=v,...>[,obproxy_config_server_url=<url>],obproxy_sys_password=<sha1 hex>
        [-r '<ip:sql_port;...>' -c <ob cluster>]

Two layers of parsing see this string, and both must be safe: the host's shell (every argument
goes through `shell.command`, so no value can run a command) and OBProxy's own `-o` parser, which
splits on commas and newlines and knows nothing of shell quoting. So every value that goes into
`-o` must pass `catalog.command_line_safe`; the builder refuses anything else with ValueError
rather than rely on the callers having validated it.

Passwords: OBProxy takes `obproxy_sys_password` on its command line as SHA1 hex (OBD and the
docker image do the same), never as typed. The hex is password-equivalent for the MySQL native
login, so callers treat it as a secret in their logs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from obfleet.hosts.shell import command, quote, safe_path
from obfleet.obproxy.catalog import command_line_safe
from obfleet.obproxy.layout import ROOT, check_run_user

__all__ = [
    "DEFAULTS",
    "ConfigUrl",
    "RsList",
    "StartSpec",
    "argv",
    "optstr",
    "sha1_hex",
    "start_command",
    "version_command",
]

BINARY = "./bin/obproxy"
MIN_PORT, MAX_PORT = 1025, 65535  # the binary refuses ports <= 1024

# Set on the command line unless the operator set them. obfleet checks and configures every
# OBProxy as root@proxysys from wherever obfleet runs, which OBProxy refuses from non-private
# addresses without skip_proxy_sys_private_check; and obfleet's config server hands out only a
# placeholder metadb (configserver/proxyconfig.py), which OBProxy must not try to use.
DEFAULTS: tuple[tuple[str, str], ...] = (
    ("enable_metadb_used", "false"),
    ("skip_proxy_sys_private_check", "true"),
)

_PARAMETER_NAME = re.compile(r"[a-z][a-z0-9_]*")
_RS_ENTRY = re.compile(r"[A-Za-z0-9.:\[\]-]+:[0-9]{1,5}")  # ip:port, host:port, [v6]:port
# -o items the builder writes itself; a caller's list must not carry them too.
_OWN_ITEMS = frozenset({"obproxy_sys_password", "obproxy_config_server_url"})


@dataclass(frozen=True)
class RsList:
    """RS_LIST mode: the OceanBase cluster's root servers (`ip:sql_port`) and its name."""

    cluster_name: str
    servers: tuple[str, ...]


@dataclass(frozen=True)
class ConfigUrl:
    """CONFIG_URL mode: where OBProxy reads its clusters (the OBProxy cluster's configUrl)."""

    url: str


@dataclass(frozen=True)
class StartSpec:
    """Everything that decides how one OBProxy is started the first time."""

    home: str  # the install path, holding bin/ and lib/
    sql_port: int
    exporter_port: int
    app_name: str  # the OBProxy cluster's name
    proxysys_password: str = field(repr=False)  # root@proxysys, as typed
    upstream: RsList | ConfigUrl
    startup_parameters: Sequence[tuple[str, str]] = ()
    # Runtime parameters the operator set (applied later with ALTER PROXYCONFIG): a default
    # they override stays off the command line.
    runtime_names: frozenset[str] = frozenset()
    run_user: str = ROOT  # who the process runs as (obproxy/layout.py)


def sha1_hex(password: str) -> str:
    """The form OBProxy wants passwords in on its command line (and stores them in)."""
    return hashlib.sha1(password.encode()).hexdigest()


def _check_port(value: int, what: str) -> None:
    if not MIN_PORT <= value <= MAX_PORT:
        raise ValueError(f"{what} {value} is outside {MIN_PORT}-{MAX_PORT}")


def _check_item(name: str, value: str) -> None:
    if not _PARAMETER_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not an OBProxy parameter name")
    if not command_line_safe(value):
        raise ValueError(f"the value of {name} cannot go into OBProxy's -o option")


def _items(spec: StartSpec) -> list[tuple[str, str]]:
    given = {name for name, _ in spec.startup_parameters}
    if given & _OWN_ITEMS:
        raise ValueError(f"{sorted(given & _OWN_ITEMS)} are set by obfleet, not as parameters")
    defaults = [
        (name, value)
        for name, value in DEFAULTS
        if name not in given and name not in spec.runtime_names
    ]
    items = [*spec.startup_parameters, *defaults]
    if isinstance(spec.upstream, ConfigUrl):
        items.append(("obproxy_config_server_url", spec.upstream.url))
    # Last, so that masking it in a log line (up to the next blank) hides nothing else.
    items.append(("obproxy_sys_password", sha1_hex(spec.proxysys_password)))
    for name, value in items:
        _check_item(name, value)
    return items


def optstr(spec: StartSpec) -> str:
    """The `-o` value: the startup parameters, obfleet's defaults, in CONFIG_URL mode the
    config server URL, and the root@proxysys password (SHA1 hex)."""
    return ",".join(f"{name}={value}" for name, value in _items(spec))


def _upstream_args(upstream: RsList | ConfigUrl) -> list[str]:
    if isinstance(upstream, ConfigUrl):
        return []  # the URL travels in -o
    if not upstream.servers:
        raise ValueError("RS_LIST mode needs at least one root server")
    for entry in upstream.servers:
        if not _RS_ENTRY.fullmatch(entry):
            raise ValueError(f"root server {entry!r} is not ip:sql_port")
    if not upstream.cluster_name or not command_line_safe(upstream.cluster_name):
        raise ValueError(f"cluster name {upstream.cluster_name!r} cannot go on the command line")
    return ["-r", ";".join(upstream.servers), "-c", upstream.cluster_name]


def argv(spec: StartSpec) -> list[str]:
    """The arguments of the first start, from the install path: `./bin/obproxy -p ... `."""
    _check_port(spec.sql_port, "sqlPort")
    _check_port(spec.exporter_port, "exporterPort")
    if spec.sql_port == spec.exporter_port:
        raise ValueError("sqlPort and exporterPort must differ")
    if not spec.app_name or not command_line_safe(spec.app_name):
        raise ValueError(f"app name {spec.app_name!r} cannot go on the command line")
    return [
        BINARY,
        "-p",
        str(spec.sql_port),
        "-l",
        str(spec.exporter_port),
        "-n",
        spec.app_name,
        "-o",
        optstr(spec),
        *_upstream_args(spec.upstream),
    ]


def _in_home(home: str, args: Sequence[str]) -> str:
    """`cd home && LD_LIBRARY_PATH=home/lib args...`: OBProxy ships its own libraries in lib/
    (OBD starts it the same way), and it keeps etc/, log/ and run/ under its working directory."""
    path = safe_path(home)
    return f"{command('cd', path)} && LD_LIBRARY_PATH={quote(path + '/lib')} {command(*args)}"


def start_command(spec: StartSpec) -> str:
    """The shell command that starts OBProxy the first time (it daemonizes and returns), from
    obfleet's root session: as another run-as user through `runuser`, whose shell then changes
    into the install path (the user may not read root's working directory)."""
    started = _in_home(spec.home, argv(spec))
    if spec.run_user == ROOT:
        return started
    user = check_run_user(spec.run_user)
    return command("runuser", "-u", user, "--", "/bin/sh", "-c", started)


def version_command(home: str) -> str:
    """`obproxy -V` from the install path: proves the binary runs on the host."""
    return _in_home(home, [BINARY, "-V"])


# --- reading an OBProxy's command line and banner (taking over one obfleet did not start) -----

_BANNER = re.compile(r"obproxy \((?:[A-Za-z][\w ]*? )?(\d+(?:\.\d+)+)(?:[ -]([\w.]+))?\)")


def parse_banner(text: str) -> tuple[str, str | None] | None:
    """(version, build) from `obproxy -V`: `obproxy (OceanBase 4.2.3.0 3)`."""
    for line in text.splitlines():
        match = _BANNER.match(line.strip())
        if match:
            return match.group(1), match.group(2)
    return None


_VALUE_FLAGS = {
    "-p": "listen_port",
    "--listen_port": "listen_port",
    "-l": "prometheus_listen_port",
    "--prometheus_listen_port": "prometheus_listen_port",
    "-n": "app_name",
    "--appname": "app_name",
    "-r": "rootservice_list",
    "--rs_list": "rootservice_list",
    "-c": "rootservice_cluster_name",
    "--cluster_name": "rootservice_cluster_name",
    "-o": "",
    "--optstr": "",
    "-s": "rpc_listen_port",
    "--rpc_listen_port": "rpc_listen_port",
    "-u": "upgrade_ver",
    "--upgrade_ver": "upgrade_ver",
    "-P": "test_mysql_port",
    "-H": "test_mysql_ip",
}


def _split_items(text: str) -> list[str]:
    """`-o`'s k=v list: commas inside quotes do not split."""
    parts, current, quote = [], "", ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == ",":
            parts.append(current)
            current = ""
            continue
        current += ch
    return [*parts, current]


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] in "'\"" and value[-1] == value[0]:
        return value[1:-1]
    return value


def parse_command_line(args: Sequence[str]) -> dict[str, str]:
    """The config items OBProxy's own flags set (`-p 2883`, `-p2883`, `--listen_port=2883`,
    `-o k=v,...`), from the arguments after the program."""
    items: dict[str, str] = {}
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        flag, value = arg, None
        if arg.startswith("--") and "=" in arg:
            flag, _, value = arg.partition("=")
        elif len(arg) > 2 and arg[:2] in _VALUE_FLAGS and not arg.startswith("--"):
            flag, value = arg[:2], arg[2:]
        if flag not in _VALUE_FLAGS:
            continue
        if value is None:
            if not rest:
                break
            value = rest.pop(0)
        name = _VALUE_FLAGS[flag]
        if name:
            items[name] = _unquote(value)
            continue
        for item in _split_items(value):
            key, sep, raw = item.partition("=")
            if sep and key.strip():
                items[key.strip()] = _unquote(raw)
    return items
