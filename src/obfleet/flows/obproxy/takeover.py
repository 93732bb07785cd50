""" "Take over obproxy": adopt one OBProxy already running on a host. Nothing is installed,
stopped or restarted; the process that served before serves after.

    Check obproxy to take over                  find it, prove it is OBProxy of this cluster
    Prepare take over obproxy                   the obproxy_server row, TAKINGOVER
    Set obproxy root password                   root@proxysys gets the cluster's password
    Set obproxy user and password for connect   observer_sys_password = the proxyro password
    Sync obproxy parameter                      the cluster's runtime parameters
    Update obproxy status                       RUNNING/NORMAL

What "Check" reads, and the problems it refuses (each message says what to do; the user guide's
take-over FAQ, guide/appendix/2000, lists the same kinds):

* the process listening on the SQL port (hosts/processes.py): nothing there, a process
  obfleet's SSH user cannot see, or several processes;
* its install path: its working directory, which must be the home of the bin/obproxy it runs
  (OBProxy keeps etc/, log/ and run/ under its working directory, and obfleet tells an OBProxy by
  it); a process without a bin/obproxy is not OBProxy; a deleted binary means it was replaced
  after the start; another user's process cannot be stopped by obfleet later (FAQ Q5);
* its version: `bin/obproxy -V` from that path (the banner, as OBD and obshell read it);
* root@proxysys logs in with the cluster's password, or else with the password of the OBPROXY
  credential given for this host (extension), or else with an empty one (OBProxy's default);
* its config (`show proxyconfig`), judged by obproxy/adoption.py: app name, work mode, linked
  OceanBase cluster and root servers, config URL, exporter port.

"Check" changes nothing and is read from scratch on every run, so after a fix on the host a
retry looks again. The row is this task's own by the id Prepare keeps in the task context
(`obproxy_server_id`, as install.py does); a row on the host and SQL port that is not this
task's own, or no longer TAKINGOVER, is never adopted.

Rollback: Update takes the row back as TAKINGOVER (refused when another operation holds it
now); Sync sets the cluster's runtime parameters back to the values Check found (Check keeps
them, so a Sync that failed half-way is undone too); the proxyro password is left (OBProxy
shows only its hash, which cannot be set back); the root password goes back to the one that
logged in; Prepare deletes the row it created. The process runs on throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from obfleet.engine.context import SubtaskContext
from obfleet.engine.definition import Subtask
from obfleet.engine.flow import Flow
from obfleet.flows.obproxy import acts, keys, steps
from obfleet.flows.runtime import StepError, app, connect, read, write
from obfleet.hosts import processes
from obfleet.hosts.processes import pids_text
from obfleet.hosts.shell import safe_path
from obfleet.obproxy import cmdline, discovery
from obfleet.obproxy.adoption import home_of, judge
from obfleet.records import host_access, packages
from obfleet.records import obproxy as records
from obfleet.records import obproxy_access as access
from obfleet.records import obproxy_lifecycle as lifecycle
from obfleet.records.obproxy import Placement, clash
from obfleet.store.models.obproxy import ObproxyCluster, ObproxyStatus

TAKINGOVER = ObproxyStatus.TAKINGOVER


def build(
    cluster: ObproxyCluster,
    host_id: int,
    address: str,
    sql_port: int,
    proxysys_credential_id: int | None,
) -> Flow:
    """Take over the OBProxy listening on `sql_port` of host `host_id` (at `address`)."""
    flow = Flow(keys.TAKE_OVER)
    flow.name_branch(-1, address)
    flow.set(keys.CLUSTER_ID, str(cluster.id))
    flow.set(keys.CLUSTER_NAME, cluster.name)
    flow.set(keys.NEED_DELETE_CLUSTER, "false")
    flow.set(keys.PROHIBIT_ROLLBACK, "false")
    flow.set(keys.HOST_ID, str(host_id))
    flow.set(keys.SQL_PORT, str(sql_port))
    if proxysys_credential_id is not None:
        flow.set(keys.PROXYSYS_CREDENTIAL_ID, str(proxysys_credential_id))
    flow.chain(*TAKE_OVER_CHAIN)
    return flow


# --- the task context and the metadb ------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    cluster_id: int
    host_id: int
    ip: str
    sql_port: int

    @property
    def label(self) -> str:
        return f"{self.ip}:{self.sql_port}"


async def _target(ctx: SubtaskContext) -> Target:
    host_id = int(ctx.require(keys.HOST_ID))
    ip = await read(ctx, lambda s: host_access.get_host(s, host_id).inner_ip_address)
    return Target(int(ctx.require(keys.CLUSTER_ID)), host_id, ip, int(ctx.require(keys.SQL_PORT)))


class OnTakenOver:
    """Once Check has run: the OBProxy's host, ports and install path."""

    async def where(self, ctx: SubtaskContext) -> Placement:
        target = await _target(ctx)
        return Placement(
            target.cluster_id,
            target.host_id,
            target.ip,
            target.sql_port,
            int(ctx.require(keys.EXPORTER_PORT)),
            safe_path(ctx.require(keys.INSTALL_PATH)),
        )


