"""The steps of "Take over obproxy": adopt one OBProxy already running on a host. Nothing is
installed, stopped or restarted; the process that served before serves after.

    Check obproxy to take over                  find it, prove it is OBProxy of this cluster
    Prepare take over obproxy                   the obproxy_server row, TAKINGOVER
    Set obproxy root password                   root@proxysys gets the cluster's password
    Set obproxy user and password for connect   observer_sys_password = the proxyro password
    Sync obproxy parameter                      the cluster's runtime parameters
    Update obproxy status                       RUNNING/NORMAL

What "Check" reads, and the problems it refuses (each message says what to do; the user
guide's take-over FAQ, guide/appendix/2000, lists the same kinds):

* the process listening on the SQL port (/proc/net/tcp, /proc/<pid>/fd): nothing there, a
  process obfleet's SSH user cannot see, or several processes;
* its install path: its working directory, which must be the home of the bin/obproxy it runs
  (OBProxy keeps etc/, log/ and run/ under its working directory, and obfleet tells an OBProxy by
  it); a process without a bin/obproxy is not OBProxy; a deleted binary means it was replaced
  after the start; another user's process cannot be stopped by obfleet later (FAQ Q5);
* its version: `bin/obproxy -V` from that path (the banner, as OBD and obshell read it);
* root@proxysys logs in with the cluster's password, or else with the password of the OBPROXY
  credential given for this host (extension), or else with an empty one (OBProxy's default);
* its config (`show proxyconfig`): the app name is the OBProxy cluster's name (obfleet starts
  every OBProxy of a cluster with it); it reaches OceanBase at all (FAQ Q1); its work mode is the
  cluster's (Q6); in RS_LIST mode its cluster is the linked one and its rootservice_list shares a
  root server with it (Q8, Q9); in CONFIG_URL mode, a config URL of obfleet's own config server
  names this OBProxy cluster; the exporter port is a port.

"Check" changes nothing and is read from scratch on every run, so after a fix on the host a
retry of the task looks again. Once the OBProxy is recorded, the steps after it bring it in line
with its cluster, at run time (ALTER PROXYCONFIG): root@proxysys gets the cluster's password, so
health checks, restarts and upgrades work as for any obproxy of the cluster; then the proxyro
password and the runtime parameters.

The row is this task's own by the id Prepare keeps in the task context (`obproxy_server_id`,
written in the transaction that inserts the row: see install_obproxy). A row on the host and SQL
port that is not this task's own, or no longer TAKINGOVER, is never adopted: another task is
taking the OBProxy over, or it already runs as that obproxy, and this task fails instead.

Rollback: Update takes the row back as TAKINGOVER (refused when another operation holds it
now); Sync sets the cluster's runtime parameters back to the values Check found (Check keeps
them, so a Sync that failed half-way is undone too); the proxyro password is left (OBProxy
shows only its hash, which cannot be set back); the root password goes back to the one that
logged in; Prepare deletes the row it created. The process runs on throughout.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from obfleet.engine.context import SubtaskContext
from obfleet.engine.definition import Subtask
from obfleet.flows import install_obproxy
from obfleet.flows import obproxy_host as host
from obfleet.flows.install_obproxy import (
    EXPORTER_PORT,
    HOST_ID,
    INSTALL_PATH,
    PACKAGE_ID,
    PACKAGE_NAME,
    PACKAGE_VERSION,
    SERVER_ID,
    SQL_PORT,
    held_elsewhere,
)
from obfleet.flows.obproxy_cluster import CLUSTER_ID
from obfleet.flows.obproxy_host import HostStepError
from obfleet.hosts.shell import safe_path
from obfleet.hosts.ssh import SshConnection
from obfleet.obproxy import cmdline
from obfleet.obproxy.admin import AdminError, ProxysysClient
from obfleet.records import credentials, host_access, ob_clusters, packages
from obfleet.records import obproxy as records
from obfleet.records.ob_clusters import root_servers
from obfleet.records.obproxy import Placement, clash, own_row
from obfleet.store.models.obproxy import ObproxyOrigin, ObproxyServer, ObproxyStatus
from obfleet.store.models.packages import SoftwarePackage

# Task context (stringMap unless noted), besides install_obproxy's host, port and package keys.
PROXYSYS_CREDENTIAL_ID = "proxysys_credential_id"  # request (extension): its current password
OBPROXY_PID = "obproxy_pid"
PROXYSYS_SOURCE = "proxysys_password_source"  # cluster | credential | empty: what logged in
PREVIOUS_PARAMETERS = "previous_parameters"  # listMap: name=value as Check found, for rollback
TAKINGOVER = ObproxyStatus.TAKINGOVER

CLUSTER, CREDENTIAL, EMPTY = "cluster", "credential", "empty"
_BANNER = re.compile(r"obproxy \((?:[A-Za-z][\w ]*? )?(\d+(?:\.\d+)+)(?:[ -]([\w.]+))?\)")


# --- what the host says: pure parsing ---------------------------------------------------------


@dataclass(frozen=True)
class ProcessFacts:
    """A process as /proc shows it (`exe`/`cwd` empty when obfleet may not look)."""

    pid: int
    exe: str
    cwd: str
    user: str
    me: str  # the SSH user obfleet runs as
    argv: tuple[str, ...]

    @property
    def args_text(self) -> str:
        return " ".join(self.argv)[:300]


def facts_script(pid: int) -> str:
    p = f"/proc/{int(pid)}"
    return (
        f"printf 'exe=%s\\n' \"$(readlink {p}/exe 2>/dev/null)\"; "
        f"printf 'cwd=%s\\n' \"$(readlink {p}/cwd 2>/dev/null)\"; "
        f"printf 'user=%s\\n' \"$(stat -c %U {p} 2>/dev/null)\"; "
        "printf 'me=%s\\n' \"$(id -un)\"; echo argv; "
        f"tr '\\000' '\\n' < {p}/cmdline 2>/dev/null; true"
    )


def parse_facts(pid: int, text: str) -> ProcessFacts:
    head, _, args = text.partition("argv\n")
    values = dict(line.partition("=")[::2] for line in head.splitlines())
    return ProcessFacts(
        pid=pid,
        exe=values.get("exe", ""),
        cwd=values.get("cwd", ""),
        user=values.get("user", ""),
        me=values.get("me", ""),
        argv=tuple(args.splitlines()),
    )


def program_of(facts: ProcessFacts) -> str | None:
    """The bin/obproxy the process runs: its executable, or (a script under an interpreter)
    the first argument naming one, relative to its working directory."""
    exe = facts.exe.removesuffix(" (deleted)")
    if exe.endswith("/bin/obproxy"):
        return exe
    for arg in facts.argv[:3]:
        if arg == "bin/obproxy" or arg.endswith("/bin/obproxy"):
            return posixpath.normpath(posixpath.join(facts.cwd, arg))
    return None


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


# --- does it belong to this cluster: pure -------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """What an OBProxy of this cluster looks like."""

    cluster_name: str
    work_mode: str
    sql_port: int
    ob_clusters: Mapping[str, Sequence[str]]  # linked OceanBase cluster -> ip:sql_port each
    services_url: str | None = None  # obfleet's own config server (advertise URL + /services)


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    exporter_port: int | None = None


def judge(config: Mapping[str, str], expected: Expected) -> Verdict:
    """Problems that keep this OBProxy out of the cluster (each says what to do), and notes."""
    verdict = Verdict()
    name = expected.cluster_name
    app = config.get("app_name", "")
    if app != name:
        verdict.problems.append(
            f"its app name is {app or '(none)'!r}, but obfleet starts every OBProxy of OBProxy "
            f"cluster {name} with the app name {name!r}: take it over with an OBProxy cluster "
            f"named {app!r} (create an empty one with the same work mode and connectable "
            "OceanBase clusters)"
        )
    url = config.get("obproxy_config_server_url", "")
    rs_list = config.get("rootservice_list", "")
    mode = "CONFIG_URL" if url else "RS_LIST" if rs_list else None
    if mode is None:
        verdict.problems.append(
            "it has neither obproxy_config_server_url nor rootservice_list, so it can reach no "
            "OceanBase cluster: configure the cluster it serves on it first, then retry"
        )
    elif mode != expected.work_mode:
        verdict.problems.append(
            f"it works in {mode} mode, but OBProxy cluster {name} works in {expected.work_mode} "
            f"mode: take it over with an OBProxy cluster in {mode} mode (create an empty one "
            "with the same connectable OceanBase clusters)"
        )
    elif mode == "RS_LIST":
        _judge_rs_list(config, expected, rs_list, verdict)
    else:
        _judge_config_url(expected, url, verdict)
    exporter = config.get("prometheus_listen_port", "")
    if exporter.isdigit() and 1024 < int(exporter) < 65536 and int(exporter) != expected.sql_port:
        verdict.exporter_port = int(exporter)
    else:
        verdict.problems.append(f"its prometheus_listen_port {exporter!r} is not a usable port")
    return verdict


def _judge_rs_list(
    config: Mapping[str, str], expected: Expected, rs_list: str, verdict: Verdict
) -> None:
    ob_name = config.get("rootservice_cluster_name", "") or config.get("cluster_name", "")
    linked = ", ".join(expected.ob_clusters) or "none"
    servers = expected.ob_clusters.get(ob_name)
    if servers is None:
        verdict.problems.append(
            f"it connects to OceanBase cluster {ob_name or '(unnamed)'!r}, but OBProxy cluster "
            f"{expected.cluster_name} connects to {linked}: in RS_LIST mode they must be the "
            "same; take it over with an OBProxy cluster linked to that OceanBase cluster"
        )
        return
    given = {s.strip() for s in rs_list.split(";") if s.strip()}
    if not given & set(servers):
        verdict.problems.append(
            f"its rootservice_list {rs_list} shares no root server with OceanBase cluster "
            f"{ob_name} as obfleet records it ({';'.join(servers)}): correct the record of "
            f"{ob_name} (or the OBProxy's rootservice_list), then retry"
        )
    elif given != set(servers):
        verdict.notes.append(
            f"its rootservice_list {rs_list} differs from the root servers obfleet records for "
            f"{ob_name} ({';'.join(servers)}); obfleet's list is used at its next start"
        )


def _judge_config_url(expected: Expected, url: str, verdict: Verdict) -> None:
    own = expected.services_url
    if own and url.startswith(own):
        names = parse_qs(urlsplit(url).query).get("ObproxyClusterName", [])
        if names and names[0] != expected.cluster_name:
            verdict.problems.append(
                f"it reads the clusters of OBProxy cluster {names[0]} from obfleet ({url}): "
                f"take it over with that OBProxy cluster"
            )
        return
    verdict.notes.append(
        f"it reads its OceanBase clusters from {url}, not from obfleet; obfleet's config URL "
        "is used from its next start (restart or upgrade)"
    )


# --- the task context and the metadb ------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    cluster_id: int
    host_id: int
    ip: str
    sql_port: int


async def _target(ctx: SubtaskContext) -> Target:
    host_id = int(ctx.require(HOST_ID))
    ip = await host.read(ctx, lambda s: host_access.get_host(s, host_id).inner_ip_address)
    return Target(int(ctx.require(CLUSTER_ID)), host_id, ip, int(ctx.require(SQL_PORT)))


async def _placement(ctx: SubtaskContext) -> Placement:
    """Once Check has run: the OBProxy's host, ports and install path."""
    target = await _target(ctx)
    return Placement(
        target.cluster_id,
        target.host_id,
        target.ip,
        target.sql_port,
        int(ctx.require(EXPORTER_PORT)),
        safe_path(ctx.require(INSTALL_PATH)),
    )


