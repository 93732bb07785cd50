"""What the steps of obfleet's OBProxy tasks do to one OBProxy on its host.

Install, offline, restart, upgrade and take-over all come down to the same few acts on one
OBProxy (a `Placement`: cluster, host, ports, install path): ship a package's files, start the
process with its real command line, wait until root@proxysys logs in, give it the proxyro
password and the cluster's runtime parameters, stop it, remove its files. They live here once;
the flows (install_obproxy, offline_obproxy, ...) decide when each runs and what it records.

A process belongs to an OBProxy when its working directory is the install path: OBProxy is
started there and daemonizes without changing directory, and nothing else should run there.
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
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from obfleet.appcontext import AppContext
from obfleet.config import Settings
from obfleet.engine.context import SubtaskContext
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
from obfleet.store import package_chunks
from obfleet.store.models.ob_clusters import ObCluster
from obfleet.store.models.obproxy import ObproxyCluster, ObproxyServer
from obfleet.store.models.packages import SoftwarePackage

T = TypeVar("T")

INSTALL_ROOT = "/home/admin"  # the RPM's own layout: /home/admin/obproxy-<version>
HOME_DIRS = ("bin", "lib", "etc", "log", "run")
SHIPPED_DIRS = ("bin", "lib")  # what OBD's file_map ships; OBProxy creates the rest itself
START_TIMEOUT_S = 120.0  # the daemon's parent returns once it listens (or gives up)
LOGIN_WAIT_S = 240.0  # below the subtask's timeout, so the failure says what it waited for
LIVENESS_EVERY_S = 5.0  # how often a login wait looks for the process on the host
STOP_WAIT_S = (("TERM", 10.0), ("KILL", 5.0))
POLL_S = 0.3
COMMAND_TIMEOUT_S = 60.0
LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


class HostStepError(RuntimeError):
    """A step cannot go on; the message says what is wrong on which host."""


def install_path(version: str) -> str:
    """Where a package of `version` is installed: the RPM's own path."""
    return safe_path(f"{INSTALL_ROOT}/obproxy-{version}")


# --- the placement: which OBProxy, on which host, ports and path -------------------------------


@dataclass(frozen=True)
class Placement:
    cluster_id: int
    host_id: int
    ip: str
    sql_port: int
    exporter_port: int
    home: str

    @property
    def ports(self) -> tuple[int, int]:
        return (self.sql_port, self.exporter_port)

    @classmethod
    def of(cls, row: ObproxyServer, home: str | None = None) -> Placement:
        """Where a recorded OBProxy lives (or would live in `home`, for an upgrade)."""
        where = home or row.install_path
        if not where:
            raise HostStepError(f"obproxy {row.id} on {row.ip} has no recorded install path")
        return cls(row.cluster_id, row.host_id, row.ip, row.sql_port, row.exporter_port, where)


def recorded_at(session: Session, placement: Placement) -> ObproxyServer | None:
    """The obproxy recorded on the placement's host and SQL port (unique), of any cluster."""
    return session.scalar(
        select(ObproxyServer).where(
            ObproxyServer.host_id == placement.host_id, ObproxyServer.sql_port == placement.sql_port
        )
    )


def record_running(session: Session, row: ObproxyServer | None, placement: Placement) -> int:
    """The obproxy's row RUNNING/NORMAL and alive now, with the architecture it runs on (the
    host's, else its package's); the row gone in the meantime is an error."""
    if row is None:
        raise HostStepError(f"obproxy on {placement.ip}:{placement.sql_port} is no longer recorded")
    architecture = host_access.get_host(session, placement.host_id).architecture
    package = session.get(SoftwarePackage, row.package_id) if row.package_id else None
    row.architecture = architecture or (package.architecture if package else None)
    records.record_alive(session, row)
    return row.id


def app(ctx: SubtaskContext) -> AppContext:
    resources: AppContext = ctx.resources
    return resources


async def read(ctx: SubtaskContext, fn: Callable[[Session], T]) -> T:
    """`fn` in a read-only session, in a worker thread."""

    def run() -> T:
        with app(ctx).db.session() as session:
            return fn(session)

    return await asyncio.to_thread(run)


async def write(ctx: SubtaskContext, fn: Callable[[Session], T]) -> T:
    """`fn` in a transaction, in a worker thread."""

    def run() -> T:
        with app(ctx).db.transaction() as session:
            return fn(session)

    return await asyncio.to_thread(run)