def _passwords(session: Session, ctx: SubtaskContext, cluster_id: int) -> list[tuple[str, str]]:
    given = ctx.get(keys.PROXYSYS_CREDENTIAL_ID)
    found = access.passwords_to_try(
        session, app(ctx).secrets, cluster_id, int(given) if given else None
    )
    for _, password in found:
        ctx.secret(password)
    return found


async def _password_of(ctx: SubtaskContext, source: str) -> str:
    cluster_id = int(ctx.require(keys.CLUSTER_ID))
    for name, password in await read(ctx, lambda s: _passwords(s, ctx, cluster_id)):
        if name == source:
            return password
    raise StepError(f"the {source} root@proxysys password is no longer available")


# --- the steps ----------------------------------------------------------------------------------


class CheckObproxyToTakeOver(Subtask):
    """Finds the OBProxy on the SQL port and proves it can join this cluster; records what it
    found in the task context. Reads only, from scratch on every run."""

    name = "Check obproxy to take over"
    timeout = 300

    async def execute(self, ctx: SubtaskContext) -> None:
        target = await _target(ctx)
        where = target.label
        conn = await connect(ctx, target.host_id)
        facts = await discovery.listener(conn, target.ip, target.sql_port, ctx.log)
        home = home_of(facts, where)
        version, build = await discovery.version(conn, facts, home, where, ctx.log)
        shown = f"{version}-{build}" if build else version
        from_flags = cmdline.parse_command_line(facts.argv[1:])
        others = [p for p in await processes.pids_in(conn, home) if p != facts.pid]
        ctx.log(
            f"OBProxy {shown} runs from {home} (pid {facts.pid})"
            + (f"; also running from there: pid {pids_text(others)}" if others else "")
        )

        passwords = await read(ctx, lambda s: _passwords(s, ctx, target.cluster_id))
        source, config = await discovery.log_in(target.ip, target.sql_port, passwords, ctx.log)
        ctx.log(f"root@proxysys logged in with the {source} password")
        settings = app(ctx).settings
        expected = await read(
            ctx, lambda s: access.expected(s, settings, target.cluster_id, target.sql_port)
        )
        verdict = judge(config, expected)
        flag_port = from_flags.get("prometheus_listen_port")
        if flag_port and verdict.exporter_port and flag_port != str(verdict.exporter_port):
            verdict.notes.append(
                f"its command line says -l {flag_port}, its config {verdict.exporter_port}"
            )
        run_user = await read(ctx, lambda s: records.get(s, target.cluster_id).run_user)
        if facts.user and facts.user != run_user:
            verdict.problems.append(
                f"it runs as {facts.user}, but OBProxy cluster {ctx.require(keys.CLUSTER_NAME)} "
                f"runs its obproxies as {run_user} (its runUser), as obfleet would restart it: "
                f"take it over with a cluster whose runUser is {facts.user}"
            )
        if verdict.exporter_port is not None:
            ports = (target.sql_port, verdict.exporter_port)
            reason = await read(ctx, lambda s: clash(s, target.host_id, ports, home))
            if reason:
                verdict.problems.append(f"{reason}: it cannot be recorded beside it")
        for note in verdict.notes:
            ctx.log(f"NOTE: {note}")
        for problem in verdict.problems:
            ctx.log(f"CHECK FAILED: {problem}")
        if verdict.problems:
            raise StepError(f"the OBProxy on {where}: " + "; ".join(verdict.problems))

        package = await read(ctx, lambda s: packages.of_version(s, version, build))
        names = [name for name, _ in await acts.cluster_parameters(ctx, target.cluster_id)]
        # The values Sync may change, as found: kept now, since a Sync that fails half-way
        # keeps nothing of its own; Sync's rollback sets them back.
        ctx.set_list(keys.PREVIOUS_PARAMETERS, [f"{n}={config[n]}" for n in names if n in config])
        ctx.set(keys.OBPROXY_PID, str(facts.pid))
        ctx.set(keys.INSTALL_PATH, home)
        ctx.set(keys.PACKAGE_VERSION, shown)
        ctx.set(keys.EXPORTER_PORT, str(verdict.exporter_port))
        ctx.set(keys.PROXYSYS_SOURCE, source)
        if package is not None:
            ctx.set(keys.PACKAGE_ID, str(package.id))
            ctx.set(keys.PACKAGE_NAME, package.name)
        ctx.log(
            f"OBProxy {shown} on {where} (exporter port {verdict.exporter_port}, app name "
            f"{config.get('app_name')}) can join OBProxy cluster {expected.cluster_name}"
            + (f"; its package is {package.file_name}" if package else "")
        )