def _own_row(session: Session, placement: Placement) -> ObproxyServer | None:
    row = records.recorded_at(session, placement)
    if row is not None and row.cluster_id != placement.cluster_id:
        raise HostStepError(
            f"{placement.ip}:{placement.sql_port} is recorded as obproxy {row.id} of another "
            f"OBProxy cluster (id {row.cluster_id})"
        )
    return row


def _matching_package(session: Session, version: str, build: str | None) -> SoftwarePackage | None:
    """An uploaded OBProxy package of that version and build, if there is one."""
    found = session.scalars(
        select(SoftwarePackage).where(
            SoftwarePackage.type == packages.OBPROXY, SoftwarePackage.version == version
        )
    ).all()
    for package in found:
        if build is None or package.build_number.split(".")[0] == build.split(".")[0]:
            return package
    return None


def _expected(session: Session, ctx: SubtaskContext, target: Target) -> Expected:
    cluster = records.get(session, target.cluster_id)
    advertise = host.app(ctx).settings.advertise_url
    return Expected(
        cluster_name=cluster.name,
        work_mode=cluster.work_mode,
        sql_port=target.sql_port,
        ob_clusters={
            ob.name: [f"{s.ip}:{s.sql_port}" for s in root_servers(ob)]
            for ob in ob_clusters.linked(session, cluster)
        },
        services_url=f"{advertise.rstrip('/')}/services" if advertise else None,
    )