async def connect(ctx: SubtaskContext, placement: Placement) -> SshConnection:
    return await host_access.connect(app(ctx), placement.host_id)


# --- credentials and the command line ---------------------------------------------------------


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


def proxyro_password(session: Session, box: SecretBox, cluster_id: int) -> str:
    """The one proxyro password of the clusters behind this OBProxy cluster (checked up front
    as well; checked again, since links and credentials may have changed since)."""
    cluster = records.get(session, cluster_id)
    found = proxyro_passwords(session, box, linked_clusters(session, cluster))
    values = set(found.values())
    password = values.pop() if len(values) == 1 else None
    if password is None:
        raise HostStepError(
            f"the OceanBase clusters of {cluster.name} ({', '.join(found) or 'none'}) must all "
            "have the same proxyro credential"
        )
    return password


def proxysys(session: Session, box: SecretBox, placement: Placement) -> ProxysysClient:
    cluster = records.get(session, placement.cluster_id)
    if cluster.proxysys_credential_id is None:
        raise HostStepError(f"OBProxy cluster {cluster.name} has no root@proxysys credential")
    password = credentials.reveal(session, box, cluster.proxysys_credential_id).secret
    return ProxysysClient(placement.ip, placement.sql_port, password)


def upstream(
    session: Session, settings: Settings, cluster: ObproxyCluster
) -> cmdline.RsList | cmdline.ConfigUrl:
    if cluster.work_mode == "RS_LIST":
        (ob,) = linked_clusters(session, cluster)
        return cmdline.RsList(ob.name, tuple(f"{s.ip}:{s.sql_port}" for s in root_servers(ob)))
    if not settings.advertise_url:
        raise HostStepError(
            "CONFIG_URL mode needs OBFLEET_ADVERTISE_URL: the URL OBProxy reads its clusters from"
        )
    return cmdline.ConfigUrl(config_url(settings.advertise_url, cluster.name))


@dataclass(frozen=True)
class StartParameters:
    """The parameters a start puts on the command line, when they are not the cluster's
    recorded ones (a parameter change and its rollback start with the lists they apply)."""

    startup: tuple[tuple[str, str], ...]
    runtime_names: frozenset[str]


def start_spec(
    session: Session,
    obfleet: AppContext,
    placement: Placement,
    parameters: StartParameters | None = None,
) -> cmdline.StartSpec:
    cluster = records.get(session, placement.cluster_id)
    if parameters is None:
        parameters = StartParameters(
            tuple((p["name"], p["value"]) for p in cluster.startup_parameters),
            frozenset(p["name"] for p in cluster.parameters),
        )
    return cmdline.StartSpec(
        home=placement.home,
        sql_port=placement.sql_port,
        exporter_port=placement.exporter_port,
        app_name=cluster.name,
        proxysys_password=proxysys(session, obfleet.secrets, placement).password,
        upstream=upstream(session, obfleet.settings, cluster),
        startup_parameters=parameters.startup,
        runtime_names=parameters.runtime_names,
    )


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


async def load_payload(app: AppContext, package: SoftwarePackage) -> Payload:
    """The files to ship from `package`, extracted once into the cache (keyed by the package's
    sha1) and shared by every branch and task that installs it."""
    return await asyncio.to_thread(_cached_payload, app, package)


def _cached_payload(app: AppContext, package: SoftwarePackage) -> Payload:
    cache = app.settings.data_dir / "cache" / "packages" / package.sha1
    with _extracting.setdefault(package.sha1, threading.Lock()):
        if not (cache / "manifest.json").exists():
            _extract(package_chunks.local_copy(app.db, app.settings.packages_dir, package), cache)
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
        raise HostStepError(f"the package holds {len(homes)} bin/obproxy files, not one")
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


@dataclass(frozen=True)
class PortOwner:
    """A process holding a listening socket: its pid and its command line (NULs as blanks)."""

    pid: int
    args: str