class PrepareTakeOverObproxy(OnTakenOver, steps.ObproxyStep):
    """Records the obproxy (TAKINGOVER): from now on the cluster shows it."""

    name = "Prepare take over obproxy"
    timeout = 300

    async def execute(self, ctx: SubtaskContext) -> None:
        where = await self.where(ctx)
        version = ctx.require(keys.PACKAGE_VERSION)
        package = ctx.get(keys.PACKAGE_ID)
        package_id = int(package) if package else None
        server_id = await write(
            ctx,
            lambda s: lifecycle.record_taking_over(
                s, where, version, package_id, ctx.task_id, keys.SERVER_ID
            ),
        )
        ctx.set(keys.SERVER_ID, str(server_id))
        ctx.log(
            f"obproxy {server_id} recorded as TAKINGOVER: {where.ip}:{where.sql_port}, exporter "
            f"port {where.exporter_port}, install path {where.home}, version {version}"
        )

    async def rollback(self, ctx: SubtaskContext) -> None:
        where = await self.where(ctx)
        own = ctx.get(keys.SERVER_ID)
        server_id = await write(ctx, lambda s: lifecycle.delete_own_row(s, own, (TAKINGOVER,)))
        ctx.log(
            f"obproxy {server_id} on {where.ip}:{where.sql_port} forgotten (the process runs on)"
            if server_id
            else f"this task recorded no obproxy on {where.ip}:{where.sql_port}"
        )


class SetObproxyRootPassword(OnTakenOver, steps.ObproxyStep):
    """root@proxysys gets the cluster's password, the one obfleet uses for every obproxy of the
    cluster (health checks, restarts, upgrades)."""

    name = "Set obproxy root password"
    timeout = 60

    async def execute(self, ctx: SubtaskContext) -> None:
        where = await self.where(ctx)
        source = ctx.require(keys.PROXYSYS_SOURCE)
        wanted = await _password_of(ctx, discovery.CLUSTER)
        if source == discovery.CLUSTER or await acts.logs_in(ctx, where, wanted):
            ctx.log("root@proxysys already has the OBProxy cluster's password")
            return
        await acts.switch_proxysys_password(ctx, where, await _password_of(ctx, source), wanted)
        ctx.log(
            f"root@proxysys on {where.ip}:{where.sql_port}: the {source} password replaced by "
            "the OBProxy cluster's"
        )

    async def rollback(self, ctx: SubtaskContext) -> None:
        where = await self.where(ctx)
        source = ctx.get(keys.PROXYSYS_SOURCE)
        if source in (None, discovery.CLUSTER):
            return
        old = await _password_of(ctx, source)
        if await acts.logs_in(ctx, where, old):
            ctx.log(f"root@proxysys already has its {source} password")
            return
        await acts.switch_proxysys_password(
            ctx, where, await _password_of(ctx, discovery.CLUSTER), old
        )
        ctx.log(f"root@proxysys on {where.ip}:{where.sql_port} has its {source} password again")