def _passwords(session: Session, ctx: SubtaskContext, target: Target) -> list[tuple[str, str]]:
    """The passwords to try for root@proxysys, in order: the cluster's, the given credential's,
    an empty one."""
    box = host.app(ctx).secrets
    cluster = records.get(session, target.cluster_id)
    found: list[tuple[str, str]] = []
    if cluster.proxysys_credential_id is not None:
        found.append(
            (CLUSTER, credentials.reveal(session, box, cluster.proxysys_credential_id).secret)
        )
    given = ctx.get(PROXYSYS_CREDENTIAL_ID)
    if given:
        credentials.get(session, int(given), "OBPROXY")
        found.append((CREDENTIAL, credentials.reveal(session, box, int(given)).secret))
    found.append((EMPTY, ""))
    return found


def _password_of(session: Session, ctx: SubtaskContext, target: Target, source: str) -> str:
    for name, password in _passwords(session, ctx, target):
        if name == source:
            return password
    raise HostStepError(f"the {source} root@proxysys password is no longer available")


# --- finding the process ------------------------------------------------------------------------


async def _find(conn: SshConnection, ctx: SubtaskContext, target: Target) -> ProcessFacts:
    where = f"{target.ip}:{target.sql_port}"
    owners = await host.port_owners(conn, ctx, [target.sql_port])
    if target.sql_port not in owners:
        raise HostStepError(
            f"nothing listens on {where}: there is no OBProxy to take over there. Give the SQL "
            "port the OBProxy listens on (its listen_port, -p) and make sure it runs, then "
            "retry (or roll this task back and take it over again with the right sqlPort)"
        )
    holders = owners[target.sql_port]
    if not holders:
        raise HostStepError(
            f"port {where} is held by a process obfleet cannot see: it belongs to another user "
            "than the one obfleet connects to the host as. Connect obfleet to the host as root "
            "or as the OBProxy's user, then retry"
        )
    if len(holders) > 1:
        pids = host.pids_text(o.pid for o in holders)
        raise HostStepError(
            f"{len(holders)} processes hold {where} (pid {pids}); obfleet takes over a single "
            "obproxy process: leave only one (an OBProxy hot upgrade ends with one), then retry"
        )
    pid = holders[0].pid
    result = await conn.run(facts_script(pid), timeout=host.COMMAND_TIMEOUT_S)
    facts = parse_facts(pid, result.stdout)
    ctx.log(
        f"pid {pid} listens on {where}: user {facts.user or '?'}, working directory "
        f"{facts.cwd or '?'}, executable {facts.exe or '?'}"
    )
    return facts


