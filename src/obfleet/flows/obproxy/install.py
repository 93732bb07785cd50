""" "Install obproxy": OBProxies from nothing to RUNNING, one chain per host (names from OCP's own
sample where one fits, ocp-api-notes.md §7):

    Prepare obproxy install                     the OBProxy cluster is recorded
    per host (a create: parallel branches, parallelIdx i = host i; batchAdd: one host a task):
      Prepare create obproxy                    the obproxy_server row, CREATING
      Check if process not exist                ports free, install path empty, run-as user there
      Install rpm by package and version        bin/ and lib/ of the RPM over SFTP, verified
      Start obproxy process                     the real command line (obproxy/cmdline.py)
      Wait for obproxy login                    root@proxysys logs in on the SQL port
      Set obproxy user and password for connect observer_sys_password = the proxyro password
      Sync obproxy parameter                    runtime parameters, ALTER PROXYCONFIG
      Update obproxy status                     version, RUNNING/NORMAL, parameter version
    Finish node

Which row is this task's own: the id Prepare recorded, kept in the task context under
`obproxy_server_id` (batchAdd) or `obproxy_server_id_<parallelIdx>` (a create's branches share
no keys), written in the very transaction that inserts the row (`engine.kept.keep`), so the row
and the task's claim on it commit together. A row on the same host and SQL port that is not
this task's own is never adopted: another task installs or takes over an OBProxy there, or one
runs there, and this task fails instead (its rollback then leaves the row be). Check marks the
row `install_checked` once it proved the path empty and the ports free: from then on what lies
in the install path is this obproxy's own, even if the install never finishes.

Idempotent: Prepare reuses its own row; Install skips files whose sha256 already matches; Start
does nothing when an OBProxy already runs from the install path; the password and parameters
are set only where `show proxyconfig` differs.

Rollback, downstreams first: Update takes the row back as DELETING (refused when another
operation holds it now), Start stops what runs from the install path, Install removes the
install path, Prepare deletes the row it created, and a create's first step forgets the
cluster. The steps in between only configure the process that Start's rollback stops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from obfleet.engine.context import SubtaskContext
from obfleet.engine.definition import Subtask
from obfleet.engine.flow import Flow
from obfleet.flows.obproxy import keys, steps
from obfleet.flows.runtime import StepError, connect, read, write
from obfleet.hosts import processes
from obfleet.hosts.shell import safe_path
from obfleet.hosts.users import user_exists
from obfleet.obproxy import layout
from obfleet.records import host_access
from obfleet.records import obproxy as records
from obfleet.records import obproxy_lifecycle as lifecycle
from obfleet.records.obproxy import Placement
from obfleet.store.models.obproxy import (
    ObproxyCluster,
    ObproxyStatus,
)
from obfleet.store.models.packages import SoftwarePackage

CREATING, DELETING = ObproxyStatus.CREATING, ObproxyStatus.DELETING
# The statuses of a row this chain created: DELETING when Update's rollback took it back.
OWN_STATUSES = (CREATING, DELETING)


@dataclass(frozen=True)
class Install:
    """What to install where, as the request checked it: from the request to the task context."""

    host_ids: list[int]
    sql_port: int
    exporter_port: int
    package: SoftwarePackage
    install_path: str = layout.DEFAULT_INSTALL_PATH  # the cluster's (obproxy/layout.py)
    host_addresses: Sequence[str] = ()  # of `host_ids`, in their order: to name the branches

    @property
    def home(self) -> str:
        return layout.home(self.install_path, self.package.version)

    @property
    def shown_version(self) -> str:
        return f"{self.package.version}-{self.package.build_number}"


def build(cluster: ObproxyCluster, install: Install | None, *, host_id: int | None = None) -> Flow:
    """A create's install (one branch per host of `install`, or none; rolling it back forgets
    the cluster), or batchAdd's for its one host `host_id`."""
    flow = Flow(keys.INSTALL)
    flow.set(keys.CLUSTER_ID, str(cluster.id))
    flow.set(keys.CLUSTER_NAME, cluster.name)
    flow.set(keys.NEED_DELETE_CLUSTER, "false" if host_id else "true")
    flow.set(keys.PROHIBIT_ROLLBACK, "false")
    if install is None:
        flow.chain(PrepareObproxyInstall, FinishInstall)
        return flow
    if host_id:
        flow.set(keys.HOST_ID, str(host_id))
    for key, value in (
        (keys.SQL_PORT, install.sql_port),
        (keys.EXPORTER_PORT, install.exporter_port),
        (keys.PACKAGE_ID, install.package.id),
        (keys.PACKAGE_NAME, install.package.name),
        (keys.PACKAGE_VERSION, install.shown_version),
        (keys.INSTALL_PATH, install.home),
    ):
        flow.set(key, str(value))
    if host_id:
        flow.name_branch(-1, install.host_addresses[install.host_ids.index(host_id)])
        flow.chain(PrepareObproxyInstall, *HOST_CHAIN, FinishInstall)
        return flow
    flow.set_list(keys.HOST_IDS, install.host_ids)
    flow.name_branches(install.host_addresses)
    prepare = flow.add(PrepareObproxyInstall)
    branches = flow.parallel(HOST_CHAIN, over=keys.HOST_IDS, after=prepare)
    flow.add(FinishInstall, after=branches)
    return flow


