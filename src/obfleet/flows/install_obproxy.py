"""The per-host steps of "Install obproxy": one OBProxy on one host, from nothing to RUNNING.

The chain (`HOST_CHAIN`; names from OCP's own sample where one fits, ocp-api-notes.md §7):

    Prepare create obproxy                      the obproxy_server row, CREATING
    Check if process not exist                  SQL/exporter ports free, install path empty
    Install rpm by package and version          bin/ and lib/ of the RPM over SFTP, verified
    Start obproxy process                       the real command line (obproxy/cmdline.py)
    Wait for obproxy login                      root@proxysys logs in on the SQL port
    Set obproxy user and password for connect   observer_sys_password = the proxyro password
    Sync obproxy parameter                      runtime parameters, ALTER PROXYCONFIG
    Update obproxy status                       version, RUNNING/NORMAL, parameter version

A chain serves one host: `ctx.item(HOST_IDS)` in the parallel branches of a cluster create,
`ctx.require(HOST_ID)` in batchAdd's one-host tasks. The row is found again by (host, SQL port),
which is unique, so the branches of one task share no context keys.

Idempotent: every step looks before it acts. Prepare reuses its own row; Install skips files
whose sha256 already matches; Start does nothing when an OBProxy already runs from the install
path; the password and parameters are set only where `show proxyconfig` differs.

Rollback, downstreams first: Update marks the row DELETING, Start stops every process running
from the install path, Install removes the install path, Prepare deletes the row. The steps in
between only configure the process that Start's rollback stops and Install's rollback deletes,
so they have nothing of their own to undo. What belongs to this install is decided by the
install path: the check proved it empty before anything was sent, and Prepare refused to
share it with any other recorded OBProxy on the host.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from obfleet.appcontext import AppContext
from obfleet.config import Settings
from obfleet.engine.context import SubtaskContext
from obfleet.engine.definition import Subtask
from obfleet.flows.obproxy_cluster import CLUSTER_ID
from obfleet.hosts.shell import command, quote, safe_path
from obfleet.hosts.ssh import SshConnection
from obfleet.obproxy import cmdline
from obfleet.obproxy.admin import AdminError, ProxysysClient
from obfleet.obproxy.configurl import config_url
from obfleet.packages import rpm
from obfleet.security.secrets import SecretBox
from obfleet.services import credentials, host_access, packages
from obfleet.services import obproxy_records as records
from obfleet.services.ob_clusters import root_servers
from obfleet.store.models.ob_clusters import ObCluster
from obfleet.store.models.obproxy import ObproxyCluster, ObproxyServer
from obfleet.store.models.packages import SoftwarePackage
from obfleet.timefmt import utcnow

T = TypeVar("T")

# Task context keys (stringMap unless noted); OCP's install samples use the same names.
HOST_IDS = "host_ids"  # listMap: one parallel branch per host (cluster create)
HOST_ID = "host_id"  # the one host of a batchAdd task
SQL_PORT = "sql_port"
EXPORTER_PORT = "exporter_port"
PACKAGE_ID = "package_id"
PACKAGE_NAME = "package_name"
PACKAGE_VERSION = "package_version"  # <version>-<buildNumber>, as OBProxy versions are shown
INSTALL_PATH = "install_path"
SERVER_ID = "obproxy_server_id"  # batchAdd only: branches of one task must not share keys

INSTALL_ROOT = "/home/admin"  # the RPM's own layout: /home/admin/obproxy-<version>
HOME_DIRS = ("bin", "lib", "etc", "log", "run")
SHIPPED_DIRS = ("bin", "lib")  # what OBD's file_map ships; OBProxy creates the rest itself
START_TIMEOUT_S = 120.0  # the daemon's parent returns once it listens (or gives up)
LOGIN_WAIT_S = 240.0  # below the subtask's timeout, so the failure says what it waited for
STOP_WAIT_S = (("TERM", 10.0), ("KILL", 5.0))
POLL_S = 0.3
COMMAND_TIMEOUT_S = 60.0
LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


class InstallError(RuntimeError):
    """A step cannot go on; the message says what is wrong on which host."""


def install_path(version: str) -> str:
    """Where a package of `version` is installed: the RPM's own path."""
    return safe_path(f"{INSTALL_ROOT}/obproxy-{version}")


# --- the branch: which host, ports and path this chain installs ----------------------------