def _home_of(facts: ProcessFacts, where: str) -> str:
    """The install path of the OBProxy process, or why it has none obfleet can use."""
    if not facts.cwd or not facts.exe:
        raise HostStepError(
            f"obfleet, connected as {facts.me}, cannot look into pid {facts.pid} on {where} "
            f"(it runs as {facts.user or 'another user'}): connect obfleet to the host as root "
            f"or as {facts.user or 'that user'}, then retry"
        )
    if facts.me != "root" and facts.user != facts.me:
        raise HostStepError(
            f"pid {facts.pid} on {where} runs as {facts.user}, but obfleet connects as "
            f"{facts.me} and could not stop or restart it later: restart the OBProxy as "
            f"{facts.me} (from its install path), or connect obfleet as root or {facts.user}, "
            "then retry"
        )
    program = program_of(facts)
    if program is None:
        raise HostStepError(
            f"pid {facts.pid} listening on {where} is not OBProxy: it runs {facts.args_text!r}, "
            "not a bin/obproxy. Give the SQL port of the OBProxy to take over (its "
            "listen_port), then retry"
        )
    if facts.exe.endswith(" (deleted)"):
        raise HostStepError(
            f"the binary of pid {facts.pid} on {where} ({program}) was deleted or replaced "
            "after it started (upgraded in place?): restart the OBProxy, then retry"
        )
    home = posixpath.dirname(posixpath.dirname(program))
    if home != facts.cwd:
        raise HostStepError(
            f"pid {facts.pid} on {where} runs {program} from the working directory "
            f"{facts.cwd}; OBProxy keeps etc/, log/ and run/ under its working directory and "
            f"obfleet tells an OBProxy by it: restart it from its install path "
            f"(cd {home} && ./bin/obproxy), then retry"
        )
    try:
        return safe_path(home)
    except ValueError as exc:
        raise HostStepError(f"the install path {home!r} on {where} cannot be used: {exc}") from None


