"""The steps OBProxy tasks share, each written once. A task's copy of a shared step differs only
in which OBProxy it acts on, so a step has one hook, `where(ctx) -> Placement`, and each task
module says it once in a mixin (`class StartObproxy(OnBranch, steps.StartObproxy)`).

Also here: the recorded obproxy a branch works on (`find`), and `settle`, the end of the
rollback of every operation that marks obproxies (restart, parameter change, upgrade).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from obfleet.engine.context import SubtaskContext
from obfleet.engine.definition import Subtask
from obfleet.flows.obproxy import acts, keys
from obfleet.flows.runtime import StepError, read, write
from obfleet.obproxy.admin import AdminError
from obfleet.obproxy.parameter_lists import ParameterLists, StartParameters
from obfleet.records import obproxy_lifecycle as lifecycle
from obfleet.records.obproxy import Placement
from obfleet.store.models.obproxy import ObproxyStatus

RUNNING, UNAVAILABLE = ObproxyStatus.RUNNING, ObproxyStatus.UNAVAILABLE
# The statuses the rolling operations (restart, parameter change, upgrade) mark obproxies with;
# their rollbacks end with `settle`.
OPERATIONS = (ObproxyStatus.RESTARTING, ObproxyStatus.REFRESHING, ObproxyStatus.UPGRADING)


# --- which obproxy ------------------------------------------------------------------------------


async def find(ctx: SubtaskContext, obproxy_id: int) -> lifecycle.Recorded:
    """The task's obproxy `obproxy_id`, which must still be recorded in its cluster."""
    cluster_id = int(ctx.require(keys.CLUSTER_ID))
    found = await read(ctx, lambda s: lifecycle.recorded(s, cluster_id, obproxy_id))
    if found is None:
        raise StepError(
            f"obproxy {obproxy_id} is no longer recorded in OBProxy cluster "
            f"{ctx.get(keys.CLUSTER_NAME, str(cluster_id))}"
        )
    return found


async def branch_obproxy(ctx: SubtaskContext) -> lifecycle.Recorded:
    """This branch's obproxy: the element of `obproxy_server_ids` at its parallelIdx."""
    return await find(ctx, int(ctx.item(keys.SERVER_IDS)))


def status_before(ctx: SubtaskContext) -> str:
    """This branch's obproxy's status before the task (RUNNING for tasks from before the list
    was kept)."""
    before = ctx.get_list(keys.PREVIOUS_STATUSES)
    return before[ctx.parallel_idx] if before else RUNNING


def change_of(ctx: SubtaskContext) -> tuple[ParameterLists, ParameterLists] | None:
    """(before, after) when the task applies a parameter change; None otherwise."""
    before, after = ctx.get(keys.PARAMETERS_BEFORE), ctx.get(keys.PARAMETERS_AFTER)
    if before is None or after is None:
        return None
    return ParameterLists.from_json(before), ParameterLists.from_json(after)


# --- the shared steps ---------------------------------------------------------------------------


class ObproxyStep(Subtask):
    """A step acting on one OBProxy, found by `where`."""

    async def where(self, ctx: SubtaskContext) -> Placement:
        raise NotImplementedError(f"{type(self).__name__} does not say where it acts")


class StartObproxy(ObproxyStep):
    """Starts OBProxy with its real command line; it daemonizes and the command returns. Its
    rollback stops what runs from the install path."""

    name = "Start obproxy process"
    timeout = 600

    async def start_parameters(self, ctx: SubtaskContext) -> StartParameters | None:
        """The parameters to start with, when not the cluster's recorded ones."""
        return None

    async def execute(self, ctx: SubtaskContext) -> None:
        where = await self.where(ctx)
        await acts.start_process(ctx, where, await self.start_parameters(ctx))

    async def rollback(self, ctx: SubtaskContext) -> None:
        await acts.stop_process(ctx, await self.where(ctx))


class InstallPackage(ObproxyStep):
    """Ships bin/ and lib/ of the task's RPM, read once on the obfleet side (no rpm on the
    host); `obproxy -V` must then run. Its rollback removes the install path."""

    name = "Install rpm by package and version"
    timeout = 3600

    async def execute(self, ctx: SubtaskContext) -> None:
        await acts.ship_package(ctx, await self.where(ctx), int(ctx.require(keys.PACKAGE_ID)))

    async def rollback(self, ctx: SubtaskContext) -> None:
        await acts.remove_home(ctx, await self.where(ctx))


