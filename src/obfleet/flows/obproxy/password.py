""" "Change obproxy password": a cluster's root@proxysys password changed on every obproxy, one
after the other, and then in the password box; a rollback brings the old one back everywhere.

    Prepare change obproxy password             the obproxies (REFRESHING) and both passwords
    per obproxy, one after the other (parallelIdx i = obproxy i):
      Change obproxy password                   alter proxyconfig set obproxy_sys_password
    Update obproxy credential                   the cluster's credential takes the new password
    Update obproxy status                       RUNNING/NORMAL, now checked with the new one
    Finish node                                 the spare credential (the old password) goes

The new password waits in a spare credential of the password box (`proxysys_<cluster>_next`,
made by the request), never in the task context. OBProxy takes it in plain text over its admin
connection and stores its SHA1 itself (obproxy-deployment-facts.md §1.8, as OBD sets
observer_sys_password); it persists it in etc/, and its command line carries the SHA1 of the
cluster's credential, so a restart after the task starts it with the new password too.

The obproxies stay marked until the credential has switched: the health checker, which logs
in with the cluster's credential, leaves them alone while some have the new password and the
credential still the old one. The credential switches only once every obproxy has the new one.

Idempotent: Change asks which password logs in before it changes anything; the switch is kept
in the task context in the transaction that makes it (engine/kept.py).

Rollback, in reverse: Update status takes the rows back; Update credential switches back (the
spare then holds the new password again); each Change sets the old password where the new one
logs in (an obproxy that does not run is left: obfleet starts it with the cluster's password on
its command line, which overrides what it persisted); Prepare settles the statuses by a login
and deletes the spare credential.
"""

from __future__ import annotations

from collections.abc import Sequence

from obfleet.engine.context import SubtaskContext
from obfleet.engine.definition import Subtask
from obfleet.engine.flow import Flow
from obfleet.flows.obproxy import acts, keys, restart, steps
from obfleet.flows.runtime import StepError, app, read, write
from obfleet.hosts.processes import pids_in
from obfleet.obproxy.admin import AdminError
from obfleet.records import credentials, proxysys
from obfleet.store.models.obproxy import ObproxyCluster, ObproxyServer, ObproxyStatus

MARK = ObproxyStatus.REFRESHING


def build(cluster: ObproxyCluster, rows: Sequence[ObproxyServer], spare_credential_id: int) -> Flow:
    """`rows` (read before the request marked them) to the password in the spare credential."""
    flow = Flow(keys.CHANGE_PASSWORD)
    restart.mark(flow, cluster, rows, MARK)
    flow.set(keys.SPARE_PROXYSYS_CREDENTIAL_ID, str(spare_credential_id))
    last = restart.one_after_another(
        flow, (ChangeObproxyPassword,), after=flow.add(PrepareChangePassword)
    )
    flow.chain(UpdateObproxyCredential, UpdateObproxyStatus, FinishChangePassword, after=last)
    return flow


# --- the change ---------------------------------------------------------------------------------


def change_of(ctx: SubtaskContext) -> proxysys.Change:
    return proxysys.Change(
        task_id=ctx.task_id,
        cluster_id=int(ctx.require(keys.CLUSTER_ID)),
        spare_id=int(ctx.require(keys.SPARE_PROXYSYS_CREDENTIAL_ID)),
        switched_key=keys.PROXYSYS_SWITCHED,
    )


async def passwords(ctx: SubtaskContext) -> proxysys.Passwords:
    """The old and the new password, declared to the log's redactor."""
    box = app(ctx).secrets
    found = await read(ctx, lambda s: proxysys.passwords(s, box, change_of(ctx)))
    ctx.secret(found.old)
    ctx.secret(found.new)
    return found


def ids(ctx: SubtaskContext) -> list[int]:
    return [int(i) for i in ctx.get_list(keys.SERVER_IDS)]


async def set_password(ctx: SubtaskContext, frm: str, to: str, what: str) -> None:
    """This branch's obproxy from password `frm` to `to`: nothing when `to` logs in already."""
    where = (await steps.branch_obproxy(ctx)).placement
    label = f"root@proxysys at {where.ip}:{where.sql_port}"
    if await acts.logs_in(ctx, where, to):
        ctx.log(f"{label} already logs in with the {what} password")
        return
    try:
        await acts.switch_proxysys_password(ctx, where, frm, to)
    except AdminError as exc:
        raise StepError(f"the {what} password could not be set: {exc}") from None
    ctx.log(f"obproxy_sys_password set to the {what} password; {label} logs in with it")