class SetProxyroPassword(OnTakenOver, steps.SetProxyroPassword):
    pass


def _as_found(ctx: SubtaskContext) -> dict[str, str]:
    """The runtime parameters as Check found them: name -> value."""
    return dict(item.partition("=")[::2] for item in ctx.get_list(keys.PREVIOUS_PARAMETERS))


class SyncTakenOverParameters(OnTakenOver, steps.SyncObproxyParameter):
    """The cluster's runtime parameters, where `show proxyconfig` differs. Only parameters whose
    value Check kept are changed, so that a rollback can set each one back, even after a run
    that failed half-way (whose own context writes are dropped)."""

    timeout = 60

    async def execute(self, ctx: SubtaskContext) -> None:
        where = await self.where(ctx)
        wanted = await acts.cluster_parameters(ctx, where.cluster_id)
        current = await (await acts.admin_client(ctx, where)).show_proxyconfig() if wanted else {}
        found = _as_found(ctx)
        unknown = [
            name
            for name, value in wanted
            if name in current and current[name] != value and name not in found
        ]
        if unknown:
            raise StepError(
                f"the cluster's runtime parameters {', '.join(unknown)} were not read when the "
                "OBProxy was checked (the cluster's parameters changed since), so a rollback "
                "could not set them back: roll this task back and take the OBProxy over again"
            )
        await acts.set_parameters(ctx, where, wanted)

    async def rollback(self, ctx: SubtaskContext) -> None:
        found = _as_found(ctx)
        if found:
            where = await self.where(ctx)
            await acts.set_parameters(ctx, where, sorted(found.items()))


class UpdateTakenOverStatus(OnTakenOver, steps.UpdateObproxyStatus):
    """The OBProxy still serves on its SQL port: RUNNING/NORMAL."""

    async def execute(self, ctx: SubtaskContext) -> None:
        where = await self.where(ctx)
        conn = await connect(ctx, where.host_id)
        owners = await processes.port_owners(conn, [where.sql_port], ctx.log)
        if where.sql_port not in owners:
            raise StepError(
                f"nothing listens on {where.ip}:{where.sql_port} any more: the OBProxy stopped "
                "during the take-over; start it, then retry"
            )
        pids = [o.pid for o in owners[where.sql_port]]
        found = ctx.require(keys.OBPROXY_PID)
        if found not in map(str, pids):
            ctx.log(f"NOTE: pid {pids_text(pids)} holds the port now, not pid {found}")
        await super().execute(ctx)

    def record(self, session: Session, ctx: SubtaskContext, where: Placement) -> str:
        row = lifecycle.own_row(session, ctx.get(keys.SERVER_ID))
        server_id = lifecycle.record_taken_over(session, row, where)
        return (
            f"obproxy {server_id} ({ctx.require(keys.PACKAGE_VERSION)}) on "
            f"{where.ip}:{where.sql_port} is taken over: RUNNING"
        )

    def undo(self, session: Session, ctx: SubtaskContext, where: Placement) -> str | None:
        row = lifecycle.own_row(session, ctx.get(keys.SERVER_ID))
        if row is None:
            return None
        records.take_back(row, TAKINGOVER, ctx.task_id)
        return f"obproxy {row.id} is TAKINGOVER again"


TAKE_OVER_CHAIN: tuple[type[Subtask], ...] = (
    CheckObproxyToTakeOver,
    PrepareTakeOverObproxy,
    SetObproxyRootPassword,
    SetProxyroPassword,
    SyncTakenOverParameters,
    UpdateTakenOverStatus,
)