async def _version(
    conn: SshConnection, ctx: SubtaskContext, facts: ProcessFacts, home: str, where: str
) -> tuple[str, str | None]:
    result = await conn.run(
        cmdline.version_command(home), check=False, timeout=host.COMMAND_TIMEOUT_S, log=ctx.log
    )
    banner = parse_banner(result.stdout + "\n" + result.stderr)
    if banner is None:
        raise HostStepError(
            f"{home}/bin/obproxy -V does not print OBProxy's version banner (exit "
            f"{result.exit_status}): pid {facts.pid} on {where} is not OBProxy"
        )
    return banner


async def _log_in(
    ctx: SubtaskContext, target: Target, passwords: list[tuple[str, str]], where: str
) -> tuple[str, dict[str, str]]:
    """The first password root@proxysys accepts, and `show proxyconfig`."""
    refusals: list[tuple[str, AdminError]] = []
    for source, password in passwords:
        ctx.secret(password)
        client = ProxysysClient(target.ip, target.sql_port, password)
        try:
            return source, await client.show_proxyconfig()
        except AdminError as exc:
            refusals.append((source, exc))
            ctx.log(f"root@proxysys refused the {source} password ({exc})")
    tried = {
        CLUSTER: "this OBProxy cluster's",
        CREDENTIAL: "the given credential's",
        EMPTY: "an empty one",
    }
    raise HostStepError(
        f"root@proxysys on {where} accepts none of the passwords obfleet knows "
        f"({', '.join(tried[source] for source, _ in refusals)}; last answer {refusals[-1][1]}). "
        "Tell obfleet its current password by creating an OBPROXY credential with it "
        "(POST /api/v2/credentials) and taking the OBProxy over with hosts[].proxysysCredentialId "
        "set to it; or clear it on the OBProxy (as root@proxysys, alter proxyconfig set "
        "obproxy_sys_password to the empty string ''); obfleet then gives it the cluster's own "
        "password. Then retry. (OBProxy also refuses root@proxysys from non-private addresses "
        "unless skip_proxy_sys_private_check is true.)"
    )


# --- the steps ----------------------------------------------------------------------------------