async def port_owners(
    conn: SshConnection, ctx: SubtaskContext, ports: Collection[int]
) -> dict[int, list[PortOwner]]:
    """For each port something listens on: the processes holding it, by pid (an empty list when
    the socket belongs to a process obfleet cannot see, e.g. another user's without root)."""
    table = await conn.run(
        "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null; true", timeout=COMMAND_TIMEOUT_S
    )
    listening = parse_listeners(table.stdout, ports)
    if not listening:
        return {}
    port_of = {inode: port for port, inodes in listening.items() for inode in inodes}
    owners = await conn.run(_owners_script(port_of), timeout=COMMAND_TIMEOUT_S, log=ctx.log)
    found: dict[int, dict[int, PortOwner]] = {port: {} for port in listening}
    for line in owners.stdout.splitlines():
        link, _, rest = line.partition(" ")
        if not link.startswith("socket:["):
            continue
        pid, _, args = rest.partition(" ")
        inode = int(link.removeprefix("socket:[").removesuffix("]"))
        if pid.isdigit():
            found[port_of[inode]][int(pid)] = PortOwner(int(pid), args.strip())
    return {port: sorted(by_pid.values(), key=lambda o: o.pid) for port, by_pid in found.items()}


async def port_holders(
    conn: SshConnection, ctx: SubtaskContext, ports: Collection[int]
) -> dict[int, list[str]]:
    """For each port something listens on: who holds it (`pid 12 (cmdline)`)."""
    owners = await port_owners(conn, ctx, ports)
    return {
        port: sorted(f"pid {o.pid} ({o.args[:200]})" for o in found)
        or ["a process obfleet cannot see"]
        for port, found in owners.items()
    }


async def path_entries(conn: SshConnection, ctx: SubtaskContext, home: str) -> list[str]:
    """What the install path holds (empty when it does not exist)."""
    script = f"if [ -e {quote(home)} ]; then {command('ls', '-A', '--', home)}; fi"
    result = await conn.run(script, timeout=COMMAND_TIMEOUT_S, log=ctx.log)
    return result.stdout.split()


async def pids_in(conn: SshConnection, home: str) -> list[int]:
    """Processes whose working directory is the install path: OBProxy runs from there (it is
    started there and daemonizes without changing directory), and nothing else should."""
    script = (
        'for p in /proc/[0-9]*; do [ "$(readlink "$p/cwd" 2>/dev/null)" = '
        f'{quote(home)} ] && echo "${{p#/proc/}}"; done; true'
    )
    result = await conn.run(script, timeout=COMMAND_TIMEOUT_S)
    return sorted(int(pid) for pid in result.stdout.split())


def pids_text(pids: Iterable[int]) -> str:
    return ", ".join(map(str, pids))


async def stop_all(conn: SshConnection, ctx: SubtaskContext, home: str) -> None:
    """Stop every process running from `home`: TERM, then KILL; wait until they are gone."""
    pids = await pids_in(conn, home)
    if not pids:
        ctx.log(f"no process runs from {home}")
        return
    for signal, wait_s in STOP_WAIT_S:
        ctx.log(f"stopping pid {pids_text(pids)} running from {home} with SIG{signal}")
        await conn.run(command("kill", f"-{signal}", *pids), check=False, timeout=30, log=ctx.log)
        deadline = time.monotonic() + wait_s
        while pids and time.monotonic() < deadline:
            await asyncio.sleep(POLL_S)
            pids = await pids_in(conn, home)
        if not pids:
            ctx.log(f"nothing runs from {home} any more")
            return
    raise HostStepError(f"pid {pids_text(pids)} still run from {home} after SIGKILL")


async def remote_digests(
    conn: SshConnection, ctx: SubtaskContext, home: str, files: Iterable[PayloadFile]
) -> dict[str, str]:
    """sha256 of the payload files already on the host, by relative path."""
    paths = [f"{home}/{f.path}" for f in files]
    digests = await conn.sha256_many(paths, missing_ok=True, timeout=COMMAND_TIMEOUT_S, log=ctx.log)
    return {path.removeprefix(home + "/"): digest for path, digest in digests.items()}


async def verify_binary(conn: SshConnection, ctx: SubtaskContext, placement: Placement) -> None:
    """`obproxy -V` proves the binary runs on the host (architecture, libraries). Judged by its
    banner, `obproxy (<package> <release>)`: the exit status of -V differs between versions."""
    result = await conn.run(
        cmdline.version_command(placement.home), check=False, timeout=COMMAND_TIMEOUT_S, log=ctx.log
    )
    lines = (result.stdout + result.stderr).splitlines()
    if not any(line.startswith("obproxy (") for line in lines):
        raise HostStepError(
            f"{placement.home}/bin/obproxy does not run on {placement.ip} "
            f"(exit {result.exit_status}): {result.stderr.strip()[-500:]}"
        )