@dataclass(frozen=True)
class Branch:
    cluster_id: int
    host_id: int
    ip: str
    sql_port: int
    exporter_port: int
    home: str

    @property
    def ports(self) -> tuple[int, int]:
        return (self.sql_port, self.exporter_port)


def _app(ctx: SubtaskContext) -> AppContext:
    app: AppContext = ctx.resources
    return app


async def _read(ctx: SubtaskContext, fn: Callable[[Session], T]) -> T:
    def run() -> T:
        with _app(ctx).db.session() as session:
            return fn(session)

    return await asyncio.to_thread(run)


async def _write(ctx: SubtaskContext, fn: Callable[[Session], T]) -> T:
    def run() -> T:
        with _app(ctx).db.transaction() as session:
            return fn(session)

    return await asyncio.to_thread(run)


async def _branch(ctx: SubtaskContext) -> Branch:
    host_id = int(ctx.item(HOST_IDS) if ctx.parallel else ctx.require(HOST_ID))
    ip = await _read(ctx, lambda s: host_access.get_host(s, host_id).inner_ip_address)
    return Branch(
        cluster_id=int(ctx.require(CLUSTER_ID)),
        host_id=host_id,
        ip=ip,
        sql_port=int(ctx.require(SQL_PORT)),
        exporter_port=int(ctx.require(EXPORTER_PORT)),
        home=safe_path(ctx.require(INSTALL_PATH)),
    )


async def _connect(ctx: SubtaskContext, branch: Branch) -> SshConnection:
    return await host_access.connect(_app(ctx), branch.host_id)


# --- the metadb --------------------------------------------------------------------------------


def clash(session: Session, host_id: int, ports: Collection[int], home: str) -> str | None:
    """Why another recorded OBProxy on the host stands in the way (one of `ports` or the
    install path taken), or None."""
    rows = session.scalars(select(ObproxyServer).where(ObproxyServer.host_id == host_id)).all()
    for row in rows:
        taken = sorted({row.sql_port, row.exporter_port} & set(ports))
        if taken:
            return f"port {taken[0]} on host {row.ip} is used by obproxy {row.id}"
        if row.install_path == home:
            return f"{home} on host {row.ip} is the install path of obproxy {row.id}"
    return None


def _own_row(session: Session, branch: Branch) -> ObproxyServer | None:
    row = session.scalar(
        select(ObproxyServer).where(
            ObproxyServer.host_id == branch.host_id, ObproxyServer.sql_port == branch.sql_port
        )
    )
    return row if row is not None and row.cluster_id == branch.cluster_id else None


def _record_creating(session: Session, branch: Branch, package_id: int) -> int:
    row = _own_row(session, branch)
    if row is not None:
        return row.id
    reason = clash(session, branch.host_id, branch.ports, branch.home)
    if reason:
        raise InstallError(reason)
    row = ObproxyServer(
        cluster_id=branch.cluster_id,
        host_id=branch.host_id,
        package_id=package_id,
        ip=branch.ip,
        sql_port=branch.sql_port,
        exporter_port=branch.exporter_port,
        install_path=branch.home,
        status="CREATING",
        operate_status="OPERATING",
    )
    session.add(row)
    session.flush()
    return row.id


def _delete_row(session: Session, branch: Branch) -> int | None:
    row = _own_row(session, branch)
    if row is None:
        return None
    session.delete(row)
    return row.id


def linked_clusters(session: Session, cluster: ObproxyCluster) -> list[ObCluster]:
    ids = [link.ob_cluster_id for link in cluster.links]
    found = {c.id: c for c in session.scalars(select(ObCluster).where(ObCluster.id.in_(ids)))}
    return [found[i] for i in ids if i in found]


def proxyro_passwords(
    session: Session, box: SecretBox, clusters: Iterable[ObCluster]
) -> dict[str, str | None]:
    """Each OceanBase cluster's proxyro password by cluster name (None: no credential)."""
    return {
        c.name: None
        if c.proxyro_credential_id is None
        else credentials.reveal(session, box, c.proxyro_credential_id).secret
        for c in clusters
    }


