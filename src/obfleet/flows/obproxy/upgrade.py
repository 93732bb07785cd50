""" "Upgrade obproxy": each obproxy of the task moves to the new version, one after the other, and
a rollback brings the old version back.

    Prepare upgrade obproxy                     the rows, credentials, start specs: all usable
    per obproxy (parallelIdx i, chained one after the other):
      Check upgrade install path                no process runs from the new install path
      Install rpm by package and version        bin/ and lib/ of the new RPM beside the old ones
      Stop obproxy process                      the old process (and anything from its path)
      Copy obproxy config                       etc/ (its persisted config) from old to new
      Start obproxy process                     the new binary, same command line (ports, app
                                                name, startup parameters, root@proxysys)
      Wait for obproxy login                    root@proxysys logs in on the same SQL port
      Set obproxy user and password for connect observer_sys_password = the proxyro password
      Sync obproxy parameter                    the cluster's runtime parameters
      Update obproxy status                     new version, package and install path; RUNNING
    Remove old obproxy install                  every old install path no obproxy uses any more
    Finish node

The new version lives beside the old one (/home/admin/obproxy-<new version>) until every
obproxy of the task runs it: until then a rollback starts the old one again from its own files.
Only then are the old install paths removed; from that step on the upgrade is done and cannot
be rolled back (the way back is an upgrade to the old package).

A branch's old install path, version and package are the same position in `old_install_paths`,
`old_versions` and `old_package_ids`, fixed when the task was submitted, so a rollback knows
where to go back to even after the row was updated.

Rollback, in reverse: Update puts the row back on the old version, package and path; Start stops
the new process; Stop starts the old one again from its own path and waits for its login; Install
removes what it added to the new install path; Prepare settles the statuses by a login.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from obfleet.engine.context import SubtaskContext
from obfleet.engine.definition import Subtask
from obfleet.engine.flow import Flow
from obfleet.flows.obproxy import acts, keys, restart, steps
from obfleet.flows.runtime import StepError, app, connect, read
from obfleet.hosts import processes
from obfleet.hosts.processes import COMMAND_TIMEOUT_S, pids_in, pids_text
from obfleet.hosts.shell import command, quote, safe_path
from obfleet.obproxy import layout
from obfleet.records import obproxy_access as access
from obfleet.records import obproxy_lifecycle as lifecycle
from obfleet.records.obproxy import Placement
from obfleet.store.models.obproxy import ObproxyCluster, ObproxyServer, ObproxyStatus
from obfleet.store.models.packages import SoftwarePackage

# What OBProxy keeps under its working directory besides its logs: etc/ holds the persisted
# config (obproxy_config.bin, proxyconfig.db); the others appear with some features.
CONFIG_DIRS = ("etc", ".conf", "control-config", "sharding-config")
# What an OBProxy install holds: a new install path holding any of them is another OBProxy's.
INSTALL_DIRS = ("bin", "lib", *CONFIG_DIRS)


def build(
    cluster: ObproxyCluster,
    rows: Sequence[ObproxyServer],
    package: SoftwarePackage,
    shown_version: str,
) -> Flow:
    """`rows` (read before the request marked them) to `package`, one after the other."""
    flow = Flow(keys.UPGRADE)
    restart.mark(flow, cluster, rows, ObproxyStatus.UPGRADING)
    flow.set(keys.PACKAGE_ID, str(package.id))
    flow.set(keys.PACKAGE_NAME, package.name)
    flow.set(keys.PACKAGE_VERSION, shown_version)
    flow.set(keys.INSTALL_PATH, layout.home(cluster.install_path, package.version))
    flow.set_list(keys.OLD_INSTALL_PATHS, [r.install_path for r in rows])
    flow.set_list(keys.OLD_VERSIONS, [r.version or "" for r in rows])
    flow.set_list(keys.OLD_PACKAGE_IDS, [r.package_id or "" for r in rows])
    last = restart.one_after_another(flow, OBPROXY_CHAIN, after=flow.add(PrepareUpgrade))
    flow.chain(RemoveOldInstall, FinishUpgrade, after=last)
    return flow


@dataclass(frozen=True)
class Move:
    """One obproxy's upgrade: where it runs now, where it will run."""

    obproxy_id: int
    old: Placement
    new: Placement
    old_version: str | None
    old_package_id: int | None

    @property
    def label(self) -> str:
        return f"obproxy {self.obproxy_id} on {self.old.ip}:{self.old.sql_port}"


def _move_of(session: Session, ctx: SubtaskContext, index: int) -> Move:
    obproxy_id = int(ctx.get_list(keys.SERVER_IDS)[index])
    row = lifecycle.in_cluster(session, int(ctx.require(keys.CLUSTER_ID)), obproxy_id)
    old_package = ctx.get_list(keys.OLD_PACKAGE_IDS)[index]
    return Move(
        obproxy_id=obproxy_id,
        old=Placement.of(row, home=safe_path(ctx.get_list(keys.OLD_INSTALL_PATHS)[index])),
        new=Placement.of(row, home=safe_path(ctx.require(keys.INSTALL_PATH))),
        old_version=ctx.get_list(keys.OLD_VERSIONS)[index] or None,
        old_package_id=int(old_package) if old_package else None,
    )


