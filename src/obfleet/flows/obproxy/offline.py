""" "Offline obproxy": stop, uninstall and forget OBProxies (OCP's delete obproxy, and deleting a
cluster, with or without obproxies).

The DAG follows the upstreams of OCP's own sample (`800.api-delete-obproxy.md`; its seriesIds
are not an order). Every per-obproxy stage has one parallel branch per obproxy (parallelIdx i
works on the i-th of `obproxy_server_ids`), and the stages are joined by the nodes between:

    Start node                            the OBProxy cluster is recorded
    Prepare offline obproxy        [i]    where it lives, whether it runs, whether its files are
                                          its own (a failed install may point at foreign ones)
    Wait node                             every host was reached before anything is stopped
    Stop and uninstall obproxy     [i]    TERM then KILL what runs from the install path, then
                                          rename the install path aside and remove it
    Delete obproxy info                   the obproxy_server rows                (no rollback)
    Offline obproxy exporter       [i]    nothing to do: obfleet keeps no exporter registry
    Unreserve host                        nothing reserved beyond the row: logs what was freed
    Finish node                           forgets the cluster when obproxy_need_delete_cluster

A cluster without obproxies gets Start node -> Finish node.

The request (services/obproxy_offline.py) marked the rows DELETING, held by this task, and put
each row's status before that into `obproxy_previous_statuses`.

Idempotent: a step whose obproxy is no longer recorded has nothing to do (another delete
finished it); Stop finds the processes gone and the path absent on a second run, and a path
left renamed by an interrupted run (`<parent>/.<name>.removing-<id>`) is removed on the next.

Rollback (until "Delete obproxy info" has run; it and the Finish node that forgets a cluster
have `prohibit_rollback`): Stop and uninstall starts again an obproxy that was running before
the delete and whose files are still in place (once the path was renamed away its files are
being deleted: that rollback fails and says so, and deleting the obproxy again finishes the
removal); Prepare gives the row its status from before the delete. The exporter and unreserve
steps change nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath

from obfleet.engine.context import SubtaskContext
from obfleet.engine.definition import Subtask
from obfleet.engine.flow import Flow
from obfleet.flows.obproxy import acts, keys, steps
from obfleet.flows.runtime import StepError, connect, read, write
from obfleet.hosts import processes
from obfleet.hosts.processes import pids_in, pids_text
from obfleet.hosts.ssh import SshConnection
from obfleet.records import obproxy as records
from obfleet.records import obproxy_lifecycle as lifecycle
from obfleet.records.obproxy_lifecycle import Recorded
from obfleet.store.models.obproxy import ObproxyCluster, ObproxyServer, ObproxyStatus

DELETING = ObproxyStatus.DELETING


def build(cluster: ObproxyCluster, rows: Sequence[ObproxyServer], *, delete_cluster: bool) -> Flow:
    """The delete of `rows` (read before the request marked them); with `delete_cluster`, its
    Finish node forgets the cluster too."""
    flow = Flow(keys.OFFLINE)
    if not rows:
        flow.set(keys.CLUSTER_ID, str(cluster.id))
        flow.set(keys.CLUSTER_NAME, cluster.name)
        flow.set(keys.NEED_DELETE_CLUSTER, "true")
        flow.set(keys.SERVICE_TYPE, "OB_PROXY")
        flow.set(keys.PROHIBIT_ROLLBACK, "false")
        flow.set_list(keys.SERVER_IDS, [])
        flow.chain(StartOffline, FinishOffline)
        return flow
    flow.set_list(keys.SERVER_IDS, [row.id for row in rows])
    flow.set_list(keys.HOST_IDS, [row.host_id for row in rows])
    flow.name_branches([row.ip for row in rows])  # each stage's branch i: obproxy i
    flow.set_list(keys.PREVIOUS_STATUSES, [row.status for row in rows])
    flow.set(keys.SERVICE_TYPE, "OB_PROXY")
    flow.set(keys.NEED_DELETE_CLUSTER, "true" if delete_cluster else "false")
    flow.set(keys.PROHIBIT_ROLLBACK, "false")
    flow.set(keys.SERVICE_NAME, cluster.name)
    flow.set(keys.CLUSTER_ID, str(cluster.id))
    flow.set(keys.CLUSTER_NAME, cluster.name)
    start = flow.add(StartOffline)
    prepared = flow.parallel([PrepareOfflineObproxy], over=keys.SERVER_IDS, after=start)
    wait = flow.add(WaitNode, after=prepared)
    stopped = flow.parallel([StopAndUninstallObproxy], over=keys.SERVER_IDS, after=wait)
    deleted = flow.add(DeleteObproxyInfo, after=stopped)
    exporters = flow.parallel([OfflineObproxyExporter], over=keys.SERVER_IDS, after=deleted)
    unreserved = flow.add(UnreserveHost, after=exporters)
    flow.add(FinishOffline, after=unreserved)
    return flow


def removing_path(home: str, obproxy_id: int) -> str:
    """Where Stop renames the install path before deleting it: next to it, hidden, named after
    the obproxy, so a later run (of this task or of a new delete) finds what is left."""
    path = PurePosixPath(home)
    return str(path.parent / f".{path.name}.removing-{obproxy_id}")


# --- the host -----------------------------------------------------------------------------------


async def _remove(conn: SshConnection, ctx: SubtaskContext, found: Recorded) -> None:
    """Remove the install path by renaming it aside first (processes.remove_aside)."""
    where = found.placement
    aside = removing_path(where.home, found.id)
    try:
        removed = await processes.remove_aside(conn, where.home, aside, ctx.log)
    except processes.NotMoved as exc:
        raise StepError(
            f"cannot remove {where.home} on {where.ip}: {exc}. Nothing of it was deleted and "
            f"nothing runs from it: fix that and retry, or roll the task back to start "
            f"{found.label} again"
        ) from None
    except processes.NotDeleted as exc:
        raise StepError(
            f"{where.home} was moved to {aside} on {where.ip} but cannot be deleted: {exc}. Fix "
            f"that and retry; its files are partly deleted, so {found.label} can no longer be "
            "started again"
        ) from None
    if not removed:
        ctx.log(f"{where.home} does not exist on {where.ip}")


async def _report_ports(conn: SshConnection, ctx: SubtaskContext, found: Recorded) -> None:
    where = found.placement
    holders = await processes.port_holders(conn, where.ports, ctx.log)
    if not holders:
        ctx.log(f"ports {where.sql_port} and {where.exporter_port} are free on {where.ip}")
        return
    for port, who in sorted(holders.items()):
        ctx.log(
            f"port {port} on {where.ip} is in use by {', '.join(who)}: nothing of that runs "
            f"from {where.home}, so it is not this obproxy's; left alone"
        )


# --- the steps ----------------------------------------------------------------------------------


def _cluster_id(ctx: SubtaskContext) -> int:
    return int(ctx.require(keys.CLUSTER_ID))


def _obproxy_id(ctx: SubtaskContext) -> int:
    return int(ctx.item(keys.SERVER_IDS))


def _key(ctx: SubtaskContext, what: str) -> str:
    return keys.per_obproxy(_obproxy_id(ctx), what)


async def _current(ctx: SubtaskContext) -> Recorded | None:
    cluster_id, obproxy_id = _cluster_id(ctx), _obproxy_id(ctx)
    found = await read(ctx, lambda s: lifecycle.recorded(s, cluster_id, obproxy_id))
    if found is None:
        ctx.log(f"obproxy {obproxy_id} is no longer recorded (already deleted): nothing to do")
    return found


class StartOffline(Subtask):
    name = "Start node"
    timeout = 30

    async def execute(self, ctx: SubtaskContext) -> None:
        cluster_id = _cluster_id(ctx)
        await read(ctx, lambda s: records.get(s, cluster_id))
        ctx.log(f"offlining OBProxy cluster {ctx.require(keys.CLUSTER_NAME)} (id {cluster_id})")


class PrepareOfflineObproxy(Subtask):
    """Records where the obproxy lives and whether it runs, and decides whether the install
    path is its own; connects to its host, so an unreachable host fails here, before the Wait
    node lets any obproxy be stopped."""

    name = "Prepare offline obproxy"
    timeout = 1800

    async def execute(self, ctx: SubtaskContext) -> None:
        found = await _current(ctx)
        if found is None:
            ctx.set(_key(ctx, keys.UNINSTALL), "false")
            return
        lifecycle.require_deleting(found)
        where = found.placement
        for what, value in (
            (keys.IP, where.ip),
            (keys.SQL_PORT, where.sql_port),
            (keys.EXPORTER_PORT, where.exporter_port),
            (keys.INSTALL_PATH, where.home),
        ):
            ctx.set(_key(ctx, what), str(value))
        previous = steps.status_before(ctx)
        ours, why = await read(ctx, lambda s: lifecycle.home_ownership(s, found.id, previous))
        ctx.log(
            f"{found.label} of cluster {ctx.require(keys.CLUSTER_NAME)}: host {where.host_id}, "
            f"exporter port {where.exporter_port}, install path {where.home}; it was {previous} "
            "before this delete"
        )
        if not ours:
            ctx.log(f"its host is left as it is: {why}")
            ctx.set(_key(ctx, keys.WAS_RUNNING), "false")
            ctx.set(_key(ctx, keys.UNINSTALL), "false")
            return
        acts.check_removable(where.home)
        conn = await connect(ctx, where.host_id)
        pids = await pids_in(conn, where.home)
        entries = await processes.path_entries(conn, where.home, ctx.log)
        ctx.log(
            f"{where.home} on {where.ip} holds {', '.join(entries) or 'nothing'}; "
            + (f"pid {pids_text(pids)} run from it" if pids else "nothing runs from it")
            + f" ({why})"
        )
        ctx.set(_key(ctx, keys.WAS_RUNNING), "true" if pids else "false")
        ctx.set(_key(ctx, keys.UNINSTALL), "true")

    async def rollback(self, ctx: SubtaskContext) -> None:
        cluster_id, obproxy_id = _cluster_id(ctx), _obproxy_id(ctx)
        status = steps.status_before(ctx)
        ctx.log(await write(ctx, lambda s: lifecycle.restore(s, cluster_id, obproxy_id, status)))


class WaitNode(Subtask):
    """Joins the Prepare branches: nothing is stopped before every obproxy was prepared."""

    name = "Wait node"
    timeout = 30

    async def execute(self, ctx: SubtaskContext) -> None:
        ids = ctx.get_list(keys.SERVER_IDS)
        ctx.log(f"{len(ids)} obproxy(s) prepared ({', '.join(ids)}): stopping them")


class StopAndUninstallObproxy(Subtask):
    """Stops every process running from the install path (TERM, then KILL), renames the path
    aside and deletes it; the host then has no process and no file of it."""

    name = "Stop and uninstall obproxy"
    timeout = 1800

    async def execute(self, ctx: SubtaskContext) -> None:
        found = await _current(ctx)
        if found is None:
            return
        lifecycle.require_deleting(found)
        where = found.placement
        if ctx.require(_key(ctx, keys.UNINSTALL)) != "true":
            ctx.log(
                f"{where.home} on {where.ip} is not {found.label}'s own (see Prepare "
                "offline obproxy): nothing stopped, nothing removed"
            )
            return
        acts.check_removable(where.home)
        shared = await read(ctx, lambda s: lifecycle.home_shared_with(s, found))
        if shared:
            raise StepError(
                f"{where.home} on {where.ip} is also the install path of {shared}; not removing it"
            )
        conn = await connect(ctx, where.host_id)
        await processes.stop_all(conn, where.home, ctx.log)
        await _remove(conn, ctx, found)
        await _report_ports(conn, ctx, found)
        ctx.log(f"{found.label} is stopped and uninstalled from {where.ip}")

    async def rollback(self, ctx: SubtaskContext) -> None:
        found = await _current(ctx)
        if found is None:
            return
        where = found.placement
        if ctx.get(_key(ctx, keys.UNINSTALL)) != "true":
            ctx.log(f"nothing was done on {where.ip} for {found.label}")
            return
        conn = await connect(ctx, where.host_id)
        running = await pids_in(conn, where.home)
        if running:
            ctx.log(f"pid {pids_text(running)} run from {where.home}: it was not stopped")
            return
        if ctx.get(_key(ctx, keys.WAS_RUNNING)) != "true":
            ctx.log(f"{found.label} did not run before the delete; it stays stopped")
            return
        if not await processes.exists(conn, f"{where.home}/bin/obproxy", ctx.log):
            raise StepError(
                f"{found.label} cannot be started again: its install path {where.home} on "
                f"{where.ip} was already removed. Delete the obproxy again to finish removing it"
            )
        await acts.start_process(ctx, where)
        await acts.wait_login(ctx, where)


class DeleteObproxyInfo(Subtask):
    """Forgets the obproxies: their rows go, so the cluster no longer lists them."""

    name = "Delete obproxy info"
    timeout = 300
    prohibit_rollback = True  # a forgotten obproxy (whose files are gone) cannot come back

    async def execute(self, ctx: SubtaskContext) -> None:
        cluster_id = _cluster_id(ctx)
        ids = [int(i) for i in ctx.get_list(keys.SERVER_IDS)]
        for line in await write(ctx, lambda s: lifecycle.delete_deleting(s, cluster_id, ids)):
            ctx.log(line)


class OfflineObproxyExporter(Subtask):
    """OCP deregisters the exporter from its monitoring; obfleet has nothing to deregister."""

    name = "Offline obproxy exporter"
    timeout = 30

    async def execute(self, ctx: SubtaskContext) -> None:
        where = f"{ctx.get(_key(ctx, keys.IP), '?')}:{ctx.get(_key(ctx, keys.EXPORTER_PORT), '?')}"
        ctx.log(
            f"obproxy {_obproxy_id(ctx)}'s exporter ({where}) is registered nowhere: obfleet runs "
            "no exporter registry (no monitoring agent, no scrape target list), so there is "
            "nothing to deregister; the exporter went with the process"
        )


class UnreserveHost(Subtask):
    """OCP releases the hosts it reserved for the service; obfleet reserves nothing beyond the
    obproxy rows, so this says what was freed on each host and what remains there."""

    name = "Unreserve host"
    timeout = 1800

    async def execute(self, ctx: SubtaskContext) -> None:
        ids = ctx.get_list(keys.SERVER_IDS)
        host_ids = [int(h) for h in ctx.get_list(keys.HOST_IDS)]
        remaining = await read(ctx, lambda s: lifecycle.remaining_on(s, sorted(set(host_ids))))
        freed: dict[int, list[str]] = {}
        for obproxy_id, host_id in zip(ids, host_ids, strict=True):
            said = keys.per_obproxy
            ports = (
                ctx.get(said(obproxy_id, keys.SQL_PORT)),
                ctx.get(said(obproxy_id, keys.EXPORTER_PORT)),
            )
            path = ctx.get(said(obproxy_id, keys.INSTALL_PATH))
            what = f"obproxy {obproxy_id}" + (
                f" (ports {ports[0]} and {ports[1]}, {path})" if path else ""
            )
            freed.setdefault(host_id, []).append(what)
        for host_id, items in freed.items():
            left = remaining[host_id]
            ctx.log(
                f"host {host_id}: freed {'; '.join(items)}. "
                + (
                    f"obproxy {', '.join(map(str, left))} remain on it"
                    if left
                    else "No obproxy remains on it; obfleet holds no other reservation there"
                )
            )


class FinishOffline(Subtask):
    """Forgets the cluster (its links, its root@proxysys credential, its record) when asked."""

    name = "Finish node"
    timeout = 30
    prohibit_rollback = True  # a forgotten cluster record cannot be brought back

    async def execute(self, ctx: SubtaskContext) -> None:
        if ctx.get(keys.NEED_DELETE_CLUSTER) != "true":
            return
        cluster_id = _cluster_id(ctx)
        gone = await write(ctx, lambda s: records.forget(s, cluster_id))
        ctx.log(
            f"OBProxy cluster {ctx.require(keys.CLUSTER_NAME)} "
            f"{'deleted' if gone else 'was already deleted'}"
        )