def _proxyro_password(session: Session, box: SecretBox, cluster_id: int) -> str:
    """The one proxyro password of the clusters behind this OBProxy cluster (checked up front
    as well; checked again, since links and credentials may have changed since)."""
    cluster = records.get(session, cluster_id)
    found = proxyro_passwords(session, box, linked_clusters(session, cluster))
    values = set(found.values())
    password = values.pop() if len(values) == 1 else None
    if password is None:
        raise InstallError(
            f"the OceanBase clusters of {cluster.name} ({', '.join(found) or 'none'}) must all "
            "have the same proxyro credential"
        )
    return password


def _proxysys(session: Session, box: SecretBox, branch: Branch) -> ProxysysClient:
    cluster = records.get(session, branch.cluster_id)
    if cluster.proxysys_credential_id is None:
        raise InstallError(f"OBProxy cluster {cluster.name} has no root@proxysys credential")
    password = credentials.reveal(session, box, cluster.proxysys_credential_id).secret
    return ProxysysClient(branch.ip, branch.sql_port, password)


def _upstream(
    session: Session, settings: Settings, cluster: ObproxyCluster
) -> cmdline.RsList | cmdline.ConfigUrl:
    if cluster.work_mode == "RS_LIST":
        (ob,) = linked_clusters(session, cluster)
        return cmdline.RsList(ob.name, tuple(f"{s.ip}:{s.sql_port}" for s in root_servers(ob)))
    if not settings.advertise_url:
        raise InstallError(
            "CONFIG_URL mode needs OBFLEET_ADVERTISE_URL: the URL OBProxy reads its clusters from"
        )
    return cmdline.ConfigUrl(config_url(settings.advertise_url, cluster.name))


def _start_spec(session: Session, app: AppContext, branch: Branch) -> cmdline.StartSpec:
    cluster = records.get(session, branch.cluster_id)
    return cmdline.StartSpec(
        home=branch.home,
        sql_port=branch.sql_port,
        exporter_port=branch.exporter_port,
        app_name=cluster.name,
        proxysys_password=_proxysys(session, app.secrets, branch).password,
        upstream=_upstream(session, app.settings, cluster),
        startup_parameters=[(p["name"], p["value"]) for p in cluster.startup_parameters],
        runtime_names=frozenset(p["name"] for p in cluster.parameters),
    )


def _record_running(session: Session, branch: Branch, version: str) -> int:
    row = _own_row(session, branch)
    if row is None:
        raise InstallError(f"obproxy on {branch.ip}:{branch.sql_port} is no longer recorded")
    cluster = records.get(session, branch.cluster_id)
    host = host_access.get_host(session, branch.host_id)
    package = session.get(SoftwarePackage, row.package_id) if row.package_id else None
    row.version = version
    row.status = "RUNNING"
    row.operate_status = "NORMAL"
    row.parameter_version = cluster.parameter_version
    row.architecture = host.architecture or (package.architecture if package else None)
    row.last_active_time = utcnow()
    return row.id


def _mark_deleting(session: Session, branch: Branch) -> int | None:
    row = _own_row(session, branch)
    if row is None:
        return None
    row.status = "DELETING"
    row.operate_status = "OPERATING"
    return row.id


# --- the package, read once on the obfleet side -------------------------------------------------


@dataclass(frozen=True)
class PayloadFile:
    path: str  # relative to the OBProxy home: bin/obproxy
    mode: int
    sha256: str


@dataclass(frozen=True)
class Payload:
    root: Path  # the extracted home: root / file.path is the local copy
    files: tuple[PayloadFile, ...]


# One extraction per package at a time in this process (thread locks: the branches of a task
# wait in worker threads, whatever event loop they come from); the rename in _extract covers
# other processes.
_extracting: dict[str, threading.Lock] = {}


async def load_payload(settings: Settings, package: SoftwarePackage) -> Payload:
    """The files to ship from `package`, extracted once into the cache (keyed by the package's
    sha1) and shared by every branch and task that installs it."""
    return await asyncio.to_thread(_cached_payload, settings, package)


def _cached_payload(settings: Settings, package: SoftwarePackage) -> Payload:
    cache = settings.data_dir / "cache" / "packages" / package.sha1
    with _extracting.setdefault(package.sha1, threading.Lock()):
        if not (cache / "manifest.json").exists():
            _extract(packages.path_of(settings.packages_dir, package), cache)
    manifest = json.loads((cache / "manifest.json").read_text())
    return Payload(
        root=cache / "payload" / manifest["home"],
        files=tuple(PayloadFile(f["path"], f["mode"], f["sha256"]) for f in manifest["files"]),
    )