class CheckObproxyToTakeOver(Subtask):
    """Finds the OBProxy on the SQL port and proves it can join this cluster; records what it
    found in the task context. Reads only, from scratch on every run."""

    name = "Check obproxy to take over"
    timeout = 300

    async def execute(self, ctx: SubtaskContext) -> None:
        target = await _target(ctx)
        where = f"{target.ip}:{target.sql_port}"
        conn = await host_access.connect(host.app(ctx), target.host_id)
        facts = await _find(conn, ctx, target)
        home = _home_of(facts, where)
        version, build = await _version(conn, ctx, facts, home, where)
        shown = f"{version}-{build}" if build else version
        from_flags = parse_command_line(facts.argv[1:])
        others = [p for p in await host.pids_in(conn, home) if p != facts.pid]
        ctx.log(
            f"OBProxy {shown} runs from {home} (pid {facts.pid})"
            + (f"; also running from there: pid {host.pids_text(others)}" if others else "")
        )

        passwords = await host.read(ctx, lambda s: _passwords(s, ctx, target))
        source, config = await _log_in(ctx, target, passwords, where)
        ctx.log(f"root@proxysys logged in with the {source} password")
        expected = await host.read(ctx, lambda s: _expected(s, ctx, target))
        verdict = judge(config, expected)
        flag_port = from_flags.get("prometheus_listen_port")
        if flag_port and verdict.exporter_port and flag_port != str(verdict.exporter_port):
            verdict.notes.append(
                f"its command line says -l {flag_port}, its config {verdict.exporter_port}"
            )
        if verdict.exporter_port is not None:
            ports = (target.sql_port, verdict.exporter_port)
            reason = await host.read(ctx, lambda s: clash(s, target.host_id, ports, home))
            if reason:
                verdict.problems.append(f"{reason}: it cannot be recorded beside it")
        for note in verdict.notes:
            ctx.log(f"NOTE: {note}")
        for problem in verdict.problems:
            ctx.log(f"CHECK FAILED: {problem}")
        if verdict.problems:
            raise HostStepError(f"the OBProxy on {where}: " + "; ".join(verdict.problems))

        package = await host.read(ctx, lambda s: _matching_package(s, version, build))
        names = await host.read(
            ctx, lambda s: [p["name"] for p in records.get(s, target.cluster_id).parameters]
        )
        # The values Sync may change, as found: kept now, since a Sync that fails half-way
        # keeps nothing of its own; Sync's rollback sets them back.
        ctx.set_list(PREVIOUS_PARAMETERS, [f"{n}={config[n]}" for n in names if n in config])
        ctx.set(OBPROXY_PID, str(facts.pid))
        ctx.set(INSTALL_PATH, home)
        ctx.set(PACKAGE_VERSION, shown)
        ctx.set(EXPORTER_PORT, str(verdict.exporter_port))
        ctx.set(PROXYSYS_SOURCE, source)
        if package is not None:
            ctx.set(PACKAGE_ID, str(package.id))
            ctx.set(PACKAGE_NAME, package.name)
        ctx.log(
            f"OBProxy {shown} on {where} (exporter port {verdict.exporter_port}, app name "
            f"{config.get('app_name')}) can join OBProxy cluster {expected.cluster_name}"
            + (f"; its package is {package.file_name}" if package else "")
        )


def _record_taking_over(
    session: Session, placement: Placement, version: str, package_id: int | None, task_id: int
) -> int:
    own = records.own_server_id(session, task_id, SERVER_ID)
    row = _own_row(session, placement)
    if row is not None:
        if row.id != own or row.status != TAKINGOVER:
            raise held_elsewhere(row, "taking it over")
        return row.id
    if package_id and session.get(SoftwarePackage, package_id) is None:
        package_id = None  # the package was deleted since Check: record the obproxy without it
    return records.record_new(
        session,
        placement,
        TAKINGOVER,
        task_id,
        SERVER_ID,
        origin=ObproxyOrigin.TAKE_OVER,
        package_id=package_id,
        version=version,
    )


