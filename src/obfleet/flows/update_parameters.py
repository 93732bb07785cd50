"""The steps of "Update obproxy parameter" (an extension: OCP's UI changes parameters, its API
does not, so the names follow OCP's install sample where one fits).

The request recorded the cluster's new lists and raised its parameter version; the task brings
every obproxy of the cluster there. Runtime parameters only, one branch per obproxy, in
parallel (they keep serving):

    Prepare update obproxy parameter
      Update obproxy parameter            alter proxyconfig set, where show proxyconfig differs
      Update obproxy status               RUNNING/NORMAL, the cluster's parameter version
    Finish node

Startup parameters go on OBProxy's command line, so a change to them restarts the obproxies
one at a time, with the restart chain of flows/restart_obproxy.py, whose Start starts with the
new lists and whose parameter step is this one:

    Prepare update obproxy parameter
      Stop obproxy process, Start obproxy process, Wait for obproxy login,
      Set obproxy user and password for connect, Update obproxy parameter, Update obproxy status
      (then the next obproxy)
    Finish node

A parameter the change removes from a list goes back to its default (obfleet's own command-line
default, else OBProxy's for the obproxy's version), as OBD's reload does: a runtime one with
`alter proxyconfig set`, a startup one at its default on the command line of the restart
(OBProxy stores it in etc/, so the later command lines, which no longer carry it, keep it).

Rollback: each obproxy gets the lists from before the change, the same way (a startup change
restarts it again with them); then Prepare records the old lists, the old parameter version and
each obproxy's old parameter version, unless another change came since, and settles the
statuses as a restart's rollback does.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from obfleet.engine.context import SubtaskContext
from obfleet.engine.definition import Subtask
from obfleet.flows import obproxy_host as host
from obfleet.flows import restart_obproxy as restart
from obfleet.flows.obproxy_cluster import CLUSTER_ID, CLUSTER_NAME
from obfleet.flows.obproxy_host import HostStepError
from obfleet.flows.restart_obproxy import ParameterLists
from obfleet.records import obproxy as records
from obfleet.store.models.obproxy import ObproxyServer

NEW_VERSION = "obproxy_parameter_version"  # the cluster's version the change recorded
OLD_VERSION = "obproxy_previous_parameter_version"
PREVIOUS_VERSIONS = "obproxy_previous_parameter_versions"  # listMap, one per obproxy


def _change(ctx: SubtaskContext) -> tuple[ParameterLists, ParameterLists]:
    change = restart.change_of(ctx)
    if change is None:
        raise HostStepError("the task context does not say which parameters to set")
    return change


def _describe(before: ParameterLists, after: ParameterLists) -> list[str]:
    lines = []
    for what, old, new in (
        ("startup", dict(before.startup), dict(after.startup)),
        ("runtime", dict(before.runtime), dict(after.runtime)),
    ):
        for name, value in new.items():
            if name not in old:
                lines.append(f"{what} parameter {name} set to {value}")
            elif old[name] != value:
                lines.append(f"{what} parameter {name}: {old[name]} -> {value}")
        lines += [f"{what} parameter {n} removed: back to its default" for n in old if n not in new]
    return lines or ["no parameter changes: every obproxy gets the recorded values again"]


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
        raise HostStepError(
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
            f"OBProxy cluster {ctx.require(CLUSTER_NAME)}, parameter version "
            f"{ctx.require(OLD_VERSION)} -> {ctx.require(NEW_VERSION)}, "
            f"{len(ctx.get_list(restart.SERVER_IDS))} obproxies:"
        )
        for line in _describe(before, after):
            ctx.log(f"  {line}")

    async def rollback(self, ctx: SubtaskContext) -> None:
        before, _ = _change(ctx)
        cluster_id = int(ctx.require(CLUSTER_ID))
        versions = (int(ctx.require(NEW_VERSION)), int(ctx.require(OLD_VERSION)))
        previous = {
            int(server_id): int(version)
            for server_id, version in zip(
                ctx.get_list(restart.SERVER_IDS), ctx.get_list(PREVIOUS_VERSIONS), strict=True
            )
        }
        ctx.log(
            await host.write(ctx, lambda s: _restore(s, cluster_id, before, versions, previous))
        )
        await restart.settle(ctx)


class UpdateObproxyParameter(Subtask):
    """The new runtime parameters on one obproxy (removed ones back to their defaults)."""

    name = "Update obproxy parameter"
    timeout = 60

    async def execute(self, ctx: SubtaskContext) -> None:
        before, after = _change(ctx)
        found = await restart.target(ctx)
        items = restart.with_defaults(after.runtime, before.runtime, found.version)
        await host.set_parameters(ctx, found.placement, items)

    async def rollback(self, ctx: SubtaskContext) -> None:
        before, after = _change(ctx)
        found = await restart.target(ctx)
        items = restart.with_defaults(before.runtime, after.runtime, found.version)
        await host.set_parameters(ctx, found.placement, items)


class FinishUpdateParameter(Subtask):
    name = "Finish node"
    timeout = 30

    async def execute(self, ctx: SubtaskContext) -> None:
        ctx.log(
            f"every obproxy of OBProxy cluster {ctx.require(CLUSTER_NAME)} has parameter "
            f"version {ctx.require(NEW_VERSION)}"
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