# --- where: this chain's host, ports and path ---------------------------------------------------


def server_id_key(ctx: SubtaskContext) -> str:
    """The context key of the row this chain created: one per branch of a parallel flow."""
    return keys.per_branch(keys.SERVER_ID, ctx.parallel_idx) if ctx.parallel else keys.SERVER_ID


class OnInstalled:
    """The OBProxy this chain installs: its host from the context, ports and path too."""

    async def where(self, ctx: SubtaskContext) -> Placement:
        host_id = int(ctx.item(keys.HOST_IDS) if ctx.parallel else ctx.require(keys.HOST_ID))
        ip = await read(ctx, lambda s: host_access.get_host(s, host_id).inner_ip_address)
        return Placement(
            cluster_id=int(ctx.require(keys.CLUSTER_ID)),
            host_id=host_id,
            ip=ip,
            sql_port=int(ctx.require(keys.SQL_PORT)),
            exporter_port=int(ctx.require(keys.EXPORTER_PORT)),
            home=safe_path(ctx.require(keys.INSTALL_PATH)),
        )


# --- the steps ----------------------------------------------------------------------------------


class PrepareObproxyInstall(Subtask):
    """The OBProxy cluster is recorded; rolling back a create forgets the cluster it created."""

    name = "Prepare obproxy install"
    timeout = 300

    async def execute(self, ctx: SubtaskContext) -> None:
        cluster_id = int(ctx.require(keys.CLUSTER_ID))
        version = await read(ctx, lambda s: records.get(s, cluster_id).parameter_version)
        ctx.log(
            f"OBProxy cluster {ctx.require(keys.CLUSTER_NAME)} (id {cluster_id}) is recorded, "
            f"parameter version {version}"
        )
        ctx.set(keys.PARAMETER_VERSION, str(version))

    async def rollback(self, ctx: SubtaskContext) -> None:
        if ctx.get(keys.NEED_DELETE_CLUSTER) != "true":
            return
        cluster_id = int(ctx.require(keys.CLUSTER_ID))
        if await write(ctx, lambda s: records.forget(s, cluster_id)):
            ctx.log(f"forgot OBProxy cluster {ctx.require(keys.CLUSTER_NAME)} (id {cluster_id})")