class PrepareTakeOverObproxy(Subtask):
    """Records the obproxy (TAKINGOVER): from now on the cluster shows it."""

    name = "Prepare take over obproxy"
    timeout = 300

    async def execute(self, ctx: SubtaskContext) -> None:
        where = await _placement(ctx)
        version = ctx.require(PACKAGE_VERSION)
        package = ctx.get(PACKAGE_ID)
        package_id = int(package) if package else None
        server_id = await host.write(
            ctx, lambda s: _record_taking_over(s, where, version, package_id, ctx.task_id)
        )
        ctx.set(SERVER_ID, str(server_id))
        ctx.log(
            f"obproxy {server_id} recorded as TAKINGOVER: {where.ip}:{where.sql_port}, exporter "
            f"port {where.exporter_port}, install path {where.home}, version {version}"
        )

    async def rollback(self, ctx: SubtaskContext) -> None:
        where = await _placement(ctx)
        server_id = await host.write(
            ctx, lambda s: records.delete_own_row(s, ctx.get(SERVER_ID), (TAKINGOVER,))
        )
        ctx.log(
            f"obproxy {server_id} on {where.ip}:{where.sql_port} forgotten (the process runs on)"
            if server_id
            else f"this task recorded no obproxy on {where.ip}:{where.sql_port}"
        )


async def _works(ctx: SubtaskContext, placement: Placement, password: str) -> bool:
    try:
        await ProxysysClient(placement.ip, placement.sql_port, ctx.secret(password)).ping()
    except AdminError:
        return False
    return True


async def _switch_password(
    ctx: SubtaskContext, placement: Placement, current: str, wanted: str
) -> None:
    """`alter proxyconfig set obproxy_sys_password` (OBProxy hashes the plaintext itself), then
    a login with the new one."""
    client = ProxysysClient(placement.ip, placement.sql_port, ctx.secret(current))
    await client.alter_proxyconfig("obproxy_sys_password", ctx.secret(wanted))
    if not await _works(ctx, placement, wanted):
        raise HostStepError(
            f"root@proxysys on {placement.ip}:{placement.sql_port} refuses the new password"
        )


class SetObproxyRootPassword(Subtask):
    """root@proxysys gets the cluster's password, the one obfleet uses for every obproxy of the
    cluster (health checks, restarts, upgrades)."""

    name = "Set obproxy root password"
    timeout = 60

    async def execute(self, ctx: SubtaskContext) -> None:
        where = await _placement(ctx)
        target = await _target(ctx)
        source = ctx.require(PROXYSYS_SOURCE)
        wanted = await host.read(ctx, lambda s: _password_of(s, ctx, target, CLUSTER))
        if source == CLUSTER or await _works(ctx, where, wanted):
            ctx.log("root@proxysys already has the OBProxy cluster's password")
            return
        current = await host.read(ctx, lambda s: _password_of(s, ctx, target, source))
        await _switch_password(ctx, where, current, wanted)
        ctx.log(
            f"root@proxysys on {where.ip}:{where.sql_port}: the {source} password replaced by "
            "the OBProxy cluster's"
        )

    async def rollback(self, ctx: SubtaskContext) -> None:
        where = await _placement(ctx)
        target = await _target(ctx)
        source = ctx.get(PROXYSYS_SOURCE)
        if source in (None, CLUSTER):
            return
        old = await host.read(ctx, lambda s: _password_of(s, ctx, target, source))
        if await _works(ctx, where, old):
            ctx.log(f"root@proxysys already has its {source} password")
            return
        cluster = await host.read(ctx, lambda s: _password_of(s, ctx, target, CLUSTER))
        await _switch_password(ctx, where, cluster, old)
        ctx.log(f"root@proxysys on {where.ip}:{where.sql_port} has its {source} password again")


def _as_found(ctx: SubtaskContext) -> dict[str, str]:
    """The runtime parameters as Check found them: name -> value."""
    return dict(item.partition("=")[::2] for item in ctx.get_list(PREVIOUS_PARAMETERS))


