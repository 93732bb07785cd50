"""The steps of "Restart obproxy": a cluster's OBProxies restarted one at a time, so that the
cluster keeps serving while they restart. OCP's restart sample is a copy of its delete sample
(ocp-api-notes.md §3.9, §7), so the names follow OCP's install and offline samples:

    Prepare restart obproxy                       the obproxies still recorded (RESTARTING)
    for each obproxy, one chain after the other (parallelIdx = its place in the list):
      Stop obproxy process                        TERM, then KILL, whatever runs from its path
      Start obproxy process                       the install's command line (obproxy/cmdline.py)
      Wait for obproxy login                      root@proxysys logs in on the SQL port
      Set obproxy user and password for connect   observer_sys_password, where it was lost
      Sync obproxy parameter                      the runtime parameters, where they were lost
      Update obproxy status                       RUNNING/NORMAL, last active time, param version
    Finish node

The next obproxy's Stop depends on the previous obproxy's Update status, which comes after its
root@proxysys login: at most one obproxy of the task is ever down.

OBProxy keeps its configuration in etc/ and reads it back at a start, so what `alter
proxyconfig` set survives a restart, and the command line repeats what it set at the install.
The proxyro password and the runtime parameters are set again all the same: each is one `show
proxyconfig` when nothing was lost, and a restart then also repairs an OBProxy whose etc/ was
lost or that was started by hand without them.

Each chain works on `ctx.item(SERVER_IDS)`, the obproxy's id; its row gives the host, ports and
install path. `PREVIOUS_STATUSES` holds each obproxy's status before the task (RUNNING or
UNAVAILABLE), `OPERATION_STATUS` the status the task marked it with.

Retry: every step looks before it acts (Stop finds nothing to stop, Start nothing to do when
OBProxy runs), so a retry after a failed Start starts it.

Rollback, downstreams first, leaves every obproxy as it was before the task: Update status puts
the row back into the operation's status; Start leaves the process it started running (a
restart cannot be undone, and the obproxy serves); Stop starts again what it stopped when the
obproxy was RUNNING before the task (an UNAVAILABLE one stays down); Prepare then gives every
row still marked by the task the status a root@proxysys login says: RUNNING or UNAVAILABLE.

The same chain restarts the obproxies when a parameter change touches startup parameters
(flows/update_parameters.py): then the task context carries the parameter lists before and
after the change, Start starts with the lists after it, and rolling back stops the process and
starts it again with the lists before.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from obfleet.engine.context import SubtaskContext
from obfleet.engine.definition import Subtask
from obfleet.flows import obproxy_host as host
from obfleet.flows.obproxy_cluster import CLUSTER_ID, CLUSTER_NAME
from obfleet.flows.obproxy_host import HostStepError, Placement, StartParameters
from obfleet.obproxy import catalog, cmdline
from obfleet.obproxy.admin import AdminError
from obfleet.records import obproxy as records
from obfleet.store.models.obproxy import ObproxyCluster, ObproxyServer, ObproxyStatus
from obfleet.timefmt import utcnow

# Task context keys. OCP's OBProxy samples name the first two.
SERVER_IDS = "obproxy_server_ids"  # listMap: the obproxies, in the order they restart
HOST_IDS = "host_ids"  # listMap: their hosts, for the reader
PREVIOUS_STATUSES = "obproxy_previous_statuses"  # listMap: each one's status before the task
OPERATION_STATUS = "obproxy_operation_status"  # RESTARTING, or REFRESHING for a parameter update
PARAMETERS_BEFORE = "obproxy_parameters_before"  # a parameter change: JSON of ParameterLists
PARAMETERS_AFTER = "obproxy_parameters_after"

RUNNING, UNAVAILABLE = ObproxyStatus.RUNNING, ObproxyStatus.UNAVAILABLE
# The statuses the rolling operations (restart, parameter change, upgrade) mark obproxies with;
# their rollbacks end with `settle`.
OPERATIONS = (ObproxyStatus.RESTARTING, ObproxyStatus.REFRESHING, ObproxyStatus.UPGRADING)


# --- which obproxy -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    server_id: int
    version: str | None  # <version>-<build>, as recorded at the install
    status: str
    placement: Placement


def load_target(session: Session, cluster_id: int, server_id: int) -> Target | None:
    row = session.get(ObproxyServer, server_id)
    if row is None or row.cluster_id != cluster_id:
        return None
    return Target(row.id, row.version, row.status, Placement.of(row))


async def find(ctx: SubtaskContext, server_id: int) -> Target:
    cluster_id = int(ctx.require(CLUSTER_ID))
    found = await host.read(ctx, lambda s: load_target(s, cluster_id, server_id))
    if found is None:
        raise HostStepError(
            f"obproxy {server_id} is no longer recorded in OBProxy cluster "
            f"{ctx.get(CLUSTER_NAME, str(cluster_id))}"
        )
    return found


async def target(ctx: SubtaskContext) -> Target:
    """This chain's obproxy."""
    return await find(ctx, int(ctx.item(SERVER_IDS)))


