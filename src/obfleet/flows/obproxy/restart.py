""" "Restart obproxy": a cluster's OBProxies restarted one at a time, so that the cluster keeps
serving. OCP's restart sample is a copy of its delete sample (ocp-api-notes.md §3.9, §7), so
the names follow OCP's install and offline samples:

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
root@proxysys login: at most one obproxy of the task is ever down. The same rolling shape (the
context of an operation on marked obproxies, one chain after the other) serves a startup
parameter change (parameters.py) and an upgrade (upgrade.py): `mark` and `one_after_another`.

OBProxy keeps its configuration in etc/ and reads it back at a start, so what `alter
proxyconfig` set survives a restart; the proxyro password and the runtime parameters are set
again all the same (one `show proxyconfig` each when nothing was lost), which also repairs an
OBProxy whose etc/ was lost.

Rollback, downstreams first, leaves every obproxy as it was before the task: Update status puts
the row back into the operation's status; Start leaves the process it started running (a
restart cannot be undone, and the obproxy serves) unless it applied a parameter change; Stop
starts again what it stopped when the obproxy was RUNNING before the task; Prepare then gives
every row still marked by the task the status a root@proxysys login says.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from obfleet.engine.context import SubtaskContext
from obfleet.engine.definition import Subtask
from obfleet.engine.flow import Flow, Node
from obfleet.flows.obproxy import acts, keys, steps
from obfleet.obproxy.parameter_lists import StartParameters, start_parameters
from obfleet.records import obproxy as records
from obfleet.records import obproxy_lifecycle as lifecycle
from obfleet.records.obproxy import Placement
from obfleet.store.models.obproxy import ObproxyCluster, ObproxyServer, ObproxyStatus


def mark(flow: Flow, cluster: ObproxyCluster, rows: Sequence[ObproxyServer], status: str) -> None:
    """The context of an operation on `rows` (OCP's keys where its samples have them); the
    request then marks them `status`, held by the task (services/obproxy_operations.py)."""
    flow.set(keys.CLUSTER_ID, str(cluster.id))
    flow.set(keys.CLUSTER_NAME, cluster.name)
    flow.set(keys.SERVICE_TYPE, "OB_PROXY")
    flow.set(keys.SERVICE_NAME, cluster.name)
    flow.set(keys.PROHIBIT_ROLLBACK, "false")
    flow.set(keys.OPERATION_STATUS, status)
    flow.set_list(keys.SERVER_IDS, [row.id for row in rows])
    flow.set_list(keys.HOST_IDS, [row.host_id for row in rows])
    flow.set_list(keys.PREVIOUS_STATUSES, [row.status for row in rows])
    flow.name_branches([row.ip for row in rows])  # branch i acts on obproxy i


def one_after_another(flow: Flow, chain: Sequence[type[Subtask]], *, after: Node) -> Node:
    """One `chain` per obproxy of the context, each after the previous one (parallelIdx i picks
    obproxy i); returns the last node."""
    last = after
    for index in range(len(flow.context.list_map[keys.SERVER_IDS])):
        last = flow.chain(*chain, after=last, parallel_idx=index)
    return last


def build(cluster: ObproxyCluster, rows: Sequence[ObproxyServer]) -> Flow:
    flow = Flow(keys.RESTART)
    mark(flow, cluster, rows, ObproxyStatus.RESTARTING)
    last = one_after_another(flow, RESTART_CHAIN, after=flow.add(PrepareRestart))
    flow.add(FinishRestart, after=last)
    return flow


class OnBranch:
    """The recorded obproxy of this branch."""

    async def where(self, ctx: SubtaskContext) -> Placement:
        return (await steps.branch_obproxy(ctx)).placement


async def _parameters(ctx: SubtaskContext, *, back: bool) -> StartParameters | None:
    """A parameter change's lists to start with (the lists before it when going `back`)."""
    change = steps.change_of(ctx)
    if change is None:
        return None
    before, after = change
    version = (await steps.branch_obproxy(ctx)).version
    wanted, other = (before, after) if back else (after, before)
    return start_parameters(wanted, other, version)


class PrepareRestart(Subtask):
    """Checks that the obproxies are still recorded; its rollback settles their statuses."""

    name = "Prepare restart obproxy"
    timeout = 300

    async def execute(self, ctx: SubtaskContext) -> None:
        found = [await steps.find(ctx, int(i)) for i in ctx.get_list(keys.SERVER_IDS)]
        ctx.log(
            f"restarting the obproxies of OBProxy cluster {ctx.require(keys.CLUSTER_NAME)} one "
            f"at a time: {', '.join(f.label for f in found)}"
        )

    async def rollback(self, ctx: SubtaskContext) -> None:
        await steps.settle(ctx)


class StopObproxy(OnBranch, steps.StopObproxy):
    async def restart_parameters(self, ctx: SubtaskContext) -> StartParameters | None:
        return await _parameters(ctx, back=True)


class StartObproxy(OnBranch, steps.StartObproxy):
    """Starts OBProxy with the install's command line (or a parameter change's new one)."""

    async def start_parameters(self, ctx: SubtaskContext) -> StartParameters | None:
        return await _parameters(ctx, back=False)

    async def rollback(self, ctx: SubtaskContext) -> None:
        if steps.change_of(ctx) is None:
            ctx.log("nothing to undo: a restart's rollback does not stop what it started")
            return
        # It runs with the parameters being rolled back; Stop's rollback starts it again.
        await acts.stop_process(ctx, await self.where(ctx))


class WaitObproxyLogin(OnBranch, steps.WaitObproxyLogin):
    pass


class SetProxyroPassword(OnBranch, steps.SetProxyroPassword):
    pass


class SyncObproxyParameter(OnBranch, steps.SyncObproxyParameter):
    pass


class UpdateObproxyStatus(OnBranch, steps.UpdateObproxyStatus):
    """Records the obproxy RUNNING/NORMAL, answering now, with the cluster's parameter version."""

    def record(self, session: Session, ctx: SubtaskContext, where: Placement) -> str:
        cluster_id, obproxy_id = int(ctx.require(keys.CLUSTER_ID)), int(ctx.item(keys.SERVER_IDS))
        row = lifecycle.in_cluster(session, cluster_id, obproxy_id)
        records.record_alive(session, row)
        return (
            f"obproxy {row.id} on {where.ip}:{where.sql_port} is RUNNING, parameter version "
            f"{row.parameter_version}"
        )

    def undo(self, session: Session, ctx: SubtaskContext, where: Placement) -> str | None:
        # Back in the task's hands: the rollback of Prepare settles it by a login.
        row = session.get(ObproxyServer, int(ctx.item(keys.SERVER_IDS)))
        if row is None:
            return None
        status = ctx.require(keys.OPERATION_STATUS)
        records.take_back(row, status, ctx.task_id)
        return f"obproxy {row.id} is {status} again"


class FinishRestart(steps.FinishNode):
    def summary(self, ctx: SubtaskContext) -> str:
        return (
            f"{len(ctx.get_list(keys.SERVER_IDS))} obproxies of OBProxy cluster "
            f"{ctx.require(keys.CLUSTER_NAME)} restarted"
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