class StopObproxy(ObproxyStep):
    """Stops whatever runs from the install path (TERM, then KILL). Its rollback starts the
    obproxy again if it was RUNNING before the task, and waits for its login."""

    name = "Stop obproxy process"
    timeout = 600

    async def restart_parameters(self, ctx: SubtaskContext) -> StartParameters | None:
        """The parameters a rollback starts with, when not the cluster's recorded ones."""
        return None

    async def execute(self, ctx: SubtaskContext) -> None:
        await acts.stop_process(ctx, await self.where(ctx))

    async def rollback(self, ctx: SubtaskContext) -> None:
        where = await self.where(ctx)
        before = status_before(ctx)
        if before != RUNNING:
            ctx.log(f"the obproxy on {where.ip}:{where.sql_port} was {before}: it stays stopped")
            return
        await acts.start_process(ctx, where, await self.restart_parameters(ctx))
        await acts.wait_login(ctx, where)


class WaitObproxyLogin(ObproxyStep):
    """OBProxy is up when root@proxysys can log in on its SQL port."""

    name = "Wait for obproxy login"
    timeout = 300

    async def execute(self, ctx: SubtaskContext) -> None:
        await acts.wait_login(ctx, await self.where(ctx))


class SetProxyroPassword(ObproxyStep):
    """observer_sys_password = the proxyro password of the linked clusters, where it differs."""

    name = "Set obproxy user and password for connect"
    timeout = 30

    async def execute(self, ctx: SubtaskContext) -> None:
        await acts.set_proxyro_password(ctx, await self.where(ctx))


class SyncObproxyParameter(ObproxyStep):
    """The cluster's runtime parameters, set where `show proxyconfig` differs."""

    name = "Sync obproxy parameter"
    timeout = 30

    async def execute(self, ctx: SubtaskContext) -> None:
        where = await self.where(ctx)
        await acts.set_parameters(ctx, where, await acts.cluster_parameters(ctx, where.cluster_id))


class UpdateObproxyStatus(ObproxyStep):
    """Records what the task made of the obproxy (`record`); its rollback takes the row back
    into the task's operation (`undo`)."""

    name = "Update obproxy status"
    timeout = 300

    def record(self, session: Session, ctx: SubtaskContext, where: Placement) -> str:
        raise NotImplementedError

    def undo(self, session: Session, ctx: SubtaskContext, where: Placement) -> str | None:
        raise NotImplementedError

    async def execute(self, ctx: SubtaskContext) -> None:
        where = await self.where(ctx)
        ctx.log(await write(ctx, lambda s: self.record(s, ctx, where)))

    async def rollback(self, ctx: SubtaskContext) -> None:
        where = await self.where(ctx)
        said = await write(ctx, lambda s: self.undo(s, ctx, where))
        if said:
            ctx.log(said)


class FinishNode(Subtask):
    """The end of a task: says what it did."""

    name = "Finish node"
    timeout = 30

    def summary(self, ctx: SubtaskContext) -> str:
        raise NotImplementedError

    async def execute(self, ctx: SubtaskContext) -> None:
        ctx.log(self.summary(ctx))


# --- settling marked obproxies ------------------------------------------------------------------


async def _settle_one(ctx: SubtaskContext, cluster_id: int, obproxy_id: int) -> None:
    found = await read(ctx, lambda s: lifecycle.recorded(s, cluster_id, obproxy_id))
    if found is None or found.status not in OPERATIONS:
        return
    client = await acts.admin_client(ctx, found.placement)
    try:
        await client.ping()
        alive = True
    except AdminError as exc:
        ctx.log(str(exc))
        alive = False
    if await write(ctx, lambda s: lifecycle.settle(s, obproxy_id, found.status, alive)):
        where = found.placement
        ctx.log(
            f"obproxy {obproxy_id} on {where.ip}:{where.sql_port} is "
            f"{RUNNING if alive else UNAVAILABLE}"
        )


async def settle(ctx: SubtaskContext) -> None:
    """Each obproxy of the task still marked by it gets the status a root@proxysys login says,
    RUNNING or UNAVAILABLE (the health checker's statuses): the end of a rollback."""
    cluster_id = int(ctx.require(keys.CLUSTER_ID))
    for obproxy_id in ctx.get_list(keys.SERVER_IDS):
        await _settle_one(ctx, cluster_id, int(obproxy_id))
