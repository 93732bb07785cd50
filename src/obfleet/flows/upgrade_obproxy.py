"""The steps of "Upgrade obproxy": each obproxy of the task moves to the new version, one after
the other, and a rollback brings the old version back.

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
Only then are the old install paths removed, so hosts keep one install per obproxy and a later
delete leaves them clean; from that step on the upgrade is done and cannot be rolled back (the
way back is an upgrade to the old package).

Which obproxy a branch works on is `ctx.item(obproxy_server_ids)`; its old install path,
version and package are the same position in `old_install_paths`, `old_versions` and
`old_package_ids`, fixed when the task was submitted, so a rollback knows where to go back to
even after the row was updated.

Rollback, in reverse: Update puts the row back on the old version, package and path; Start stops
the new process; Stop starts the old one again from its own path and waits for its login; Install
removes the new install path; Prepare marks the rows RUNNING/NORMAL again. The other steps only
configure the new process, which goes away with its files.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from obfleet.engine.context import SubtaskContext
from obfleet.engine.definition import Subtask
from obfleet.flows import obproxy_host as host
from obfleet.flows import restart_obproxy as restart
from obfleet.flows.install_obproxy import INSTALL_PATH, PACKAGE_ID, PACKAGE_VERSION
from obfleet.flows.obproxy_cluster import CLUSTER_ID, CLUSTER_NAME
from obfleet.flows.obproxy_host import HostStepError, Placement
from obfleet.hosts.shell import command, quote, safe_path
from obfleet.records import obproxy as records
from obfleet.store.models.obproxy import ObproxyServer, ObproxyStatus
from obfleet.store.models.packages import SoftwarePackage

# Task context (listMap, one element per obproxy, in branch order). OCP's Offline obproxy
# sample names the first two.
OBPROXY_IDS = restart.SERVER_IDS
PREVIOUS_STATUSES = restart.PREVIOUS_STATUSES  # listMap: each one's status before the task
HOST_IDS = "host_ids"
OLD_INSTALL_PATHS = "old_install_paths"
OLD_VERSIONS = "old_versions"
OLD_PACKAGE_IDS = "old_package_ids"

# What OBProxy keeps under its working directory besides its logs: etc/ holds the persisted
# config (obproxy_config.bin, proxyconfig.db); the others appear with some features.
CONFIG_DIRS = ("etc", ".conf", "control-config", "sharding-config")
# What an OBProxy install holds: a new install path holding any of them is another OBProxy's.
INSTALL_DIRS = ("bin", "lib", *CONFIG_DIRS)


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


def _row(session: Session, cluster_id: int, obproxy_id: int) -> ObproxyServer:
    row = session.get(ObproxyServer, obproxy_id)
    if row is None or row.cluster_id != cluster_id:
        raise HostStepError(f"obproxy {obproxy_id} is no longer recorded in cluster {cluster_id}")
    return row


def _move_of(session: Session, ctx: SubtaskContext, index: int) -> Move:
    cluster_id = int(ctx.require(CLUSTER_ID))
    obproxy_id = int(ctx.get_list(OBPROXY_IDS)[index])
    row = _row(session, cluster_id, obproxy_id)
    old_package = ctx.get_list(OLD_PACKAGE_IDS)[index]
    return Move(
        obproxy_id=obproxy_id,
        old=Placement.of(row, home=safe_path(ctx.get_list(OLD_INSTALL_PATHS)[index])),
        new=Placement.of(row, home=safe_path(ctx.require(INSTALL_PATH))),
        old_version=ctx.get_list(OLD_VERSIONS)[index] or None,
        old_package_id=int(old_package) if old_package else None,
    )


def _kept_entries_key(ctx: SubtaskContext) -> str:
    """Where this branch's Check keeps what the new install path held before the upgrade."""
    return f"new_install_path_entries_{ctx.parallel_idx}"


async def _move(ctx: SubtaskContext) -> Move:
    """This branch's obproxy."""
    return await host.read(ctx, lambda s: _move_of(s, ctx, ctx.parallel_idx))


# --- the metadb --------------------------------------------------------------------------------


def _record_new(session: Session, move: Move, package_id: int, version: str) -> None:
    row = _row(session, move.new.cluster_id, move.obproxy_id)
    row.version = version
    row.package_id = package_id if session.get(SoftwarePackage, package_id) else None
    row.install_path = move.new.home
    records.record_alive(session, row)


def _record_old(session: Session, move: Move, task_id: int) -> None:
    row = _row(session, move.old.cluster_id, move.obproxy_id)
    records.take_back(row, ObproxyStatus.UPGRADING, task_id)
    row.version = move.old_version
    # The old package may have been deleted since (it was no longer in use): keep no dangling id.
    old = move.old_package_id
    kept = old is not None and session.get(SoftwarePackage, old) is not None
    row.package_id = old if kept else None
    row.install_path = move.old.home


def _home_users(session: Session, host_id: int, home: str) -> list[int]:
    return list(
        session.scalars(
            select(ObproxyServer.id).where(
                ObproxyServer.host_id == host_id, ObproxyServer.install_path == home
            )
        )
    )