class SyncTakenOverParameters(Subtask):
    """The cluster's runtime parameters, where `show proxyconfig` differs. Only parameters whose
    value Check kept are changed, so that a rollback can set each one back, even after a run
    that failed half-way (whose own context writes are dropped)."""

    name = "Sync obproxy parameter"
    timeout = 60

    async def execute(self, ctx: SubtaskContext) -> None:
        where = await _placement(ctx)
        client = await host.admin_client(ctx, where)
        wanted = await host.read(
            ctx,
            lambda s: [
                (p["name"], p["value"]) for p in records.get(s, where.cluster_id).parameters
            ],
        )
        current = await client.show_proxyconfig() if wanted else {}
        found = _as_found(ctx)
        unknown = [
            name
            for name, value in wanted
            if name in current and current[name] != value and name not in found
        ]
        if unknown:
            raise HostStepError(
                f"the cluster's runtime parameters {', '.join(unknown)} were not read when the "
                "OBProxy was checked (the cluster's parameters changed since), so a rollback "
                "could not set them back: roll this task back and take the OBProxy over again"
            )
        await host.set_parameters(ctx, where, wanted)

    async def rollback(self, ctx: SubtaskContext) -> None:
        where = await _placement(ctx)
        found = _as_found(ctx)
        if not found:
            return
        client = await host.admin_client(ctx, where)
        current = await client.show_proxyconfig()
        for name, value in found.items():
            if current.get(name) == value:
                continue
            await client.alter_proxyconfig(name, value)
            ctx.log(f"alter proxyconfig set {name} = {value} (as it was)")


def _back_to_taking_over(session: Session, server_id: str | None, task_id: int) -> int | None:
    row = own_row(session, server_id)
    if row is None:
        return None
    records.take_back(row, TAKINGOVER, task_id)
    return row.id


def _record_running(session: Session, placement: Placement, server_id: str | None) -> int:
    row = own_row(session, server_id)
    if row is not None and row.status not in (TAKINGOVER, ObproxyStatus.RUNNING):
        raise HostStepError(
            f"obproxy {row.id} on {row.ip}:{row.sql_port} is {row.status}: another operation "
            "holds it now"
        )
    return records.record_running(session, row, placement)


class UpdateTakenOverStatus(Subtask):
    """The OBProxy still serves on its SQL port: RUNNING/NORMAL."""

    name = "Update obproxy status"
    timeout = 300

    async def execute(self, ctx: SubtaskContext) -> None:
        where = await _placement(ctx)
        conn = await host.connect(ctx, where)
        owners = await host.port_owners(conn, ctx, [where.sql_port])
        pids = [o.pid for o in owners.get(where.sql_port, [])]
        found = ctx.require(OBPROXY_PID)
        if where.sql_port not in owners:
            raise HostStepError(
                f"nothing listens on {where.ip}:{where.sql_port} any more: the OBProxy stopped "
                "during the take-over; start it, then retry"
            )
        if found not in map(str, pids):
            ctx.log(f"NOTE: pid {host.pids_text(pids)} holds the port now, not pid {found}")
        own = ctx.get(SERVER_ID)
        server_id = await host.write(ctx, lambda s: _record_running(s, where, own))
        ctx.log(
            f"obproxy {server_id} ({ctx.require(PACKAGE_VERSION)}) on {where.ip}:{where.sql_port} "
            "is taken over: RUNNING"
        )

    async def rollback(self, ctx: SubtaskContext) -> None:
        own = ctx.get(SERVER_ID)
        server_id = await host.write(ctx, lambda s: _back_to_taking_over(s, own, ctx.task_id))
        if server_id:
            ctx.log(f"obproxy {server_id} is TAKINGOVER again")


TAKE_OVER_CHAIN: tuple[type[Subtask], ...] = (
    CheckObproxyToTakeOver,
    PrepareTakeOverObproxy,
    SetObproxyRootPassword,
    install_obproxy.SetProxyroPassword,
    SyncTakenOverParameters,
    UpdateTakenOverStatus,
)
