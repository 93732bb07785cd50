"""OCP's "Prepare host" task: reach a newly added host over SSH, pin its key, read its facts,
check it has what an OBProxy deploy runs, and mark it ONLINE.

One task per host, four subtasks in a chain (OCP's own chain installs its agents between the
first and the last; obfleet has no agent):

* "Pre check for create host": connect with the host's credential; at this first contact the
  key the host offers is pinned on the host row (`host_key`), after which the SSH layer refuses
  any other key. Then check the tools obfleet's deploys use (below).
* "Collect host facts": OS name and release (`/etc/os-release`), architecture and host name
  (`uname`), stored on the host row; the host name becomes the host's `name`, as in OCP.
* "Create admin user": the user OBProxy runs as by default (`admin`, as OCP and OBD run it),
  created when missing (only when obfleet logs in as root; otherwise the log says so, and an
  install that runs as admin is refused there by its own check).
* "Update host status": ONLINE.

A step that fails leaves the host OFFLINE, with the reason in its log, and the task FAILED for
an operator to retry once the host is fixed. Every step is idempotent: connecting again,
pinning the key it already pinned, reading facts again, setting the same status.

The tools checked, and how the facts are read: hosts/facts.py.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from obfleet.engine.context import SubtaskContext
from obfleet.engine.definition import Subtask
from obfleet.engine.flow import Flow
from obfleet.errors import ApiError, ErrorCode
from obfleet.flows.runtime import connect, write
from obfleet.hosts import facts
from obfleet.hosts.ssh import fingerprint
from obfleet.hosts.users import UserState, ensure_user
from obfleet.obproxy.layout import DEFAULT_RUN_USER
from obfleet.records import host_access
from obfleet.store.models.hosts import HostStatus

TASK_NAME = "Prepare host"
HOST_ID = "host_id"


def build(host_id: int, address: str) -> Flow:
    """The "Prepare host" flow for one recorded host (at `address`)."""
    flow = Flow(TASK_NAME)
    flow.set(HOST_ID, str(host_id))
    flow.name_branch(-1, address)
    flow.chain(PreCheckHost, CollectHostFacts, CreateRunUser, UpdateHostStatus)
    return flow


# --- what the steps read and write --------------------------------------------------------


def _host_id(ctx: SubtaskContext) -> int:
    return int(ctx.require(HOST_ID))


def _set_status(host_id: int, status: HostStatus) -> Callable[[Session], None]:
    def change(session: Session) -> None:
        host_access.get_host(session, host_id).status = status

    return change


def _pin(host_id: int, key: str) -> Callable[[Session], bool]:
    """Pin `key` unless a key is pinned already; True if this call pinned it.

    A pinned key is never replaced here: the connection that delivered `key` was already
    checked against it by the SSH layer, so the two can only be equal.
    """

    def change(session: Session) -> bool:
        host = host_access.get_host(session, host_id)
        if host.host_key is not None:
            return False
        host.host_key = key
        return True

    return change


def _store_facts(host_id: int, found: facts.HostFacts) -> Callable[[Session], None]:
    def change(session: Session) -> None:
        host = host_access.get_host(session, host_id)
        host.hostname = found.hostname
        host.name = found.hostname
        host.architecture = found.architecture
        host.operating_system = found.operating_system
        host.operating_system_release = found.operating_system_release

    return change


# --- the steps ----------------------------------------------------------------------------


class _HostStep(Subtask):
    """A step that leaves the host OFFLINE when it fails, with the reason in its log."""

    async def execute(self, ctx: SubtaskContext) -> None:
        host_id = _host_id(ctx)
        try:
            await self.prepare(ctx, host_id)
        except Exception as exc:
            if isinstance(exc, ApiError) and exc.error_code is ErrorCode.HOST_NOT_FOUND:
                ctx.log(f"host {host_id} was deleted; nothing to prepare")
            else:
                ctx.log(f"{self.name} failed, host {host_id} is OFFLINE: {exc}")
                await write(ctx, _set_status(host_id, HostStatus.OFFLINE))
            raise

    async def prepare(self, ctx: SubtaskContext, host_id: int) -> None:
        raise NotImplementedError


class PreCheckHost(_HostStep):
    """Changes nothing on the host, so its rollback does nothing. The pinned key stays: it is
    what the host said it is, not a change made to it, and forgetting it would let the next
    contact trust whatever answers. A host that really was reinstalled is deleted and added
    again. The pooled connection stays open too: other tasks may be using it."""

    name = "Pre check for create host"
    timeout = 300

    async def prepare(self, ctx: SubtaskContext, host_id: int) -> None:
        conn = await connect(ctx, host_id)
        key = conn.host_key
        assert key is not None, "a connected SshConnection always knows the host key"
        ctx.log(f"connected to {conn.label}, host key {fingerprint(key)}")
        if await write(ctx, _pin(host_id, key)):
            ctx.log("first contact: host key pinned; a different key will be refused")
        else:
            ctx.log("host key matches the pinned key")
        await conn.run(facts.tools_check(), timeout=facts.COMMAND_TIMEOUT_S, log=ctx.log)


class CollectHostFacts(_HostStep):
    """Reads facts only: there is nothing on the host to roll back, and the stored facts stay
    true of the host whatever happens to the task."""

    name = "Collect host facts"
    timeout = 300

    async def prepare(self, ctx: SubtaskContext, host_id: int) -> None:
        found = await facts.read_facts(await connect(ctx, host_id), ctx.log)
        await write(ctx, _store_facts(host_id, found))
        ctx.log(
            f"host name {found.hostname}, architecture {found.architecture}, "
            f"OS {found.operating_system or 'unknown'} {found.operating_system_release or ''}"
        )


class CreateRunUser(_HostStep):
    """Creates the default run-as user if missing. Its rollback leaves the user: files on the
    host may belong to it by now, and a user is no harm to a host."""

    name = "Create admin user"
    timeout = 120

    async def prepare(self, ctx: SubtaskContext, host_id: int) -> None:
        state = await ensure_user(await connect(ctx, host_id), DEFAULT_RUN_USER, ctx.log)
        ctx.log(
            {
                UserState.EXISTS: f"user {DEFAULT_RUN_USER} exists",
                UserState.CREATED: f"user {DEFAULT_RUN_USER} created",
                UserState.NOT_ROOT: f"user {DEFAULT_RUN_USER} is missing, and obfleet does not "
                "log in as root here to create it: obproxies cannot run as it on this host",
            }[state]
        )


class UpdateHostStatus(Subtask):
    name = "Update host status"
    timeout = 60

    async def execute(self, ctx: SubtaskContext) -> None:
        await write(ctx, _set_status(_host_id(ctx), HostStatus.ONLINE))
        ctx.log("host is ONLINE")

    async def rollback(self, ctx: SubtaskContext) -> None:
        """A rolled-back preparation leaves the host OFFLINE: not usable until prepared."""
        await write(ctx, _set_status(_host_id(ctx), HostStatus.OFFLINE))
        ctx.log("host is OFFLINE")