# --- the steps ----------------------------------------------------------------------------------


class PrepareUpgrade(Subtask):
    """Everything the upgrade needs from obfleet, before any obproxy is touched: the rows, the
    package, the root@proxysys and proxyro credentials, and each new start command line (in
    CONFIG_URL mode it needs OBFLEET_ADVERTISE_URL)."""

    name = "Prepare upgrade obproxy"
    timeout = 300

    async def execute(self, ctx: SubtaskContext) -> None:
        obfleet = host.app(ctx)
        cluster_id = int(ctx.require(CLUSTER_ID))
        package_id = int(ctx.require(PACKAGE_ID))

        def check(session: Session) -> list[str]:
            package = session.get(SoftwarePackage, package_id)
            if package is None:
                raise HostStepError(f"package {package_id} was deleted since the upgrade began")
            host.proxyro_password(session, obfleet.secrets, cluster_id)
            plan = []
            for index in range(len(ctx.get_list(OBPROXY_IDS))):
                move = _move_of(session, ctx, index)
                host.start_spec(session, obfleet, move.new)
                plan.append(
                    f"{move.label}: {move.old_version} in {move.old.home} -> "
                    f"{ctx.require(PACKAGE_VERSION)} ({package.file_name}) in {move.new.home}"
                )
            return plan

        for line in await host.read(ctx, check):
            ctx.log(line)
        ctx.log(f"upgrading OBProxy cluster {ctx.require(CLUSTER_NAME)}, one obproxy at a time")

    async def rollback(self, ctx: SubtaskContext) -> None:
        # Each one back on its old version gets the status a login says (RUNNING/UNAVAILABLE).
        await restart.settle(ctx)


class CheckUpgradePath(Subtask):
    """No process may run from the new install path: obfleet tells an OBProxy by its working
    directory, and the new process must be the only one there."""

    name = "Check upgrade install path"
    timeout = 300

    async def execute(self, ctx: SubtaskContext) -> None:
        move = await _move(ctx)
        conn = await host.connect(ctx, move.new)
        home = move.new.home
        kind = await conn.run(
            f"if [ -e {quote(home)} ] && [ ! -d {quote(home)} ]; then echo file; fi",
            timeout=host.COMMAND_TIMEOUT_S,
            log=ctx.log,
        )
        if kind.stdout.strip():
            raise HostStepError(
                f"{home} on {move.new.ip} is a file, not a directory: the new version installs "
                "there. Move it away, then retry"
            )
        running = await host.pids_in(conn, home)
        if running:
            raise HostStepError(
                f"pid {host.pids_text(running)} run from {home} on {move.new.ip}, where the new "
                "version is to be installed: stop them (or tell obfleet about that OBProxy), "
                "then retry"
            )
        entries = await host.path_entries(conn, ctx, home)
        installed = sorted(set(entries) & set(INSTALL_DIRS))
        if installed:
            raise HostStepError(
                f"{home} on {move.new.ip} already holds an OBProxy install "
                f"({', '.join(d + '/' for d in installed)}), not obfleet's: the upgrade would "
                "overwrite it. Move it away (or take that OBProxy over), then retry"
            )
        # What was there stays there: a rollback removes only what the upgrade added.
        ctx.set(_kept_entries_key(ctx), ",".join(entries))
        ctx.log(
            f"{home} already holds {', '.join(entries)}; they stay as they are"
            if entries
            else f"{home} is free on {move.new.ip}"
        )


class InstallNewPackage(Subtask):
    """bin/ and lib/ of the new RPM into the new install path; `obproxy -V` must run."""

    name = "Install rpm by package and version"
    timeout = 3600

    async def execute(self, ctx: SubtaskContext) -> None:
        move = await _move(ctx)
        await host.ship_package(ctx, move.new, int(ctx.require(PACKAGE_ID)))

    async def rollback(self, ctx: SubtaskContext) -> None:
        move = await _move(ctx)
        users = await host.read(ctx, lambda s: _home_users(s, move.new.host_id, move.new.home))
        if users:
            ctx.log(
                f"{move.new.home} is the recorded install path of obproxy "
                f"{', '.join(map(str, users))}; leaving it"
            )
            return
        before = ctx.get(_kept_entries_key(ctx), "")
        if not before:
            await host.remove_home(ctx, move.new)
            return
        kept = before.split(",")
        conn = await host.connect(ctx, move.new)
        added = [e for e in await host.path_entries(conn, ctx, move.new.home) if e not in kept]
        home = move.new.home
        await conn.run(
            command("rm", "-rf", "--", *(f"{home}/{e}" for e in added)) if added else "true",
            timeout=host.COMMAND_TIMEOUT_S,
            log=ctx.log,
        )
        ctx.log(f"removed {', '.join(added) or 'nothing'} from {home}; {', '.join(kept)} stay")