async def _move(ctx: SubtaskContext) -> Move:
    """This branch's obproxy."""
    return await read(ctx, lambda s: _move_of(s, ctx, ctx.parallel_idx))


class OnOld:
    async def where(self, ctx: SubtaskContext) -> Placement:
        return (await _move(ctx)).old


class OnNew:
    async def where(self, ctx: SubtaskContext) -> Placement:
        return (await _move(ctx)).new


class PrepareUpgrade(Subtask):
    """Everything the upgrade needs from obfleet, before any obproxy is touched: the rows, the
    package, the root@proxysys and proxyro credentials, and each new start command line (in
    CONFIG_URL mode it needs OBFLEET_ADVERTISE_URL)."""

    name = "Prepare upgrade obproxy"
    timeout = 300

    async def execute(self, ctx: SubtaskContext) -> None:
        obfleet = app(ctx)
        cluster_id = int(ctx.require(keys.CLUSTER_ID))
        package_id = int(ctx.require(keys.PACKAGE_ID))

        def check(session: Session) -> list[str]:
            package = session.get(SoftwarePackage, package_id)
            if package is None:
                raise StepError(f"package {package_id} was deleted since the upgrade began")
            access.proxyro_password(session, obfleet.secrets, cluster_id)
            plan = []
            for index in range(len(ctx.get_list(keys.SERVER_IDS))):
                move = _move_of(session, ctx, index)
                access.start_spec(session, obfleet.secrets, obfleet.settings, move.new)
                plan.append(
                    f"{move.label}: {move.old_version} in {move.old.home} -> "
                    f"{ctx.require(keys.PACKAGE_VERSION)} ({package.file_name}) in {move.new.home}"
                )
            return plan

        for line in await read(ctx, check):
            ctx.log(line)
        ctx.log(f"upgrading OBProxy cluster {ctx.require(keys.CLUSTER_NAME)}, one at a time")

    async def rollback(self, ctx: SubtaskContext) -> None:
        # Each one back on its old version gets the status a login says (RUNNING/UNAVAILABLE).
        await steps.settle(ctx)


def _kept_entries_key(ctx: SubtaskContext) -> str:
    """Where this branch's Check keeps what the new install path held before the upgrade."""
    return keys.per_branch(keys.NEW_PATH_ENTRIES, ctx.parallel_idx)


class CheckUpgradePath(OnNew, steps.ObproxyStep):
    """No process may run from the new install path: obfleet tells an OBProxy by its working
    directory, and the new process must be the only one there."""

    name = "Check upgrade install path"
    timeout = 300

    async def execute(self, ctx: SubtaskContext) -> None:
        new = await self.where(ctx)
        conn = await connect(ctx, new.host_id)
        home = new.home
        kind = await conn.run(
            f"if [ -e {quote(home)} ] && [ ! -d {quote(home)} ]; then echo file; fi",
            timeout=COMMAND_TIMEOUT_S,
            log=ctx.log,
        )
        if kind.stdout.strip():
            raise StepError(
                f"{home} on {new.ip} is a file, not a directory: the new version installs "
                "there. Move it away, then retry"
            )
        running = await pids_in(conn, home)
        if running:
            raise StepError(
                f"pid {pids_text(running)} run from {home} on {new.ip}, where the new "
                "version is to be installed: stop them (or tell obfleet about that OBProxy), "
                "then retry"
            )
        entries = await processes.path_entries(conn, home, ctx.log)
        installed = sorted(set(entries) & set(INSTALL_DIRS))
        if installed:
            raise StepError(
                f"{home} on {new.ip} already holds an OBProxy install "
                f"({', '.join(d + '/' for d in installed)}), not obfleet's: the upgrade would "
                "overwrite it. Move it away (or take that OBProxy over), then retry"
            )
        # What was there stays there: a rollback removes only what the upgrade added.
        ctx.set(_kept_entries_key(ctx), ",".join(entries))
        ctx.log(
            f"{home} already holds {', '.join(entries)}; they stay as they are"
            if entries
            else f"{home} is free on {new.ip}"
        )


class InstallNewPackage(OnNew, steps.InstallPackage):
    """bin/ and lib/ of the new RPM into the new install path. Its rollback removes only what
    the upgrade added there."""

    async def rollback(self, ctx: SubtaskContext) -> None:
        new = await self.where(ctx)
        users = await read(ctx, lambda s: lifecycle.home_users(s, new.host_id, new.home))
        if users:
            ctx.log(
                f"{new.home} is the recorded install path of obproxy "
                f"{', '.join(map(str, users))}; leaving it"
            )
            return
        before = ctx.get(_kept_entries_key(ctx), "")
        if not before:
            await acts.remove_home(ctx, new)
            return
        kept = before.split(",")
        conn = await connect(ctx, new.host_id)
        added = [e for e in await processes.path_entries(conn, new.home, ctx.log) if e not in kept]
        await conn.run(
            command("rm", "-rf", "--", *(f"{new.home}/{e}" for e in added)) if added else "true",
            timeout=COMMAND_TIMEOUT_S,
            log=ctx.log,
        )
        ctx.log(f"removed {', '.join(added) or 'nothing'} from {new.home}; {', '.join(kept)} stay")


