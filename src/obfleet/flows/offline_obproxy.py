"""The steps of "Offline obproxy": stop, uninstall and forget OBProxies (OCP's delete obproxy,
and the first part of deleting a cluster that still has obproxies).

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

The request (services/obproxy_offline.py) marked the rows DELETING/OPERATING in its own
transaction, so the health monitor and every other operation leave them alone, and put each
row's status before that into the listMap `obproxy_previous_statuses` (aligned with
`obproxy_server_ids`, as `host_ids` is).

Idempotent: a step whose obproxy is no longer recorded has nothing to do (another delete
finished it); Stop finds the processes gone and the path absent on a second run, and a path
left renamed by an interrupted run (`<parent>/.<name>.removing-<id>`) is removed on the next.

Rollback (operators may roll back a FAILED task until "Delete obproxy info" has run; that step
has `prohibit_rollback`, as does the Finish node that forgets a cluster):
- Stop and uninstall: an obproxy that was running before the delete and whose files are still
  in place (the step failed before or at the rename) is started again with its real command
  line and must log in again. Once the install path was renamed away its files are (being)
  deleted and it cannot come back: that rollback fails and says so; deleting the obproxy again
  finishes the removal.
- Prepare: the row's status (and operate status) as before the delete.
The exporter and unreserve steps change nothing, so they have nothing to undo.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from sqlalchemy import select
from sqlalchemy.orm import Session

from obfleet.engine.context import SubtaskContext
from obfleet.engine.definition import Subtask
from obfleet.engine.flow import Flow
from obfleet.flows import obproxy_host as host
from obfleet.flows.obproxy_cluster import (
    CLUSTER_ID,
    CLUSTER_NAME,
    NEED_DELETE_CLUSTER,
    FinishOffline,
    StartOffline,
)
from obfleet.flows.obproxy_host import HostStepError
from obfleet.hosts.shell import command
from obfleet.hosts.ssh import SshConnection
from obfleet.records import obproxy as records
from obfleet.records.obproxy import Placement
from obfleet.store.models.obproxy import ObproxyServer, ObproxyStatus

# Task context keys. listMap, aligned: one element per obproxy, in the order of the request.
SERVER_IDS = "obproxy_server_ids"
HOST_IDS = "host_ids"
PREVIOUS_STATUSES = "obproxy_previous_statuses"
# stringMap, as OCP's sample (plus the cluster's id and name, as every obfleet OBProxy task).
SERVICE_TYPE = "service_type"
SERVICE_NAME = "service_name"
PROHIBIT_ROLLBACK = "prohibit_rollback"
# stringMap, per obproxy, written by Prepare: key(obproxy_id, IP) -> "obproxy_7_ip".
IP = "ip"
SQL_PORT = "sql_port"
EXPORTER_PORT = "exporter_port"
INSTALL_PATH = "install_path"
WAS_RUNNING = "was_running"  # "true": a process ran from the install path when prepared
UNINSTALL = "uninstall"  # "true": the install path and what runs there are this obproxy's

DELETING = ObproxyStatus.DELETING


def key(obproxy_id: int | str, what: str) -> str:
    return f"obproxy_{obproxy_id}_{what}"


def removing_path(home: str, obproxy_id: int) -> str:
    """Where Stop renames the install path before deleting it: next to it, hidden, named after
    the obproxy, so a later run (of this task or of a new delete) finds what is left."""
    path = PurePosixPath(home)
    return str(path.parent / f".{path.name}.removing-{obproxy_id}")


def offline_flow(
    *,
    cluster_id: int,
    cluster_name: str,
    obproxies: Sequence[tuple[int, int, str]],
    delete_cluster: bool,
) -> Flow:
    """The "Offline obproxy" task for `obproxies`, (id, host id, status before the delete)
    each; with `delete_cluster` its Finish node forgets the cluster too."""
    if not obproxies:
        raise ValueError("offline_flow() needs at least one obproxy")
    flow = Flow("Offline obproxy")
    flow.set_list(SERVER_IDS, [o[0] for o in obproxies])
    flow.set_list(HOST_IDS, [o[1] for o in obproxies])
    flow.set_list(PREVIOUS_STATUSES, [o[2] for o in obproxies])
    flow.set(SERVICE_TYPE, "OB_PROXY")
    flow.set(NEED_DELETE_CLUSTER, "true" if delete_cluster else "false")
    flow.set(PROHIBIT_ROLLBACK, "false")
    flow.set(SERVICE_NAME, cluster_name)
    flow.set(CLUSTER_ID, str(cluster_id))
    flow.set(CLUSTER_NAME, cluster_name)
    start = flow.add(StartOffline)
    prepared = flow.parallel([PrepareOfflineObproxy], over=SERVER_IDS, after=start)
    wait = flow.add(WaitNode, after=prepared)
    stopped = flow.parallel([StopAndUninstallObproxy], over=SERVER_IDS, after=wait)
    deleted = flow.add(DeleteObproxyInfo, after=stopped)
    exporters = flow.parallel([OfflineObproxyExporter], over=SERVER_IDS, after=deleted)
    unreserved = flow.add(UnreserveHost, after=exporters)
    flow.add(FinishOffline, after=unreserved)
    return flow


# --- the metadb ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """An obproxy row as a step read it."""

    id: int
    status: str
    version: str | None
    placement: Placement
    label: str  # "obproxy 7 (198.18.0.12:2883)"


def _recorded(session: Session, cluster_id: int, obproxy_id: int) -> Recorded | None:
    row = session.get(ObproxyServer, obproxy_id)
    if row is None or row.cluster_id != cluster_id:
        return None
    return Recorded(
        row.id,
        row.status,
        row.version,
        Placement.of(row),
        f"obproxy {row.id} ({row.ip}:{row.sql_port})",
    )


def _require_deleting(recorded: Recorded) -> None:
    if recorded.status != DELETING:
        raise HostStepError(
            f"{recorded.label} is {recorded.status}, not DELETING: another operation has "
            "taken it over since this task was started; this task leaves it alone"
        )


def _shared_with(session: Session, recorded: Recorded) -> str | None:
    """Another recorded obproxy on the same host with the same install path (never made by
    obfleet's installs, which refuse it; checked because rm -rf cannot be undone)."""
    other = session.scalar(
        select(ObproxyServer.id).where(
            ObproxyServer.host_id == recorded.placement.host_id,
            ObproxyServer.install_path == recorded.placement.home,
            ObproxyServer.id != recorded.id,
        )
    )
    return None if other is None else f"obproxy {other}"


def _ownership(session: Session, obproxy_id: int, previous: str) -> tuple[bool, str]:
    """Whether what lives at the install path is this obproxy's own, and why."""
    row = session.get(ObproxyServer, obproxy_id)
    if row is None:
        return False, f"obproxy {obproxy_id} is no longer recorded"
    if previous in records.SETTLED or row.version is not None:
        return True, f"it ran as obproxy {row.id}"
    if row.install_checked:
        return True, (
            f"its install found {row.install_path} empty and the ports free before it shipped "
            "anything, so what is there now is its own"
        )
    return False, (
        f"it never ran and its install never found {row.install_path} on {row.ip} empty before "
        "shipping anything (it stopped at or before its check of the host), so whatever runs "
        "from or lies in it is not its own"
    )


def _restore(session: Session, cluster_id: int, obproxy_id: int, status: str) -> str:
    row = session.get(ObproxyServer, obproxy_id)
    if row is None or row.cluster_id != cluster_id:
        return f"obproxy {obproxy_id} is no longer recorded"
    if row.status != DELETING:
        return f"obproxy {obproxy_id} is {row.status} already; left as it is"
    # Back to a settled status, held by none; or to CREATING or DELETING, the status a failed
    # task left, which holds nothing until it is retried (its targets say so then).
    records.set_status(row, status, None)
    return f"obproxy {obproxy_id} is {status} again, as before the delete"


def _delete_rows(session: Session, cluster_id: int, ids: list[int]) -> list[str]:
    said = []
    for obproxy_id in ids:
        row = session.get(ObproxyServer, obproxy_id)
        if row is None or row.cluster_id != cluster_id:
            said.append(f"obproxy {obproxy_id} was already deleted")
            continue
        if row.status != DELETING:
            raise HostStepError(
                f"obproxy {obproxy_id} is {row.status}, not DELETING: another operation has "
                "taken it over; not deleting its record"
            )
        session.delete(row)
        said.append(
            f"obproxy {row.id} deleted: {row.ip}:{row.sql_port} (exporter {row.exporter_port}), "
            f"{row.install_path}"
        )
    return said


def _remaining_on(session: Session, host_ids: list[int]) -> dict[int, list[int]]:
    rows = session.execute(
        select(ObproxyServer.host_id, ObproxyServer.id).where(ObproxyServer.host_id.in_(host_ids))
    ).all()
    found: dict[int, list[int]] = {h: [] for h in host_ids}
    for host_id, obproxy_id in rows:
        found[host_id].append(obproxy_id)
    return found


# --- the host -----------------------------------------------------------------------------------


async def _exists(conn: SshConnection, ctx: SubtaskContext, path: str) -> bool:
    result = await conn.run(
        command("test", "-e", path), check=False, timeout=host.COMMAND_TIMEOUT_S, log=ctx.log
    )
    return result.ok


def _why(stderr: str) -> str:
    return stderr.strip().splitlines()[-1] if stderr.strip() else "no reason given"


async def _remove(conn: SshConnection, ctx: SubtaskContext, recorded: Recorded) -> None:
    """Rename the install path aside (one atomic step: until it succeeds nothing is deleted),
    stop anything that followed it, then delete it."""
    where = recorded.placement
    aside = removing_path(where.home, recorded.id)
    if await _exists(conn, ctx, where.home):
        if await _exists(conn, ctx, aside):
            ctx.log(f"{aside} is left from an earlier attempt; removing it first")
            await _delete(conn, ctx, recorded, aside)
        moved = await conn.run(
            command("mv", "--", where.home, aside),
            check=False,
            timeout=host.COMMAND_TIMEOUT_S,
            log=ctx.log,
        )
        if not moved.ok:
            raise HostStepError(
                f"cannot remove {where.home} on {where.ip}: {_why(moved.stderr)}. Nothing of it "
                f"was deleted and nothing runs from it: fix that and retry, or roll the task "
                f"back to start {recorded.label} again"
            )
        ctx.log(f"{where.home} renamed to {aside}; deleting it")
        await host.stop_all(conn, ctx, aside)  # nothing should have followed it; make sure
    elif await _exists(conn, ctx, aside):
        ctx.log(f"{where.home} is gone; {aside} is left from an earlier attempt")
    else:
        ctx.log(f"{where.home} does not exist on {where.ip}")
        return
    await _delete(conn, ctx, recorded, aside)


async def _delete(conn: SshConnection, ctx: SubtaskContext, recorded: Recorded, path: str) -> None:
    removed = await conn.run(
        command("rm", "-rf", "--", path), check=False, timeout=600, log=ctx.log
    )
    if not removed.ok or await _exists(conn, ctx, path):
        raise HostStepError(
            f"{recorded.placement.home} was moved to {path} on {recorded.placement.ip} but "
            f"cannot be deleted: {_why(removed.stderr)}. Fix that and retry; its files are "
            f"partly deleted, so {recorded.label} can no longer be started again"
        )
    ctx.log(f"{path} deleted")


async def _report_ports(conn: SshConnection, ctx: SubtaskContext, where: Placement) -> None:
    holders = await host.port_holders(conn, ctx, where.ports)
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
    return int(ctx.require(CLUSTER_ID))


def _obproxy_id(ctx: SubtaskContext) -> int:
    return int(ctx.item(SERVER_IDS))


def _previous_status(ctx: SubtaskContext) -> str:
    return ctx.get_list(PREVIOUS_STATUSES)[ctx.parallel_idx]


async def _current(ctx: SubtaskContext) -> Recorded | None:
    cluster_id, obproxy_id = _cluster_id(ctx), _obproxy_id(ctx)
    recorded = await host.read(ctx, lambda s: _recorded(s, cluster_id, obproxy_id))
    if recorded is None:
        ctx.log(f"obproxy {obproxy_id} is no longer recorded (already deleted): nothing to do")
    return recorded


class PrepareOfflineObproxy(Subtask):
    """Records where the obproxy lives and whether it runs, and decides whether the install
    path is its own; connects to its host, so an unreachable host fails here, before the Wait
    node lets any obproxy be stopped."""

    name = "Prepare offline obproxy"
    timeout = 1800

    async def execute(self, ctx: SubtaskContext) -> None:
        recorded = await _current(ctx)
        if recorded is None:
            ctx.set(key(_obproxy_id(ctx), UNINSTALL), "false")
            return
        _require_deleting(recorded)
        where = recorded.placement
        for what, value in (
            (IP, where.ip),
            (SQL_PORT, where.sql_port),
            (EXPORTER_PORT, where.exporter_port),
            (INSTALL_PATH, where.home),
        ):
            ctx.set(key(recorded.id, what), str(value))
        previous = _previous_status(ctx)
        ours, why = await host.read(ctx, lambda s: _ownership(s, recorded.id, previous))
        ctx.log(
            f"{recorded.label} of cluster {ctx.require(CLUSTER_NAME)}: host {where.host_id}, "
            f"exporter port {where.exporter_port}, install path {where.home}; it was {previous} "
            "before this delete"
        )
        if not ours:
            ctx.log(f"its host is left as it is: {why}")
            ctx.set(key(recorded.id, WAS_RUNNING), "false")
            ctx.set(key(recorded.id, UNINSTALL), "false")
            return
        host.check_removable(where.home)
        conn = await host.connect(ctx, where)
        pids = await host.pids_in(conn, where.home)
        entries = await host.path_entries(conn, ctx, where.home)
        ctx.log(
            f"{where.home} on {where.ip} holds {', '.join(entries) or 'nothing'}; "
            + (f"pid {host.pids_text(pids)} run from it" if pids else "nothing runs from it")
            + f" ({why})"
        )
        ctx.set(key(recorded.id, WAS_RUNNING), "true" if pids else "false")
        ctx.set(key(recorded.id, UNINSTALL), "true")

    async def rollback(self, ctx: SubtaskContext) -> None:
        cluster_id, obproxy_id = _cluster_id(ctx), _obproxy_id(ctx)
        status = _previous_status(ctx)
        ctx.log(await host.write(ctx, lambda s: _restore(s, cluster_id, obproxy_id, status)))


class WaitNode(Subtask):
    """Joins the Prepare branches: nothing is stopped before every obproxy was prepared."""

    name = "Wait node"
    timeout = 30

    async def execute(self, ctx: SubtaskContext) -> None:
        ids = ctx.get_list(SERVER_IDS)
        ctx.log(f"{len(ids)} obproxy(s) prepared ({', '.join(ids)}): stopping them")


class StopAndUninstallObproxy(Subtask):
    """Stops every process running from the install path (TERM, then KILL), renames the path
    aside and deletes it; the host then has no process and no file of it."""

    name = "Stop and uninstall obproxy"
    timeout = 1800

    async def execute(self, ctx: SubtaskContext) -> None:
        recorded = await _current(ctx)
        if recorded is None:
            return
        _require_deleting(recorded)
        where = recorded.placement
        if ctx.require(key(recorded.id, UNINSTALL)) != "true":
            ctx.log(
                f"{where.home} on {where.ip} is not {recorded.label}'s own (see Prepare "
                "offline obproxy): nothing stopped, nothing removed"
            )
            return
        host.check_removable(where.home)
        shared = await host.read(ctx, lambda s: _shared_with(s, recorded))
        if shared:
            raise HostStepError(
                f"{where.home} on {where.ip} is also the install path of {shared}; not removing it"
            )
        conn = await host.connect(ctx, where)
        await host.stop_all(conn, ctx, where.home)
        await _remove(conn, ctx, recorded)
        await _report_ports(conn, ctx, where)
        ctx.log(f"{recorded.label} is stopped and uninstalled from {where.ip}")

    async def rollback(self, ctx: SubtaskContext) -> None:
        recorded = await _current(ctx)
        if recorded is None:
            return
        where = recorded.placement
        if ctx.get(key(recorded.id, UNINSTALL)) != "true":
            ctx.log(f"nothing was done on {where.ip} for {recorded.label}")
            return
        conn = await host.connect(ctx, where)
        running = await host.pids_in(conn, where.home)
        if running:
            ctx.log(f"pid {host.pids_text(running)} run from {where.home}: it was not stopped")
            return
        if ctx.get(key(recorded.id, WAS_RUNNING)) != "true":
            ctx.log(f"{recorded.label} did not run before the delete; it stays stopped")
            return
        if not await _exists(conn, ctx, f"{where.home}/bin/obproxy"):
            raise HostStepError(
                f"{recorded.label} cannot be started again: its install path {where.home} on "
                f"{where.ip} was already removed. Delete the obproxy again to finish removing it"
            )
        await host.start_process(ctx, where)
        await host.wait_login(ctx, where)


class DeleteObproxyInfo(Subtask):
    """Forgets the obproxies: their rows go, so the cluster no longer lists them."""

    name = "Delete obproxy info"
    timeout = 300
    prohibit_rollback = True  # a forgotten obproxy (whose files are gone) cannot come back

    async def execute(self, ctx: SubtaskContext) -> None:
        cluster_id = _cluster_id(ctx)
        ids = [int(i) for i in ctx.get_list(SERVER_IDS)]
        for line in await host.write(ctx, lambda s: _delete_rows(s, cluster_id, ids)):
            ctx.log(line)


class OfflineObproxyExporter(Subtask):
    """OCP deregisters the exporter from its monitoring; obfleet has nothing to deregister."""

    name = "Offline obproxy exporter"
    timeout = 30

    async def execute(self, ctx: SubtaskContext) -> None:
        obproxy_id = _obproxy_id(ctx)
        ip, port = ctx.get(key(obproxy_id, IP), "?"), ctx.get(key(obproxy_id, EXPORTER_PORT), "?")
        where = f"{ip}:{port}"
        ctx.log(
            f"obproxy {obproxy_id}'s exporter ({where}) is registered nowhere: obfleet runs no "
            "exporter registry (no monitoring agent, no scrape target list), so there is nothing "
            "to deregister; the exporter went with the process"
        )


class UnreserveHost(Subtask):
    """OCP releases the hosts it reserved for the service; obfleet reserves nothing beyond the
    obproxy rows, so this says what was freed on each host and what remains there."""

    name = "Unreserve host"
    timeout = 1800

    async def execute(self, ctx: SubtaskContext) -> None:
        ids = ctx.get_list(SERVER_IDS)
        host_ids = [int(h) for h in ctx.get_list(HOST_IDS)]
        remaining = await host.read(ctx, lambda s: _remaining_on(s, sorted(set(host_ids))))
        freed: dict[int, list[str]] = {}
        for obproxy_id, host_id in zip(ids, host_ids, strict=True):
            ports = (ctx.get(key(obproxy_id, SQL_PORT)), ctx.get(key(obproxy_id, EXPORTER_PORT)))
            path = ctx.get(key(obproxy_id, INSTALL_PATH))
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
