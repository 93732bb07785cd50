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
`ctx.require(HOST_ID)` in batchAdd's one-host tasks.

Which row is this task's own: the id Prepare recorded, kept in the task context under
`obproxy_server_id` (batchAdd) or `obproxy_server_id_<parallelIdx>` (a create's branches: the
branches of one task share no keys). Prepare writes that key in the very transaction that
inserts the row (`engine.kept.keep`), not only with the run's context writes, which a run that
fails after the insert (a timeout, a lost node) would drop: the row and the task's claim on it
are committed together or not at all. A row on the same host and SQL port that is not this
task's own is never adopted: it belongs to another task installing or taking over an OBProxy
there, or to one that runs there, and this task fails instead (a rollback then leaves it be).

The acts on the host are in flows/obproxy_host.py, shared with the other OBProxy tasks.

Idempotent: every step looks before it acts. Prepare reuses its own row; Install skips files
whose sha256 already matches; Start does nothing when an OBProxy already runs from the install
path; the password and parameters are set only where `show proxyconfig` differs.

Rollback, downstreams first: Update takes the row back as DELETING (refused when another
operation holds it now), Start stops every process running from the install path, Install
removes the install path, Prepare deletes the row it created. The steps in between only
configure the process that Start's rollback stops and Install's rollback deletes, so they have
nothing of their own to undo. What belongs to this install is decided by the install path: the
check proved it empty before anything was sent, and Prepare refused to share it with any other
recorded OBProxy on the host.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from obfleet.engine.context import SubtaskContext
from obfleet.engine.definition import Subtask
from obfleet.flows import obproxy_host as host
from obfleet.flows.obproxy_cluster import CLUSTER_ID
from obfleet.flows.obproxy_host import HostStepError
from obfleet.hosts.shell import safe_path
from obfleet.records import host_access
from obfleet.records import obproxy as records
from obfleet.records.obproxy import Placement, own_row
from obfleet.store.models.obproxy import ObproxyOrigin, ObproxyServer, ObproxyStatus

# Task context keys (stringMap unless noted); OCP's install samples use the same names.
HOST_IDS = "host_ids"  # listMap: one parallel branch per host (cluster create)
HOST_ID = "host_id"  # the one host of a batchAdd task
SQL_PORT = "sql_port"
EXPORTER_PORT = "exporter_port"
PACKAGE_ID = "package_id"
PACKAGE_NAME = "package_name"
PACKAGE_VERSION = "package_version"  # <version>-<buildNumber>, as OBProxy versions are shown
INSTALL_PATH = "install_path"
SERVER_ID = "obproxy_server_id"  # the row this task created; a branch's: server_id_key()
CREATING = ObproxyStatus.CREATING
# The statuses of a row this chain created: DELETING when Update's rollback took it back.
OWN_STATUSES = (CREATING, ObproxyStatus.DELETING)


async def _placement(ctx: SubtaskContext) -> Placement:
    """The host, ports and path this chain installs to, from the task context."""
    host_id = int(ctx.item(HOST_IDS) if ctx.parallel else ctx.require(HOST_ID))
    ip = await host.read(ctx, lambda s: host_access.get_host(s, host_id).inner_ip_address)
    return Placement(
        cluster_id=int(ctx.require(CLUSTER_ID)),
        host_id=host_id,
        ip=ip,
        sql_port=int(ctx.require(SQL_PORT)),
        exporter_port=int(ctx.require(EXPORTER_PORT)),
        home=safe_path(ctx.require(INSTALL_PATH)),
    )


# --- the metadb --------------------------------------------------------------------------------


def server_id_key(ctx: SubtaskContext) -> str:
    """The context key of the row this chain created: one per branch of a parallel flow."""
    return f"{SERVER_ID}_{ctx.parallel_idx}" if ctx.parallel else SERVER_ID


def held_elsewhere(row: ObproxyServer, doing: str) -> HostStepError:
    """The error for a row at this task's host and SQL port that is not this task's own."""
    return HostStepError(
        f"{row.ip}:{row.sql_port} is already recorded as obproxy {row.id} (another task is "
        f"{doing} or it runs there); this task leaves it alone"
    )


def _record_creating(
    session: Session, placement: Placement, package_id: int, task_id: int, key: str
) -> int:
    own = records.own_server_id(session, task_id, key)
    row = records.recorded_at(session, placement)
    if row is not None:
        if row.id != own or row.cluster_id != placement.cluster_id:
            raise held_elsewhere(row, "installing it")
        if row.status != CREATING:
            raise HostStepError(
                f"obproxy {row.id} on {row.ip}:{row.sql_port}, recorded by this task, is "
                f"{row.status} now: another operation holds it"
            )
        return row.id
    return records.record_new(
        session,
        placement,
        CREATING,
        task_id,
        key,
        origin=ObproxyOrigin.INSTALL,
        package_id=package_id,
        version=None,
    )


def _record_running(
    session: Session, placement: Placement, server_id: str | None, version: str
) -> int:
    row = own_row(session, server_id)
    if row is not None:
        if row.status != CREATING and row.status not in records.SETTLED:
            raise HostStepError(
                f"obproxy {row.id} on {row.ip}:{row.sql_port} is {row.status}: another "
                "operation holds it now"
            )
        row.version = version
    return records.record_running(session, row, placement)


def _mark_deleting(session: Session, server_id: str | None, task_id: int) -> int | None:
    row = own_row(session, server_id)
    if row is None:
        return None
    if row.status == CREATING:  # Update never released it: still this install's own
        records.set_status(row, ObproxyStatus.DELETING, task_id)
    else:
        records.take_back(row, ObproxyStatus.DELETING, task_id)
    return row.id