class StopOldObproxy(OnOld, steps.StopObproxy):
    """Stops the old process, and anything else running from its install path."""


class CopyObproxyConfig(Subtask):
    """OBProxy's persisted config goes with it: etc/ (and the other config directories it keeps
    under its working directory) from the old install path to the new one."""

    name = "Copy obproxy config"
    timeout = 300

    async def execute(self, ctx: SubtaskContext) -> None:
        move = await _move(ctx)
        conn = await connect(ctx, move.new.host_id)
        running = await pids_in(conn, move.new.home)
        if running:
            ctx.log(f"the new OBProxy already runs (pid {pids_text(running)}); not copying")
            return
        old, new = move.old.home, move.new.home
        copies = [
            f"if [ -d {quote(f'{old}/{d}')} ]; then "
            f"{command('rm', '-rf', '--', f'{new}/{d}')} && "
            f"{command('cp', '-a', '--', f'{old}/{d}', f'{new}/{d}')} && echo {quote(d)}; fi"
            for d in CONFIG_DIRS
        ]
        result = await conn.run(" && ".join(copies), timeout=COMMAND_TIMEOUT_S * 5, log=ctx.log)
        copied = result.stdout.split()
        ctx.log(
            f"copied {', '.join(copied)} from {old} to {new}"
            if copied
            else f"{old} holds no OBProxy config to copy"
        )


class StartNewObproxy(OnNew, steps.StartObproxy):
    """The new binary from the new install path, with the cluster's command line: the same
    ports, app name, startup parameters and root@proxysys password as the old one."""


class WaitNewLogin(OnNew, steps.WaitObproxyLogin):
    pass


class SetNewProxyroPassword(OnNew, steps.SetProxyroPassword):
    pass


class SyncNewParameters(OnNew, steps.SyncObproxyParameter):
    pass


class UpdateUpgradedStatus(OnNew, steps.UpdateObproxyStatus):
    """Records the new version, package and install path; the obproxy is RUNNING again."""

    def record(self, session: Session, ctx: SubtaskContext, where: Placement) -> str:
        move = _move_of(session, ctx, ctx.parallel_idx)
        row = lifecycle.in_cluster(session, where.cluster_id, move.obproxy_id)
        version = ctx.require(keys.PACKAGE_VERSION)
        package_id = int(ctx.require(keys.PACKAGE_ID))
        lifecycle.record_upgraded(session, row, where, version, package_id)
        return f"{move.label} runs {version} from {where.home}: RUNNING"

    def undo(self, session: Session, ctx: SubtaskContext, where: Placement) -> str | None:
        move = _move_of(session, ctx, ctx.parallel_idx)
        row = lifecycle.in_cluster(session, where.cluster_id, move.obproxy_id)
        lifecycle.unrecord_upgraded(
            session, row, ctx.task_id, move.old, move.old_version, move.old_package_id
        )
        return f"{move.label} is recorded on {move.old_version} in {move.old.home} again"


class RemoveOldInstall(Subtask):
    """The old install paths, once every obproxy of the task runs the new version; a path that
    a recorded obproxy still uses (or that a process still runs from) stays."""

    name = "Remove old obproxy install"
    timeout = 1800
    prohibit_rollback = True  # the old files are gone: nothing to go back to

    async def execute(self, ctx: SubtaskContext) -> None:
        def plan(session: Session) -> list[tuple[Placement, list[int]]]:
            count = len(ctx.get_list(keys.SERVER_IDS))
            moves = [_move_of(session, ctx, i) for i in range(count)]
            return [
                (m.old, lifecycle.home_users(session, m.old.host_id, m.old.home))
                for m in moves
                if m.old.home != m.new.home
            ]

        for old, users in await read(ctx, plan):
            if users:
                ctx.log(
                    f"{old.home} on {old.ip} is the install path of obproxy "
                    f"{', '.join(map(str, users))}; leaving it"
                )
                continue
            await acts.remove_home(ctx, old)


class FinishUpgrade(steps.FinishNode):
    def summary(self, ctx: SubtaskContext) -> str:
        count = len(ctx.get_list(keys.SERVER_IDS))
        return f"{count} obproxy(ies) of {ctx.require(keys.CLUSTER_NAME)} run the new version"


OBPROXY_CHAIN: tuple[type[Subtask], ...] = (
    CheckUpgradePath,
    InstallNewPackage,
    StopOldObproxy,
    CopyObproxyConfig,
    StartNewObproxy,
    WaitNewLogin,
    SetNewProxyroPassword,
    SyncNewParameters,
    UpdateUpgradedStatus,
)