async def is_down(ctx: SubtaskContext) -> bool:
    """Whether nothing runs from this branch's obproxy's install path."""
    where = (await steps.branch_obproxy(ctx)).placement
    return not await pids_in(await acts.host_of(ctx, where), where.home)


# --- the steps ----------------------------------------------------------------------------------


class PrepareChangePassword(Subtask):
    """Both passwords are readable and the obproxies still recorded. Its rollback settles the
    obproxies by a login and deletes the spare credential."""

    name = "Prepare change obproxy password"
    timeout = 300

    async def execute(self, ctx: SubtaskContext) -> None:
        await passwords(ctx)
        found = [await steps.find(ctx, int(i)) for i in ctx.get_list(keys.SERVER_IDS)]
        ctx.log(
            f"changing the root@proxysys password of OBProxy cluster "
            f"{ctx.require(keys.CLUSTER_NAME)} on {', '.join(f.label for f in found) or 'none'}, "
            "one at a time"
        )

    async def rollback(self, ctx: SubtaskContext) -> None:
        await steps.settle(ctx)
        spare_id = change_of(ctx).spare_id
        if await write(ctx, lambda s: credentials.forget(s, spare_id)):
            ctx.log(f"spare credential {spare_id} (the new password) deleted")


class ChangeObproxyPassword(Subtask):
    """obproxy_sys_password = the new password on this branch's obproxy, over its admin
    connection; its rollback sets the old one again."""

    name = "Change obproxy password"
    timeout = 120

    async def execute(self, ctx: SubtaskContext) -> None:
        found = await passwords(ctx)
        await set_password(ctx, found.old, found.new, "new")

    async def rollback(self, ctx: SubtaskContext) -> None:
        found = await passwords(ctx)
        if await is_down(ctx):
            # obfleet starts OBProxy with the cluster's password on its command line, which
            # overrides what it persisted: the old one, once the credential is back on it.
            ctx.log("the obproxy does not run: it starts with the cluster's password")
            return
        await set_password(ctx, found.new, found.old, "old")


class UpdateObproxyCredential(Subtask):
    """Every obproxy has the new password: the cluster's credential takes it (the spare keeps
    the old one until the task ends). Its rollback trades them back."""

    name = "Update obproxy credential"
    timeout = 60

    async def execute(self, ctx: SubtaskContext) -> None:
        changed = await write(ctx, lambda s: proxysys.switch(s, change_of(ctx), True))
        ctx.log(
            "the cluster's root@proxysys credential holds the new password"
            + ("" if changed else " (already)")
        )

    async def rollback(self, ctx: SubtaskContext) -> None:
        if await write(ctx, lambda s: proxysys.switch(s, change_of(ctx), False)):
            ctx.log("the cluster's root@proxysys credential holds the old password again")


class UpdateObproxyStatus(Subtask):
    """The obproxies RUNNING/NORMAL again, each having logged in with the new password; its
    rollback takes them back into the task."""

    name = "Update obproxy status"
    timeout = 60

    async def execute(self, ctx: SubtaskContext) -> None:
        for line in await write(ctx, lambda s: proxysys.release(s, change_of(ctx), ids(ctx), MARK)):
            ctx.log(line)

    async def rollback(self, ctx: SubtaskContext) -> None:
        for line in await write(
            ctx, lambda s: proxysys.hold_again(s, change_of(ctx), ids(ctx), MARK)
        ):
            ctx.log(line)


class FinishChangePassword(steps.FinishNode):
    """Says what changed and deletes the spare credential, which holds the old password."""

    def summary(self, ctx: SubtaskContext) -> str:
        return (
            f"the root@proxysys password of OBProxy cluster {ctx.require(keys.CLUSTER_NAME)} "
            f"changed on {len(ctx.get_list(keys.SERVER_IDS))} obproxies"
        )

    async def execute(self, ctx: SubtaskContext) -> None:
        spare_id = change_of(ctx).spare_id
        await write(ctx, lambda s: credentials.forget(s, spare_id))
        ctx.log(self.summary(ctx))