# --- parameter lists of a parameter change ------------------------------------------------------

Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ParameterLists:
    """A cluster's startup and runtime parameters, as recorded."""

    startup: Pairs
    runtime: Pairs

    @classmethod
    def of(cls, cluster: ObproxyCluster) -> ParameterLists:
        return cls(
            tuple((p["name"], p["value"]) for p in cluster.startup_parameters),
            tuple((p["name"], p["value"]) for p in cluster.parameters),
        )

    def to_json(self) -> str:
        return json.dumps({"startup": self.startup, "runtime": self.runtime})

    @classmethod
    def from_json(cls, text: str) -> ParameterLists:
        data = json.loads(text)
        return cls(
            tuple((str(n), str(v)) for n, v in data["startup"]),
            tuple((str(n), str(v)) for n, v in data["runtime"]),
        )


def change_of(ctx: SubtaskContext) -> tuple[ParameterLists, ParameterLists] | None:
    """(before, after) when this restart applies a parameter change; None for a restart."""
    before, after = ctx.get(PARAMETERS_BEFORE), ctx.get(PARAMETERS_AFTER)
    if before is None or after is None:
        return None
    return ParameterLists.from_json(before), ParameterLists.from_json(after)


def default_value(name: str, version: str | None) -> str | None:
    """What a parameter goes back to when no list sets it any more: obfleet's own command-line
    default (cmdline.DEFAULTS: obfleet must keep its root@proxysys access), else OBProxy's
    default in the obproxy's version (the catalog)."""
    own = dict(cmdline.DEFAULTS).get(name)
    if own is not None:
        return own
    try:
        info = catalog.get(name, version)
    except ValueError:  # a version the catalog cannot read: its newest entry
        info = catalog.get(name)
    return info.default_value if info is not None else None


def with_defaults(
    wanted: Sequence[tuple[str, str]], other: Sequence[tuple[str, str]], version: str | None
) -> list[tuple[str, str]]:
    """`wanted`, plus each parameter only `other` sets at its default: a parameter a change
    removes goes back to its default, as OBD's reload does (OBProxy would otherwise keep the
    value it stored in etc/)."""
    names = {name for name, _ in wanted}
    reset = [(name, default_value(name, version)) for name, _ in other if name not in names]
    return [*wanted, *((name, value) for name, value in reset if value is not None)]


def start_parameters(
    wanted: ParameterLists, other: ParameterLists, version: str | None
) -> StartParameters:
    return StartParameters(
        tuple(with_defaults(wanted.startup, other.startup, version)),
        frozenset(name for name, _ in wanted.runtime),
    )


# --- the rows ----------------------------------------------------------------------------------


def _record_running(session: Session, cluster_id: int, server_id: int) -> int:
    row = session.get(ObproxyServer, server_id)
    if row is None or row.cluster_id != cluster_id:
        raise HostStepError(f"obproxy {server_id} is no longer recorded")
    records.record_alive(session, row)
    return row.parameter_version


def _take_back(session: Session, server_id: int, status: str, task_id: int) -> None:
    row = session.get(ObproxyServer, server_id)
    if row is not None:
        records.take_back(row, status, task_id)


def _settle_row(session: Session, server_id: int, marked: str, alive: bool) -> bool:
    row = session.get(ObproxyServer, server_id)
    if row is None or row.status != marked:
        return False
    records.set_status(row, RUNNING if alive else UNAVAILABLE, None)
    if alive:
        row.last_active_time = utcnow()
    return True


async def _settle_one(ctx: SubtaskContext, cluster_id: int, server_id: int) -> None:
    found = await host.read(ctx, lambda s: load_target(s, cluster_id, server_id))
    if found is None or found.status not in OPERATIONS:
        return
    client = await host.admin_client(ctx, found.placement)
    try:
        await client.ping()
        alive = True
    except AdminError as exc:
        ctx.log(str(exc))
        alive = False
    if await host.write(ctx, lambda s: _settle_row(s, server_id, found.status, alive)):
        ctx.log(
            f"obproxy {server_id} on {found.placement.ip}:{found.placement.sql_port} is "
            f"{RUNNING if alive else UNAVAILABLE}"
        )


async def settle(ctx: SubtaskContext) -> None:
    """Each obproxy of the task still marked by it gets the status a root@proxysys login says,
    RUNNING or UNAVAILABLE (the health checker's statuses): the end of a rollback."""
    cluster_id = int(ctx.require(CLUSTER_ID))
    for server_id in ctx.get_list(SERVER_IDS):
        await _settle_one(ctx, cluster_id, int(server_id))


# --- the steps ---------------------------------------------------------------------------------