class StopOldObproxy(Subtask):
    """Stops the old process, and anything else running from its install path."""

    name = "Stop obproxy process"
    timeout = 600

    async def execute(self, ctx: SubtaskContext) -> None:
        move = await _move(ctx)
        await host.stop_process(ctx, move.old)

    async def rollback(self, ctx: SubtaskContext) -> None:
        move = await _move(ctx)
        before = ctx.get_list(PREVIOUS_STATUSES)
        # (tasks from before the list was kept: run)
        if before and before[ctx.parallel_idx] != ObproxyStatus.RUNNING:
            ctx.log(f"{move.label} was {before[ctx.parallel_idx]} before the task: stays stopped")
            return
        await host.start_process(ctx, move.old)
        await host.wait_login(ctx, move.old)


class CopyObproxyConfig(Subtask):
    """OBProxy's persisted config goes with it: etc/ (and the other config directories it keeps
    under its working directory) from the old install path to the new one."""

    name = "Copy obproxy config"
    timeout = 300

    async def execute(self, ctx: SubtaskContext) -> None:
        move = await _move(ctx)
        conn = await host.connect(ctx, move.new)
        running = await host.pids_in(conn, move.new.home)
        if running:
            ctx.log(f"the new OBProxy already runs (pid {host.pids_text(running)}); not copying")
            return
        old, new = move.old.home, move.new.home
        copies = [
            f"if [ -d {quote(f'{old}/{d}')} ]; then "
            f"{command('rm', '-rf', '--', f'{new}/{d}')} && "
            f"{command('cp', '-a', '--', f'{old}/{d}', f'{new}/{d}')} && echo {quote(d)}; fi"
            for d in CONFIG_DIRS
        ]
        result = await conn.run(
            " && ".join(copies), timeout=host.COMMAND_TIMEOUT_S * 5, log=ctx.log
        )
        copied = result.stdout.split()
        ctx.log(
            f"copied {', '.join(copied)} from {old} to {new}"
            if copied
            else f"{old} holds no OBProxy config to copy"
        )


class StartNewObproxy(Subtask):
    """The new binary from the new install path, with the cluster's command line: the same
    ports, app name, startup parameters and root@proxysys password as the old one."""

    name = "Start obproxy process"
    timeout = 600

    async def execute(self, ctx: SubtaskContext) -> None:
        await host.start_process(ctx, (await _move(ctx)).new)

    async def rollback(self, ctx: SubtaskContext) -> None:
        await host.stop_process(ctx, (await _move(ctx)).new)


class WaitNewLogin(Subtask):
    name = "Wait for obproxy login"
    timeout = 300

    async def execute(self, ctx: SubtaskContext) -> None:
        await host.wait_login(ctx, (await _move(ctx)).new)


class SetNewProxyroPassword(Subtask):
    name = "Set obproxy user and password for connect"
    timeout = 30

    async def execute(self, ctx: SubtaskContext) -> None:
        await host.set_proxyro_password(ctx, (await _move(ctx)).new)


class SyncNewParameters(Subtask):
    name = "Sync obproxy parameter"
    timeout = 30

    async def execute(self, ctx: SubtaskContext) -> None:
        await host.sync_parameters(ctx, (await _move(ctx)).new)


class UpdateUpgradedStatus(Subtask):
    """Records the new version, package and install path; the obproxy is RUNNING again."""

    name = "Update obproxy status"
    timeout = 300

    async def execute(self, ctx: SubtaskContext) -> None:
        move = await _move(ctx)
        package_id = int(ctx.require(PACKAGE_ID))
        version = ctx.require(PACKAGE_VERSION)
        await host.write(ctx, lambda s: _record_new(s, move, package_id, version))
        ctx.log(f"{move.label} runs {version} from {move.new.home}: RUNNING")

    async def rollback(self, ctx: SubtaskContext) -> None:
        move = await _move(ctx)
        await host.write(ctx, lambda s: _record_old(s, move, ctx.task_id))
        ctx.log(f"{move.label} is recorded on {move.old_version} in {move.old.home} again")


class RemoveOldInstall(Subtask):
    """The old install paths, once every obproxy of the task runs the new version; a path that
    a recorded obproxy still uses (or that a process still runs from) stays."""

    name = "Remove old obproxy install"
    timeout = 1800
    prohibit_rollback = True  # the old files are gone: nothing to go back to

    async def execute(self, ctx: SubtaskContext) -> None:
        def plan(session: Session) -> list[tuple[Placement, list[int]]]:
            moves = [_move_of(session, ctx, i) for i in range(len(ctx.get_list(OBPROXY_IDS)))]
            return [
                (m.old, _home_users(session, m.old.host_id, m.old.home))
                for m in moves
                if m.old.home != m.new.home
            ]

        for old, users in await host.read(ctx, plan):
            if users:
                ctx.log(
                    f"{old.home} on {old.ip} is the install path of obproxy "
                    f"{', '.join(map(str, users))}; leaving it"
                )
                continue
            await host.remove_home(ctx, old)


class FinishUpgrade(Subtask):
    name = "Finish node"
    timeout = 30

    async def execute(self, ctx: SubtaskContext) -> None:
        count = len(ctx.get_list(OBPROXY_IDS))
        ctx.log(f"{count} obproxy(ies) of {ctx.require(CLUSTER_NAME)} run the new version")


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