class PrepareCreateObproxy(OnInstalled, steps.ObproxyStep):
    """Records the obproxy (CREATING): from now on the cluster shows it."""

    name = "Prepare create obproxy"
    timeout = 1800

    async def execute(self, ctx: SubtaskContext) -> None:
        where = await self.where(ctx)
        package_id = int(ctx.require(keys.PACKAGE_ID))
        key = server_id_key(ctx)
        server_id = await write(
            ctx, lambda s: lifecycle.record_creating(s, where, package_id, ctx.task_id, key)
        )
        ctx.set(key, str(server_id))
        ctx.log(
            f"obproxy {server_id} recorded as CREATING: host {where.host_id} ({where.ip}), "
            f"SQL port {where.sql_port}, exporter port {where.exporter_port}, "
            f"install path {where.home}"
        )

    async def rollback(self, ctx: SubtaskContext) -> None:
        where = await self.where(ctx)
        own = ctx.get(server_id_key(ctx))
        server_id = await write(ctx, lambda s: lifecycle.delete_own_row(s, own, OWN_STATUSES))
        ctx.log(
            f"obproxy {server_id} on {where.ip}:{where.sql_port} deleted"
            if server_id
            else f"this task recorded no obproxy on {where.ip}:{where.sql_port}"
        )


class CheckProcessNotExist(OnInstalled, steps.ObproxyStep):
    """Nothing may hold the ports, no other OBProxy may live in the install path, and the
    run-as user must exist: checked before anything is sent, so a refusal leaves the host
    exactly as it was."""

    name = "Check if process not exist"
    timeout = 300

    async def execute(self, ctx: SubtaskContext) -> None:
        where = await self.where(ctx)
        conn = await connect(ctx, where.host_id)
        holders = await processes.port_holders(conn, where.ports, ctx.log)
        problems = [
            f"port {port} on {where.ip} is already in use by {', '.join(who)}"
            for port, who in sorted(holders.items())
        ]
        entries = await processes.path_entries(conn, where.home, ctx.log)
        if entries:
            problems.append(
                f"the install path {where.home} on {where.ip} is not empty "
                f"({', '.join(entries[:5])}): another OBProxy lives there"
            )
        user = await read(ctx, lambda s: records.get(s, where.cluster_id).run_user)
        if user != layout.ROOT and not await user_exists(conn, user, ctx.log):
            problems.append(
                f"user {user}, whom the obproxies of this cluster run as, does not exist on "
                f"{where.ip}: create it (Prepare host creates {layout.DEFAULT_RUN_USER} when "
                "obfleet logs in as root)"
            )
        for problem in problems:
            ctx.log(f"CHECK FAILED: {problem}")
        if problems:
            raise StepError("; ".join(problems))
        own = ctx.get(server_id_key(ctx))
        await write(ctx, lambda s: lifecycle.mark_checked(s, own))
        ctx.log(
            f"ports {where.sql_port} and {where.exporter_port} are free on {where.ip}, "
            f"and {where.home} holds no OBProxy"
        )


class InstallPackage(OnInstalled, steps.InstallPackage):
    pass


class StartObproxy(OnInstalled, steps.StartObproxy):
    pass


class WaitObproxyLogin(OnInstalled, steps.WaitObproxyLogin):
    pass


class SetProxyroPassword(OnInstalled, steps.SetProxyroPassword):
    pass


class SyncObproxyParameter(OnInstalled, steps.SyncObproxyParameter):
    pass


class UpdateObproxyStatus(OnInstalled, steps.UpdateObproxyStatus):
    """Records the running obproxy: version, RUNNING/NORMAL, the cluster's parameter version."""

    def record(self, session: Session, ctx: SubtaskContext, where: Placement) -> str:
        version = ctx.require(keys.PACKAGE_VERSION)
        row = lifecycle.own_row(session, ctx.get(server_id_key(ctx)))
        server_id = lifecycle.record_installed(session, row, where, version)
        return f"obproxy {server_id} ({version}) on {where.ip}:{where.sql_port} is RUNNING"

    def undo(self, session: Session, ctx: SubtaskContext, where: Placement) -> str | None:
        row = lifecycle.own_row(session, ctx.get(server_id_key(ctx)))
        if row is None:
            return None
        lifecycle.unrecord_installed(row, ctx.task_id)
        return f"obproxy {row.id} on {where.ip}:{where.sql_port} is DELETING"


class FinishInstall(steps.FinishNode):
    def summary(self, ctx: SubtaskContext) -> str:
        return f"OBProxy cluster {ctx.require(keys.CLUSTER_NAME)} is ready"


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
