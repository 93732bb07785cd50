""" "Update obproxy parameter" (an extension: OCP's UI changes parameters, its API does not, so
the names follow OCP's install sample where one fits).

The request recorded the cluster's new lists and raised its parameter version; the task brings
every obproxy of the cluster there. Runtime parameters only, one branch per obproxy, in
parallel (they keep serving):

    Prepare update obproxy parameter
      Update obproxy parameter            alter proxyconfig set, where show proxyconfig differs
      Update obproxy status               RUNNING/NORMAL, the cluster's parameter version
    Finish node

Startup parameters go on OBProxy's command line, so a change to them restarts the obproxies one
at a time with the restart chain (restart.py), whose Start starts with the new lists and whose
parameter step is this one.

A parameter the change removes from a list goes back to its default (obfleet's own command-line
default, else OBProxy's for the obproxy's version), as OBD's reload does: a runtime one with
`alter proxyconfig set`, a startup one at its default on the command line of the restart. A
runtime parameter reset that obfleet had not set (changed on the obproxy by hand) goes back to
its default the same way, and stays out of the lists.

Rollback: each obproxy gets the lists from before the change, the same way; then Prepare
records the old lists, the old parameter version and each obproxy's old parameter version,
unless another change came since, and settles the statuses as a restart's rollback does. A
reset parameter obfleet had not set keeps its default: its value before was never recorded.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from obfleet.engine.context import SubtaskContext
from obfleet.engine.definition import Subtask
from obfleet.engine.flow import Flow
from obfleet.flows.obproxy import acts, keys, restart, steps
from obfleet.flows.runtime import StepError, write
from obfleet.obproxy.parameter_lists import ParameterLists, describe_change, with_defaults
from obfleet.records import obproxy as records
from obfleet.store.models.obproxy import ObproxyCluster, ObproxyServer, ObproxyStatus


def build(
    cluster: ObproxyCluster,
    rows: Sequence[ObproxyServer],
    before: ParameterLists,
    after: ParameterLists,
    old_version: int,
    resets: Sequence[str] = (),
) -> Flow:
    """The change of `cluster`'s lists from `before` to `after` (recorded already, the
    cluster's parameter version raised from `old_version`) on each of its obproxies `rows`;
    `resets` are runtime parameters in neither list that go back to their defaults."""
    marked = status(before, after)
    flow = Flow(keys.UPDATE_PARAMETERS)
    flow.set(keys.OLD_PARAMETER_VERSION, str(old_version))
    flow.set(keys.PARAMETER_VERSION, str(cluster.parameter_version))
    flow.set_list(keys.PREVIOUS_PARAMETER_VERSIONS, [row.parameter_version for row in rows])
    flow.set(keys.PARAMETERS_BEFORE, before.to_json())
    flow.set(keys.PARAMETERS_AFTER, after.to_json())
    flow.set_list(keys.PARAMETERS_RESET, list(resets))
    restart.mark(flow, cluster, rows, marked)
    prepare = flow.add(PrepareUpdateParameter)
    if marked == ObproxyStatus.RESTARTING:
        last = [restart.one_after_another(flow, RESTART_CHAIN, after=prepare)]
    else:
        last = flow.parallel(UPDATE_BRANCH, over=keys.SERVER_IDS, after=prepare)
    flow.add(FinishUpdateParameter, after=last or prepare)
    return flow


def status(before: ParameterLists, after: ParameterLists) -> ObproxyStatus:
    """What the change marks the obproxies: RESTARTING when startup parameters change."""
    restarts = dict(after.startup) != dict(before.startup)
    return ObproxyStatus.RESTARTING if restarts else ObproxyStatus.REFRESHING


def _change(ctx: SubtaskContext) -> tuple[ParameterLists, ParameterLists]:
    change = steps.change_of(ctx)
    if change is None:
        raise StepError("the task context does not say which parameters to set")
    return change


def _restore(
    session: Session,
    cluster_id: int,
    before: ParameterLists,
    versions: tuple[int, int],
    previous: dict[int, int],
) -> str:
    new_version, old_version = versions
    cluster = records.get(session, cluster_id)
    if cluster.parameter_version == old_version:
        return f"parameters of {cluster.name} already restored (version {old_version})"
    if cluster.parameter_version != new_version:
        raise StepError(
            f"the parameters of {cluster.name} changed again since this task (version "
            f"{cluster.parameter_version}, this task recorded {new_version}): not restoring them"
        )
    cluster.startup_parameters = [{"name": n, "value": v} for n, v in before.startup]
    cluster.parameters = [{"name": n, "value": v} for n, v in before.runtime]
    cluster.parameter_version = old_version
    for server_id, version in previous.items():
        row = session.get(ObproxyServer, server_id)
        if row is not None and row.cluster_id == cluster_id:
            row.parameter_version = version
    return f"parameters of {cluster.name} restored, parameter version {old_version} again"


class PrepareUpdateParameter(Subtask):
    """Says what changes; its rollback records the old lists again and settles the statuses."""

    name = "Prepare update obproxy parameter"
    timeout = 300

    async def execute(self, ctx: SubtaskContext) -> None:
        before, after = _change(ctx)
        ctx.log(
            f"OBProxy cluster {ctx.require(keys.CLUSTER_NAME)}, parameter version "
            f"{ctx.require(keys.OLD_PARAMETER_VERSION)} -> {ctx.require(keys.PARAMETER_VERSION)}, "
            f"{len(ctx.get_list(keys.SERVER_IDS))} obproxies:"
        )
        for line in describe_change(before, after):
            ctx.log(f"  {line}")
        for name in ctx.get_list(keys.PARAMETERS_RESET):
            ctx.log(f"  runtime parameter {name} (not set through obfleet) back to its default")

    async def rollback(self, ctx: SubtaskContext) -> None:
        before, _ = _change(ctx)
        cluster_id = int(ctx.require(keys.CLUSTER_ID))
        versions = (
            int(ctx.require(keys.PARAMETER_VERSION)),
            int(ctx.require(keys.OLD_PARAMETER_VERSION)),
        )
        previous = {
            int(server_id): int(version)
            for server_id, version in zip(
                ctx.get_list(keys.SERVER_IDS),
                ctx.get_list(keys.PREVIOUS_PARAMETER_VERSIONS),
                strict=True,
            )
        }
        ctx.log(await write(ctx, lambda s: _restore(s, cluster_id, before, versions, previous)))
        await steps.settle(ctx)


class UpdateObproxyParameter(restart.OnBranch, steps.ObproxyStep):
    """The new runtime parameters on one obproxy (removed ones back to their defaults)."""

    name = "Update obproxy parameter"
    timeout = 60

    async def _apply(self, ctx: SubtaskContext, *, back: bool) -> None:
        before, after = _change(ctx)
        wanted, other = (before, after) if back else (after, before)
        found = await steps.branch_obproxy(ctx)
        items = with_defaults(wanted.runtime, other.runtime, found.version)
        if not back:
            resets = [(name, "") for name in ctx.get_list(keys.PARAMETERS_RESET)]
            items = with_defaults(items, resets, found.version)
        await acts.set_parameters(ctx, found.placement, items)

    async def execute(self, ctx: SubtaskContext) -> None:
        await self._apply(ctx, back=False)

    async def rollback(self, ctx: SubtaskContext) -> None:
        await self._apply(ctx, back=True)


class FinishUpdateParameter(steps.FinishNode):
    def summary(self, ctx: SubtaskContext) -> str:
        return (
            f"every obproxy of OBProxy cluster {ctx.require(keys.CLUSTER_NAME)} has parameter "
            f"version {ctx.require(keys.PARAMETER_VERSION)}"
        )


# Runtime parameters only: one parallel branch per obproxy.
UPDATE_BRANCH: tuple[type[Subtask], ...] = (UpdateObproxyParameter, restart.UpdateObproxyStatus)
# Startup parameters too: one obproxy after the other, restarted.
RESTART_CHAIN: tuple[type[Subtask], ...] = (
    restart.StopObproxy,
    restart.StartObproxy,
    restart.WaitObproxyLogin,
    restart.SetProxyroPassword,
    UpdateObproxyParameter,
    restart.UpdateObproxyStatus,
)