# --- the acts -----------------------------------------------------------------------------------


async def ship_package(ctx: SubtaskContext, placement: Placement, package_id: int) -> None:
    """Ships bin/ and lib/ of the RPM, read once on the obfleet side (no rpm on the host), into
    the install path; files whose sha256 already matches stay; `obproxy -V` must then run."""
    package = await read(ctx, lambda s: packages.get(s, package_id))
    payload = await load_payload(app(ctx), package)
    conn = await connect(ctx, placement)
    dirs = [f"{placement.home}/{d}" for d in HOME_DIRS]
    await conn.run(command("mkdir", "-p", "--", *dirs), timeout=COMMAND_TIMEOUT_S, log=ctx.log)
    present = await remote_digests(conn, ctx, placement.home, payload.files)
    missing = [f for f in payload.files if present.get(f.path) != f.sha256]
    # Over one SFTP session: each file goes to a temporary name, all are checked with sha256sum
    # on the host, then renamed into place.
    await conn.put_files(
        [(payload.root / f.path, f"{placement.home}/{f.path}", f.mode) for f in missing],
        log=ctx.log,
    )
    ctx.log(
        f"{package.file_name}: {len(missing)} file(s) sent, "
        f"{len(payload.files) - len(missing)} already in place under {placement.home}"
    )
    await verify_binary(conn, ctx, placement)


SYSTEM_ROOTS = frozenset(
    {"bin", "boot", "dev", "etc", "lib", "lib64", "proc", "run", "sbin", "sys"}
)
PROTECTED = frozenset({"/home/admin", "/home", "/root", "/opt", "/usr/local", "/var/lib", "/data"})


def check_removable(home: str) -> str:
    """`home` if obfleet may delete it: a plain absolute path at least two levels deep, outside
    the system's own directories (a row's install path is data, and rm -rf cannot be undone)."""
    path = safe_path(home)
    parts = PurePosixPath(path).parts
    system = parts[1] in SYSTEM_ROOTS if len(parts) > 1 else True
    usr = len(parts) > 1 and parts[1] == "usr" and not path.startswith("/usr/local/")
    if len(parts) < 3 or path in PROTECTED or system or usr:
        raise HostStepError(f"refusing to remove {path}: not an OBProxy install path")
    return path


async def remove_home(ctx: SubtaskContext, placement: Placement) -> None:
    """Removes the install path; refused while a process still runs from it, and for a path
    that is not an install path (check_removable)."""
    check_removable(placement.home)
    conn = await connect(ctx, placement)
    running = await pids_in(conn, placement.home)
    if running:
        raise HostStepError(f"pid {pids_text(running)} run from {placement.home}; not removing it")
    await conn.run(
        command("rm", "-rf", "--", placement.home), timeout=COMMAND_TIMEOUT_S, log=ctx.log
    )
    ctx.log(f"{placement.home} removed from {placement.ip}")


async def start_process(
    ctx: SubtaskContext, placement: Placement, parameters: StartParameters | None = None
) -> None:
    """Starts OBProxy from the install path with its real command line (it daemonizes and the
    command returns); nothing happens when one already runs from there. The command line
    carries the cluster's recorded startup parameters unless `parameters` says otherwise."""
    obfleet = app(ctx)
    spec = await read(ctx, lambda s: start_spec(s, obfleet, placement, parameters))
    hashed = ctx.secret(cmdline.sha1_hex(ctx.secret(spec.proxysys_password)))
    conn = await connect(ctx, placement)
    running = await pids_in(conn, placement.home)
    if running:
        ctx.log(
            f"OBProxy already runs from {placement.home} (pid {pids_text(running)}); not starting"
        )
        return
    await conn.run(
        cmdline.start_command(spec),
        timeout=START_TIMEOUT_S,
        log=ctx.log,
        redact=[hashed, spec.proxysys_password],
    )
    running = await pids_in(conn, placement.home)
    if not running:
        raise await _exited(conn, ctx, placement, "right after it started")
    ctx.log(f"OBProxy runs from {placement.home} on {placement.ip} (pid {pids_text(running)})")