def _home_in(files: list[rpm.PayloadFile]) -> PurePosixPath:
    """The OBProxy home inside the payload: the directory whose bin/ holds obproxy
    (/home/admin/obproxy-<version> for obproxy-ce, /opt/taobao/install/... for others)."""
    homes = {f.path.parent.parent for f in files if f.path.match("bin/obproxy")}
    if len(homes) != 1:
        raise InstallError(f"the package holds {len(homes)} bin/obproxy files, not one")
    return homes.pop()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _extract(rpm_path: Path, cache: Path) -> None:
    """Extract into a private directory and rename it into place, so a reader (another replica,
    a later task) finds either nothing or the complete cache entry."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f"{cache.name}.tmp-{secrets.token_hex(4)}")
    try:
        files = list(rpm.extract(rpm_path, tmp / "payload"))
        home = _home_in(files)
        shipped = []
        for f in files:
            relative = f.path.relative_to(home) if f.path.is_relative_to(home) else None
            if relative is not None and relative.parts[0] in SHIPPED_DIRS:
                local = tmp / "payload" / f.path.relative_to("/")
                shipped.append({"path": str(relative), "mode": f.mode, "sha256": _sha256(local)})
        manifest = {"home": str(home.relative_to("/")), "files": shipped}
        (tmp / "manifest.json").write_text(json.dumps(manifest))
        try:
            os.rename(tmp, cache)
        except OSError:
            if not (cache / "manifest.json").exists():
                raise  # not a concurrent extraction that won the race
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- the host -----------------------------------------------------------------------------------


def parse_listeners(proc_net_tcp: str, ports: Collection[int]) -> dict[int, set[int]]:
    """Socket inodes listening on each of `ports`, from /proc/net/tcp and /proc/net/tcp6 (the
    kernel's own table, as OBD reads it: no ss or netstat needed on the host)."""
    found: dict[int, set[int]] = {}
    for line in proc_net_tcp.splitlines():
        fields = line.split()
        if len(fields) < 10 or fields[3] != LISTEN:
            continue
        try:
            port = int(fields[1].rpartition(":")[2], 16)
            inode = int(fields[9])
        except ValueError:
            continue
        if port in ports:
            found.setdefault(port, set()).add(inode)
    return found


def _owners_script(inodes: Iterable[int]) -> str:
    """Prints `socket:[inode] pid cmdline` for every process holding one of the sockets (printf,
    not echo: dash's echo would expand backslashes found in a command line)."""
    patterns = "|".join(quote(f"socket:[{int(inode)}]") for inode in sorted(inodes))
    args = "$(tr '\\000\\n' '  ' < \"$p/cmdline\" 2>/dev/null)"
    return (
        'for p in /proc/[0-9]*; do for f in "$p"/fd/*; do l=$(readlink "$f" 2>/dev/null); '
        f'case "$l" in {patterns}) printf \'%s %s %s\\n\' "$l" "${{p#/proc/}}" "{args}";; '
        "esac; done; done; true"
    )


async def _port_holders(
    conn: SshConnection, ctx: SubtaskContext, ports: Collection[int]
) -> dict[int, list[str]]:
    """For each port something listens on: who holds it (`pid 12 (cmdline)`)."""
    table = await conn.run(
        "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null; true", timeout=COMMAND_TIMEOUT_S
    )
    listening = parse_listeners(table.stdout, ports)
    if not listening:
        return {}
    port_of = {inode: port for port, inodes in listening.items() for inode in inodes}
    owners = await conn.run(_owners_script(port_of), timeout=COMMAND_TIMEOUT_S, log=ctx.log)
    holders: dict[int, set[str]] = {port: set() for port in listening}
    for line in owners.stdout.splitlines():
        link, _, rest = line.partition(" ")
        if not link.startswith("socket:["):
            continue
        pid, _, args = rest.partition(" ")
        inode = int(link.removeprefix("socket:[").removesuffix("]"))
        holders[port_of[inode]].add(f"pid {pid} ({args.strip()[:200]})")
    return {
        port: sorted(found) or ["a process obfleet cannot see"] for port, found in holders.items()
    }


async def _path_entries(conn: SshConnection, ctx: SubtaskContext, home: str) -> list[str]:
    """What the install path holds (empty when it does not exist)."""
    script = f"if [ -e {quote(home)} ]; then {command('ls', '-A', '--', home)}; fi"
    result = await conn.run(script, timeout=COMMAND_TIMEOUT_S, log=ctx.log)
    return result.stdout.split()


async def _pids_in(conn: SshConnection, home: str) -> list[int]:
    """Processes whose working directory is the install path: OBProxy runs from there (it is
    started there and daemonizes without changing directory), and nothing else should."""
    script = (
        'for p in /proc/[0-9]*; do [ "$(readlink "$p/cwd" 2>/dev/null)" = '
        f'{quote(home)} ] && echo "${{p#/proc/}}"; done; true'
    )
    result = await conn.run(script, timeout=COMMAND_TIMEOUT_S)
    return sorted(int(pid) for pid in result.stdout.split())


def _pids(pids: Iterable[int]) -> str:
    return ", ".join(map(str, pids))


async def _stop_all(conn: SshConnection, ctx: SubtaskContext, home: str) -> None:
    """Stop every process running from `home`: TERM, then KILL; wait until they are gone."""
    pids = await _pids_in(conn, home)
    if not pids:
        ctx.log(f"no process runs from {home}")
        return
    for signal, wait_s in STOP_WAIT_S:
        ctx.log(f"stopping pid {_pids(pids)} running from {home} with SIG{signal}")
        await conn.run(command("kill", f"-{signal}", *pids), check=False, timeout=30, log=ctx.log)
        deadline = time.monotonic() + wait_s
        while pids and time.monotonic() < deadline:
            await asyncio.sleep(POLL_S)
            pids = await _pids_in(conn, home)
        if not pids:
            ctx.log(f"nothing runs from {home} any more")
            return
    raise InstallError(f"pid {_pids(pids)} still run from {home} after SIGKILL")


async def _remote_digests(
    conn: SshConnection, ctx: SubtaskContext, home: str, files: Iterable[PayloadFile]
) -> dict[str, str]:
    """sha256 of the payload files already on the host, by relative path."""
    paths = [safe_path(f"{home}/{f.path}") for f in files]
    result = await conn.run(
        command("sha256sum", "--", *paths) + " 2>/dev/null; true",
        timeout=COMMAND_TIMEOUT_S,
        log=ctx.log,
    )
    digests = {}
    for line in result.stdout.splitlines():
        digest, _, path = line.partition("  ")
        digests[path.removeprefix(home + "/")] = digest
    return digests


async def _verify_binary(conn: SshConnection, ctx: SubtaskContext, branch: Branch) -> None:
    """`obproxy -V` proves the binary runs on the host (architecture, libraries). Judged by its
    banner, `obproxy (<package> <release>)`: the exit status of -V differs between versions."""
    result = await conn.run(
        cmdline.version_command(branch.home), check=False, timeout=COMMAND_TIMEOUT_S, log=ctx.log
    )
    lines = (result.stdout + result.stderr).splitlines()
    if not any(line.startswith("obproxy (") for line in lines):
        raise InstallError(
            f"{branch.home}/bin/obproxy does not run on {branch.ip} "
            f"(exit {result.exit_status}): {result.stderr.strip()[-500:]}"
        )


# --- the steps ----------------------------------------------------------------------------------


class PrepareCreateObproxy(Subtask):
    """Records the obproxy (CREATING): from now on the cluster shows it."""

    name = "Prepare create obproxy"
    timeout = 1800

    async def execute(self, ctx: SubtaskContext) -> None:
        branch = await _branch(ctx)
        package_id = int(ctx.require(PACKAGE_ID))
        server_id = await _write(ctx, lambda s: _record_creating(s, branch, package_id))
        ctx.log(
            f"obproxy {server_id} recorded as CREATING: host {branch.host_id} ({branch.ip}), "
            f"SQL port {branch.sql_port}, exporter port {branch.exporter_port}, "
            f"install path {branch.home}"
        )
        if not ctx.parallel:
            ctx.set(SERVER_ID, str(server_id))

    async def rollback(self, ctx: SubtaskContext) -> None:
        branch = await _branch(ctx)
        server_id = await _write(ctx, lambda s: _delete_row(s, branch))
        ctx.log(
            f"obproxy {server_id} on {branch.ip}:{branch.sql_port} deleted"
            if server_id
            else f"no obproxy recorded on {branch.ip}:{branch.sql_port}"
        )


class CheckProcessNotExist(Subtask):
    """Nothing may hold the ports, and no other OBProxy may live in the install path: checked
    before anything is sent, so a refusal leaves the host exactly as it was."""

    name = "Check if process not exist"
    timeout = 300

    async def execute(self, ctx: SubtaskContext) -> None:
        branch = await _branch(ctx)
        conn = await _connect(ctx, branch)
        problems = [
            f"port {port} on {branch.ip} is already in use by {', '.join(holders)}"
            for port, holders in sorted((await _port_holders(conn, ctx, branch.ports)).items())
        ]
        entries = await _path_entries(conn, ctx, branch.home)
        if entries:
            problems.append(
                f"the install path {branch.home} on {branch.ip} is not empty "
                f"({', '.join(entries[:5])}): another OBProxy lives there"
            )
        for problem in problems:
            ctx.log(f"CHECK FAILED: {problem}")
        if problems:
            raise InstallError("; ".join(problems))
        ctx.log(
            f"ports {branch.sql_port} and {branch.exporter_port} are free on {branch.ip}, "
            f"and {branch.home} holds no OBProxy"
        )


class InstallPackage(Subtask):
    """Ships bin/ and lib/ of the RPM, read once on the obfleet side; no rpm on the host."""

    name = "Install rpm by package and version"
    timeout = 3600

    async def execute(self, ctx: SubtaskContext) -> None:
        branch = await _branch(ctx)
        package_id = int(ctx.require(PACKAGE_ID))
        package = await _read(ctx, lambda s: packages.get(s, package_id))
        payload = await load_payload(_app(ctx).settings, package)
        conn = await _connect(ctx, branch)
        dirs = [f"{branch.home}/{d}" for d in HOME_DIRS]
        await conn.run(command("mkdir", "-p", "--", *dirs), timeout=COMMAND_TIMEOUT_S, log=ctx.log)
        present = await _remote_digests(conn, ctx, branch.home, payload.files)
        missing = [f for f in payload.files if present.get(f.path) != f.sha256]
        for f in missing:
            # put_file writes a temporary name, checks its sha256 on the host, then renames.
            await conn.put_file(
                payload.root / f.path, f"{branch.home}/{f.path}", f.mode, log=ctx.log
            )
        ctx.log(
            f"{package.file_name}: {len(missing)} file(s) sent, "
            f"{len(payload.files) - len(missing)} already in place under {branch.home}"
        )
        await _verify_binary(conn, ctx, branch)

    async def rollback(self, ctx: SubtaskContext) -> None:
        branch = await _branch(ctx)
        conn = await _connect(ctx, branch)
        running = await _pids_in(conn, branch.home)
        if running:
            raise InstallError(f"pid {_pids(running)} run from {branch.home}; not removing it")
        await conn.run(
            command("rm", "-rf", "--", branch.home), timeout=COMMAND_TIMEOUT_S, log=ctx.log
        )
        ctx.log(f"{branch.home} removed from {branch.ip}")


class StartObproxy(Subtask):
    """Starts OBProxy with its real command line; it daemonizes and the command returns."""

    name = "Start obproxy process"
    timeout = 600

    async def execute(self, ctx: SubtaskContext) -> None:
        branch = await _branch(ctx)
        app = _app(ctx)
        spec = await _read(ctx, lambda s: _start_spec(s, app, branch))
        hashed = ctx.secret(cmdline.sha1_hex(ctx.secret(spec.proxysys_password)))
        conn = await _connect(ctx, branch)
        running = await _pids_in(conn, branch.home)
        if running:
            ctx.log(f"OBProxy already runs from {branch.home} (pid {_pids(running)}); not starting")
            return
        await conn.run(
            cmdline.start_command(spec),
            timeout=START_TIMEOUT_S,
            log=ctx.log,
            redact=[hashed, spec.proxysys_password],
        )
        running = await _pids_in(conn, branch.home)
        if not running:
            log_file = f"{branch.home}/log/obproxy.log"
            await conn.run(
                command("tail", "-n", "20", "--", log_file),
                check=False,
                timeout=COMMAND_TIMEOUT_S,
                log=ctx.log,
                redact=[hashed],
            )
            raise InstallError(f"OBProxy exited right after it started; see {log_file}")
        ctx.log(f"OBProxy runs from {branch.home} on {branch.ip} (pid {_pids(running)})")

    async def rollback(self, ctx: SubtaskContext) -> None:
        branch = await _branch(ctx)
        await _stop_all(await _connect(ctx, branch), ctx, branch.home)


class WaitObproxyLogin(Subtask):
    """OBProxy is up when root@proxysys can log in on its SQL port (OBD's and obshell's check)."""

    name = "Wait for obproxy login"
    timeout = 300

    async def execute(self, ctx: SubtaskContext) -> None:
        branch = await _branch(ctx)
        app = _app(ctx)
        client = await _read(ctx, lambda s: _proxysys(s, app.secrets, branch))
        ctx.secret(client.password)
        deadline = time.monotonic() + LOGIN_WAIT_S
        tries = 0
        while True:
            tries += 1
            try:
                await client.ping()
            except AdminError as exc:
                if time.monotonic() > deadline:
                    raise InstallError(
                        f"{client.label} did not log in within {LOGIN_WAIT_S:g}s: {exc}"
                    ) from None
                if tries == 1 or tries % 10 == 0:
                    ctx.log(f"not yet: {exc}")
                await asyncio.sleep(1)
                continue
            ctx.log(f"{client.label} logged in (try {tries})")
            return


class SetProxyroPassword(Subtask):
    """observer_sys_password = the proxyro password of the linked clusters, which OBProxy uses
    to read their metadata. Sent in plain text as OBD does: OBProxy hashes it itself."""

    name = "Set obproxy user and password for connect"
    timeout = 30

    async def execute(self, ctx: SubtaskContext) -> None:
        branch = await _branch(ctx)
        app = _app(ctx)
        client = await _read(ctx, lambda s: _proxysys(s, app.secrets, branch))
        ctx.secret(client.password)
        proxyro = ctx.secret(
            await _read(ctx, lambda s: _proxyro_password(s, app.secrets, branch.cluster_id))
        )
        shown = await client.show_proxyconfig("observer_sys_password")
        if shown.get("observer_sys_password") == ctx.secret(cmdline.sha1_hex(proxyro)):
            ctx.log("observer_sys_password is already the proxyro password")
            return
        await client.alter_proxyconfig("observer_sys_password", proxyro)
        ctx.log(f"observer_sys_password set to the proxyro password on {client.label}")


class SyncObproxyParameter(Subtask):
    """The cluster's runtime parameters, set where `show proxyconfig` differs."""

    name = "Sync obproxy parameter"
    timeout = 30

    async def execute(self, ctx: SubtaskContext) -> None:
        branch = await _branch(ctx)
        app = _app(ctx)
        client = await _read(ctx, lambda s: _proxysys(s, app.secrets, branch))
        ctx.secret(client.password)
        wanted = await _read(
            ctx,
            lambda s: [
                (p["name"], p["value"]) for p in records.get(s, branch.cluster_id).parameters
            ],
        )
        if not wanted:
            ctx.log("the cluster has no runtime parameters to set")
            return
        current = await client.show_proxyconfig()
        for name, value in wanted:
            if current.get(name) == value:
                ctx.log(f"{name} is already {value}")
                continue
            await client.alter_proxyconfig(name, value)
            ctx.log(f"alter proxyconfig set {name} = {value}")


class UpdateObproxyStatus(Subtask):
    """Records the running obproxy: version, RUNNING/NORMAL, the cluster's parameter version."""

    name = "Update obproxy status"
    timeout = 300

    async def execute(self, ctx: SubtaskContext) -> None:
        branch = await _branch(ctx)
        version = ctx.require(PACKAGE_VERSION)
        server_id = await _write(ctx, lambda s: _record_running(s, branch, version))
        ctx.log(f"obproxy {server_id} ({version}) on {branch.ip}:{branch.sql_port} is RUNNING")

    async def rollback(self, ctx: SubtaskContext) -> None:
        branch = await _branch(ctx)
        server_id = await _write(ctx, lambda s: _mark_deleting(s, branch))
        if server_id:
            ctx.log(f"obproxy {server_id} on {branch.ip}:{branch.sql_port} is DELETING")


HOST_CHAIN: tuple[type[Subtask], ...] = (
    PrepareCreateObproxy,
    CheckProcessNotExist,
    InstallPackage,
    StartObproxy,
    WaitObproxyLogin,
    SetProxyroPassword,
    SyncObproxyParameter,
    UpdateObproxyStatus,
)