class PrepareRestart(Subtask):
    """Checks that the obproxies are still recorded; its rollback settles their statuses."""

    name = "Prepare restart obproxy"
    timeout = 300

    async def execute(self, ctx: SubtaskContext) -> None:
        targets = [await find(ctx, int(i)) for i in ctx.get_list(SERVER_IDS)]
        where = ", ".join(
            f"{t.server_id} ({t.placement.ip}:{t.placement.sql_port})" for t in targets
        )
        ctx.log(
            f"restarting the obproxies of OBProxy cluster {ctx.require(CLUSTER_NAME)} one at a "
            f"time: {where}"
        )

    async def rollback(self, ctx: SubtaskContext) -> None:
        await settle(ctx)


class StopObproxy(Subtask):
    """Stops whatever runs from the obproxy's install path (TERM, then KILL)."""

    name = "Stop obproxy process"
    timeout = 600  # its rollback starts the obproxy and waits for its login

    async def execute(self, ctx: SubtaskContext) -> None:
        await host.stop_process(ctx, (await target(ctx)).placement)

    async def rollback(self, ctx: SubtaskContext) -> None:
        found = await target(ctx)
        before = ctx.item(PREVIOUS_STATUSES)
        if before != RUNNING:
            ctx.log(f"obproxy {found.server_id} was {before} before the task: it stays stopped")
            return
        change = change_of(ctx)
        parameters = None
        if change is not None:
            parameters = start_parameters(change[0], change[1], found.version)
        await host.start_process(ctx, found.placement, parameters)
        await host.wait_login(ctx, found.placement)


class StartObproxy(Subtask):
    """Starts OBProxy with the install's command line (or a parameter change's new one)."""

    name = "Start obproxy process"
    timeout = 600

    async def execute(self, ctx: SubtaskContext) -> None:
        found = await target(ctx)
        change = change_of(ctx)
        parameters = None
        if change is not None:
            parameters = start_parameters(change[1], change[0], found.version)
        await host.start_process(ctx, found.placement, parameters)

    async def rollback(self, ctx: SubtaskContext) -> None:
        if change_of(ctx) is None:
            ctx.log("nothing to undo: a restart's rollback does not stop what it started")
            return
        # It runs with the parameters being rolled back; Stop's rollback starts it again.
        await host.stop_process(ctx, (await target(ctx)).placement)


class WaitObproxyLogin(Subtask):
    """OBProxy is up when root@proxysys can log in on its SQL port."""

    name = "Wait for obproxy login"
    timeout = 300

    async def execute(self, ctx: SubtaskContext) -> None:
        await host.wait_login(ctx, (await target(ctx)).placement)


class SetProxyroPassword(Subtask):
    """observer_sys_password = the proxyro password, where OBProxy lost it."""

    name = "Set obproxy user and password for connect"
    timeout = 30

    async def execute(self, ctx: SubtaskContext) -> None:
        await host.set_proxyro_password(ctx, (await target(ctx)).placement)


class SyncObproxyParameter(Subtask):
    """The cluster's runtime parameters, where OBProxy lost them."""

    name = "Sync obproxy parameter"
    timeout = 30

    async def execute(self, ctx: SubtaskContext) -> None:
        await host.sync_parameters(ctx, (await target(ctx)).placement)


class UpdateObproxyStatus(Subtask):
    """Records the obproxy RUNNING/NORMAL, answering now, with the cluster's parameter version."""

    name = "Update obproxy status"
    timeout = 300

    async def execute(self, ctx: SubtaskContext) -> None:
        found = await target(ctx)
        cluster_id = int(ctx.require(CLUSTER_ID))
        version = await host.write(ctx, lambda s: _record_running(s, cluster_id, found.server_id))
        ctx.log(
            f"obproxy {found.server_id} on {found.placement.ip}:{found.placement.sql_port} is "
            f"RUNNING, parameter version {version}"
        )

    async def rollback(self, ctx: SubtaskContext) -> None:
        # Back in the task's hands: the rollback of Prepare settles it by a login.
        found = await target(ctx)
        status = ctx.require(OPERATION_STATUS)
        await host.write(ctx, lambda s: _take_back(s, found.server_id, status, ctx.task_id))
        ctx.log(f"obproxy {found.server_id} is {status} again")


class FinishRestart(Subtask):
    name = "Finish node"
    timeout = 30

    async def execute(self, ctx: SubtaskContext) -> None:
        ctx.log(
            f"{len(ctx.get_list(SERVER_IDS))} obproxies of OBProxy cluster "
            f"{ctx.require(CLUSTER_NAME)} restarted"
        )


# One obproxy's restart; the chains of a task run one after the other.
RESTART_CHAIN: tuple[type[Subtask], ...] = (
    StopObproxy,
    StartObproxy,
    WaitObproxyLogin,
    SetProxyroPassword,
    SyncObproxyParameter,
    UpdateObproxyStatus,
)