async def _exited(
    conn: SshConnection, ctx: SubtaskContext, placement: Placement, when: str
) -> HostStepError:
    """The error for an OBProxy that is gone, after the tail of its log went to the task log
    (redacted by the subtask's secrets: passwords, and their SHA1 as the command line has it)."""
    log_file = f"{placement.home}/log/obproxy.log"
    await conn.run(
        command("tail", "-n", "20", "--", log_file),
        check=False,
        timeout=COMMAND_TIMEOUT_S,
        log=ctx.log,
    )
    return HostStepError(f"OBProxy exited {when}; see {log_file} on {placement.ip}")


async def _still_running(ctx: SubtaskContext, placement: Placement) -> None:
    conn = await connect(ctx, placement)
    if not await pids_in(conn, placement.home):
        raise await _exited(conn, ctx, placement, "before root@proxysys could log in")


async def stop_process(ctx: SubtaskContext, placement: Placement) -> None:
    """Stops every process running from the install path (TERM, then KILL)."""
    await stop_all(await connect(ctx, placement), ctx, placement.home)


async def admin_client(ctx: SubtaskContext, placement: Placement) -> ProxysysClient:
    """root@proxysys of the OBProxy, its password declared to the log's redactor."""
    box = app(ctx).secrets
    client = await read(ctx, lambda s: proxysys(s, box, placement))
    ctx.secret(client.password)
    return client


async def wait_login(ctx: SubtaskContext, placement: Placement) -> None:
    """OBProxy is up when root@proxysys can log in on its SQL port (OBD's and obshell's check).
    While it cannot, the host is asked every LIVENESS_EVERY_S whether OBProxy still runs: one
    that exited (or a host that stopped answering) fails the step then, not at LOGIN_WAIT_S."""
    client = await admin_client(ctx, placement)
    ctx.secret(cmdline.sha1_hex(client.password))  # how its command line and log carry it
    started = time.monotonic()
    looked = started
    tries = 0
    while True:
        tries += 1
        try:
            await client.ping()
        except AdminError as exc:
            now = time.monotonic()
            if now - started > LOGIN_WAIT_S:
                raise HostStepError(
                    f"{client.label} did not log in within {LOGIN_WAIT_S:g}s: {exc}"
                ) from None
            if tries == 1 or tries % 10 == 0:
                ctx.log(f"not yet: {exc}")
            if now - looked >= LIVENESS_EVERY_S:
                looked = now
                await _still_running(ctx, placement)
            await asyncio.sleep(1)
            continue
        ctx.log(f"{client.label} logged in (try {tries})")
        return


async def set_proxyro_password(ctx: SubtaskContext, placement: Placement) -> None:
    """observer_sys_password = the proxyro password of the linked clusters, which OBProxy uses
    to read their metadata. Sent in plain text as OBD does: OBProxy hashes it itself."""
    client = await admin_client(ctx, placement)
    box = app(ctx).secrets
    proxyro = ctx.secret(await read(ctx, lambda s: proxyro_password(s, box, placement.cluster_id)))
    shown = await client.show_proxyconfig("observer_sys_password")
    if shown.get("observer_sys_password") == ctx.secret(cmdline.sha1_hex(proxyro)):
        ctx.log("observer_sys_password is already the proxyro password")
        return
    await client.alter_proxyconfig("observer_sys_password", proxyro)
    ctx.log(f"observer_sys_password set to the proxyro password on {client.label}")


async def sync_parameters(ctx: SubtaskContext, placement: Placement) -> None:
    """The cluster's runtime parameters, set where `show proxyconfig` differs."""
    wanted = await read(
        ctx,
        lambda s: [
            (p["name"], p["value"]) for p in records.get(s, placement.cluster_id).parameters
        ],
    )
    await set_parameters(ctx, placement, wanted)


async def set_parameters(
    ctx: SubtaskContext, placement: Placement, items: Sequence[tuple[str, str]]
) -> None:
    """`alter proxyconfig set` each item whose value `show proxyconfig` shows differently."""
    client = await admin_client(ctx, placement)
    if not items:
        ctx.log(f"no runtime parameter to set on {client.label}")
        return
    current = await client.show_proxyconfig()
    for name, value in items:
        if current.get(name) == value:
            ctx.log(f"{name} is already {value}")
            continue
        await client.alter_proxyconfig(name, value)
        ctx.log(f"alter proxyconfig set {name} = {value}")