def _mark_checked(session: Session, server_id: str | None) -> None:
    """The install path is proven this row's own: empty, ports free, before anything shipped."""
    row = own_row(session, server_id)
    if row is None:
        raise HostStepError(f"obproxy {server_id} recorded by this task is no longer recorded")
    row.install_checked = True


# --- the steps ----------------------------------------------------------------------------------


class PrepareCreateObproxy(Subtask):
    """Records the obproxy (CREATING): from now on the cluster shows it."""

    name = "Prepare create obproxy"
    timeout = 1800

    async def execute(self, ctx: SubtaskContext) -> None:
        where = await _placement(ctx)
        package_id = int(ctx.require(PACKAGE_ID))
        key = server_id_key(ctx)
        server_id = await host.write(
            ctx, lambda s: _record_creating(s, where, package_id, ctx.task_id, key)
        )
        ctx.set(key, str(server_id))
        ctx.log(
            f"obproxy {server_id} recorded as CREATING: host {where.host_id} ({where.ip}), "
            f"SQL port {where.sql_port}, exporter port {where.exporter_port}, "
            f"install path {where.home}"
        )

    async def rollback(self, ctx: SubtaskContext) -> None:
        where = await _placement(ctx)
        server_id = await host.write(
            ctx, lambda s: records.delete_own_row(s, ctx.get(server_id_key(ctx)), OWN_STATUSES)
        )
        ctx.log(
            f"obproxy {server_id} on {where.ip}:{where.sql_port} deleted"
            if server_id
            else f"this task recorded no obproxy on {where.ip}:{where.sql_port}"
        )


class CheckProcessNotExist(Subtask):
    """Nothing may hold the ports, and no other OBProxy may live in the install path: checked
    before anything is sent, so a refusal leaves the host exactly as it was."""

    name = "Check if process not exist"
    timeout = 300

    async def execute(self, ctx: SubtaskContext) -> None:
        where = await _placement(ctx)
        conn = await host.connect(ctx, where)
        problems = [
            f"port {port} on {where.ip} is already in use by {', '.join(holders)}"
            for port, holders in sorted((await host.port_holders(conn, ctx, where.ports)).items())
        ]
        entries = await host.path_entries(conn, ctx, where.home)
        if entries:
            problems.append(
                f"the install path {where.home} on {where.ip} is not empty "
                f"({', '.join(entries[:5])}): another OBProxy lives there"
            )
        for problem in problems:
            ctx.log(f"CHECK FAILED: {problem}")
        if problems:
            raise HostStepError("; ".join(problems))
        await host.write(ctx, lambda s: _mark_checked(s, ctx.get(server_id_key(ctx))))
        ctx.log(
            f"ports {where.sql_port} and {where.exporter_port} are free on {where.ip}, "
            f"and {where.home} holds no OBProxy"
        )


class InstallPackage(Subtask):
    """Ships bin/ and lib/ of the RPM, read once on the obfleet side; no rpm on the host."""

    name = "Install rpm by package and version"
    timeout = 3600

    async def execute(self, ctx: SubtaskContext) -> None:
        await host.ship_package(ctx, await _placement(ctx), int(ctx.require(PACKAGE_ID)))

    async def rollback(self, ctx: SubtaskContext) -> None:
        await host.remove_home(ctx, await _placement(ctx))


class StartObproxy(Subtask):
    """Starts OBProxy with its real command line; it daemonizes and the command returns."""

    name = "Start obproxy process"
    timeout = 600

    async def execute(self, ctx: SubtaskContext) -> None:
        await host.start_process(ctx, await _placement(ctx))

    async def rollback(self, ctx: SubtaskContext) -> None:
        await host.stop_process(ctx, await _placement(ctx))


class WaitObproxyLogin(Subtask):
    """OBProxy is up when root@proxysys can log in on its SQL port."""

    name = "Wait for obproxy login"
    timeout = 300

    async def execute(self, ctx: SubtaskContext) -> None:
        await host.wait_login(ctx, await _placement(ctx))


class SetProxyroPassword(Subtask):
    """observer_sys_password = the proxyro password of the linked clusters."""

    name = "Set obproxy user and password for connect"
    timeout = 30

    async def execute(self, ctx: SubtaskContext) -> None:
        await host.set_proxyro_password(ctx, await _placement(ctx))


class SyncObproxyParameter(Subtask):
    """The cluster's runtime parameters, set where `show proxyconfig` differs."""

    name = "Sync obproxy parameter"
    timeout = 30

    async def execute(self, ctx: SubtaskContext) -> None:
        await host.sync_parameters(ctx, await _placement(ctx))


class UpdateObproxyStatus(Subtask):
    """Records the running obproxy: version, RUNNING/NORMAL, the cluster's parameter version."""

    name = "Update obproxy status"
    timeout = 300

    async def execute(self, ctx: SubtaskContext) -> None:
        where = await _placement(ctx)
        version = ctx.require(PACKAGE_VERSION)
        own = ctx.get(server_id_key(ctx))
        server_id = await host.write(ctx, lambda s: _record_running(s, where, own, version))
        ctx.log(f"obproxy {server_id} ({version}) on {where.ip}:{where.sql_port} is RUNNING")

    async def rollback(self, ctx: SubtaskContext) -> None:
        where = await _placement(ctx)
        own = ctx.get(server_id_key(ctx))
        server_id = await host.write(ctx, lambda s: _mark_deleting(s, own, ctx.task_id))
        if server_id:
            ctx.log(f"obproxy {server_id} on {where.ip}:{where.sql_port} is DELETING")


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
