"""What the steps of obfleet's OBProxy tasks do to one OBProxy (a `Placement`: cluster, host,
ports, install path): ship a package's files, start the process with its real command line,
wait until root@proxysys logs in, give it the proxyro password and the cluster's runtime
parameters, stop it, remove its files. Each lives here once; the tasks decide when each runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from obfleet.engine.context import SubtaskContext
from obfleet.flows.runtime import StepError, app, connect, read
from obfleet.hosts import processes
from obfleet.hosts.processes import COMMAND_TIMEOUT_S, pids_in, pids_text
from obfleet.hosts.shell import command
from obfleet.hosts.ssh import SshConnection
from obfleet.obproxy import cmdline, layout
from obfleet.obproxy.admin import AdminError, ProxysysClient
from obfleet.obproxy.layout import LayoutError
from obfleet.obproxy.parameter_lists import StartParameters
from obfleet.packages.payload import load_payload
from obfleet.records import obproxy as records
from obfleet.records import obproxy_access as access
from obfleet.records import packages
from obfleet.records.obproxy import Placement
from obfleet.store import package_chunks

HOME_DIRS = ("bin", "lib", "etc", "log", "run")
START_TIMEOUT_S = 120.0  # the daemon's parent returns once it listens (or gives up)
LOGIN_WAIT_S = 240.0  # below the subtask's timeout, so the failure says what it waited for
LIVENESS_EVERY_S = 5.0  # how often a login wait looks for the process on the host


async def host_of(ctx: SubtaskContext, placement: Placement) -> SshConnection:
    return await connect(ctx, placement.host_id)


# --- files --------------------------------------------------------------------------------------


async def verify_binary(conn: SshConnection, ctx: SubtaskContext, placement: Placement) -> None:
    """`obproxy -V` proves the binary runs on the host (architecture, libraries). Judged by its
    banner, `obproxy (<package> <release>)`: the exit status of -V differs between versions."""
    result = await conn.run(
        cmdline.version_command(placement.home), check=False, timeout=COMMAND_TIMEOUT_S, log=ctx.log
    )
    lines = (result.stdout + result.stderr).splitlines()
    if not any(line.startswith("obproxy (") for line in lines):
        raise StepError(
            f"{placement.home}/bin/obproxy does not run on {placement.ip} "
            f"(exit {result.exit_status}): {result.stderr.strip()[-500:]}"
        )


async def ship_package(ctx: SubtaskContext, placement: Placement, package_id: int) -> None:
    """Ships bin/ and lib/ of the RPM, read once on the obfleet side (no rpm on the host), into
    the install path; files whose sha256 already matches stay; `obproxy -V` must then run."""
    package = await read(ctx, lambda s: packages.get(s, package_id))
    obfleet = app(ctx)
    payload = await load_payload(
        obfleet.settings.data_dir / "cache" / "packages",
        package.sha1,
        lambda: package_chunks.local_copy(obfleet.db, obfleet.settings.packages_dir, package),
    )
    conn = await host_of(ctx, placement)
    dirs = [f"{placement.home}/{d}" for d in HOME_DIRS]
    await conn.run(command("mkdir", "-p", "--", *dirs), timeout=COMMAND_TIMEOUT_S, log=ctx.log)
    paths = [f"{placement.home}/{f.path}" for f in payload.files]
    present = await conn.sha256_many(paths, missing_ok=True, timeout=COMMAND_TIMEOUT_S, log=ctx.log)
    missing = [f for f in payload.files if present.get(f"{placement.home}/{f.path}") != f.sha256]
    # Over one SFTP session: each file goes to a temporary name, all are checked with sha256sum
    # on the host, then renamed into place.
    await conn.put_files(
        [(payload.root / f.path, f"{placement.home}/{f.path}", f.mode) for f in missing],
        log=ctx.log,
    )
    ctx.log(
        f"{package.file_name}: {len(missing)} file(s) sent, "
        f"{len(payload.files) - len(missing)} already in place under {placement.home}"
    )
    user = await read(ctx, lambda s: records.get(s, placement.cluster_id).run_user)
    await give_to(conn, ctx, placement.home, user)
    await verify_binary(conn, ctx, placement)


async def give_to(conn: SshConnection, ctx: SubtaskContext, home: str, user: str) -> None:
    """The install path and everything in it become the run-as user's (and its group's), so
    OBProxy running as that user can write its etc/, log/ and run/."""
    if user == layout.ROOT:
        return  # shipped by root: root's already
    await conn.run(
        command("chown", "-R", "--", f"{layout.check_run_user(user)}:", home),
        timeout=COMMAND_TIMEOUT_S,
        log=ctx.log,
    )
    ctx.log(f"{home} belongs to {user}")


def check_removable(home: str) -> str:
    """`home` if obfleet may delete it (obproxy/layout.py says which paths it may)."""
    try:
        return layout.check_removable(home)
    except LayoutError as exc:
        raise StepError(str(exc)) from None


async def remove_home(ctx: SubtaskContext, placement: Placement) -> None:
    """Removes the install path; refused while a process still runs from it, and for a path
    that is not an install path (check_removable)."""
    check_removable(placement.home)
    conn = await host_of(ctx, placement)
    running = await pids_in(conn, placement.home)
    if running:
        raise StepError(f"pid {pids_text(running)} run from {placement.home}; not removing it")
    await conn.run(
        command("rm", "-rf", "--", placement.home), timeout=COMMAND_TIMEOUT_S, log=ctx.log
    )
    ctx.log(f"{placement.home} removed from {placement.ip}")


# --- the process ------------------------------------------------------------------------------


async def start_process(
    ctx: SubtaskContext, placement: Placement, parameters: StartParameters | None = None
) -> None:
    """Starts OBProxy from the install path with its real command line (it daemonizes and the
    command returns); nothing happens when one already runs from there. The command line
    carries the cluster's recorded startup parameters unless `parameters` says otherwise."""
    obfleet = app(ctx)
    spec = await read(
        ctx,
        lambda s: access.start_spec(s, obfleet.secrets, obfleet.settings, placement, parameters),
    )
    hashed = ctx.secret(cmdline.sha1_hex(ctx.secret(spec.proxysys_password)))
    conn = await host_of(ctx, placement)
    running = await pids_in(conn, placement.home)
    if running:
        ctx.log(
            f"OBProxy already runs from {placement.home} (pid {pids_text(running)}); not starting"
        )
        return
    await conn.run(
        cmdline.start_command(spec),
        timeout=START_TIMEOUT_S,
        log=ctx.log,
        redact=[hashed, spec.proxysys_password],
    )
    running = await pids_in(conn, placement.home)
    if not running:
        raise await _exited(conn, ctx, placement, "right after it started")
    ctx.log(f"OBProxy runs from {placement.home} on {placement.ip} (pid {pids_text(running)})")


async def _exited(
    conn: SshConnection, ctx: SubtaskContext, placement: Placement, when: str
) -> StepError:
    """The error for an OBProxy that is gone, after the tail of its log went to the task log
    (redacted by the subtask's secrets: passwords, and their SHA1 as the command line has it)."""
    log_file = f"{placement.home}/log/obproxy.log"
    await conn.run(
        command("tail", "-n", "20", "--", log_file),
        check=False,
        timeout=COMMAND_TIMEOUT_S,
        log=ctx.log,
    )
    return StepError(f"OBProxy exited {when}; see {log_file} on {placement.ip}")


async def _still_running(ctx: SubtaskContext, placement: Placement) -> None:
    conn = await host_of(ctx, placement)
    if not await pids_in(conn, placement.home):
        raise await _exited(conn, ctx, placement, "before root@proxysys could log in")


async def stop_process(ctx: SubtaskContext, placement: Placement) -> None:
    """Stops every process running from the install path (TERM, then KILL)."""
    await processes.stop_all(await host_of(ctx, placement), placement.home, ctx.log)


async def admin_client(ctx: SubtaskContext, placement: Placement) -> ProxysysClient:
    """root@proxysys of the OBProxy, its password declared to the log's redactor."""
    obfleet = app(ctx)
    client = await read(ctx, lambda s: access.proxysys(s, obfleet.secrets, placement))
    ctx.secret(client.password)
    return client


async def wait_login(ctx: SubtaskContext, placement: Placement) -> None:
    """OBProxy is up when root@proxysys can log in on its SQL port (OBD's and obshell's check).
    While it cannot, the host is asked every LIVENESS_EVERY_S whether OBProxy still runs: one
    that exited (or a host that stopped answering) fails the step then, not at LOGIN_WAIT_S."""
    client = await admin_client(ctx, placement)
    ctx.secret(cmdline.sha1_hex(client.password))  # how its command line and log carry it
    started = looked = time.monotonic()
    tries = 0
    while True:
        tries += 1
        try:
            await client.ping()
        except AdminError as exc:
            now = time.monotonic()
            if now - started > LOGIN_WAIT_S:
                raise StepError(
                    f"{client.label} did not log in within {LOGIN_WAIT_S:g}s: {exc}"
                ) from None
            if tries == 1 or tries % 10 == 0:
                ctx.log(f"not yet: {exc}")
            if now - looked >= LIVENESS_EVERY_S:
                looked = now
                await _still_running(ctx, placement)
            await asyncio.sleep(1)
            continue
        ctx.log(f"{client.label} logged in (try {tries})")
        return


async def logs_in(ctx: SubtaskContext, placement: Placement, password: str) -> bool:
    """Whether root@proxysys logs in with `password` (declared to the log's redactor)."""
    try:
        await ProxysysClient(placement.ip, placement.sql_port, ctx.secret(password)).ping()
    except AdminError:
        return False
    return True


async def switch_proxysys_password(
    ctx: SubtaskContext, placement: Placement, current: str, wanted: str
) -> None:
    """`alter proxyconfig set obproxy_sys_password` (OBProxy hashes the plaintext itself), then
    a login with the new one."""
    client = ProxysysClient(placement.ip, placement.sql_port, ctx.secret(current))
    await client.alter_proxyconfig("obproxy_sys_password", ctx.secret(wanted))
    if not await logs_in(ctx, placement, wanted):
        raise StepError(
            f"root@proxysys on {placement.ip}:{placement.sql_port} refuses the new password"
        )


async def set_proxyro_password(ctx: SubtaskContext, placement: Placement) -> None:
    """observer_sys_password = the proxyro password of the linked clusters, which OBProxy uses
    to read their metadata. Sent in plain text as OBD does: OBProxy hashes it itself."""
    client = await admin_client(ctx, placement)
    obfleet = app(ctx)
    proxyro = await read(
        ctx, lambda s: access.proxyro_password(s, obfleet.secrets, placement.cluster_id)
    )
    if proxyro is None:
        ctx.log(
            "the OBProxy cluster connects to no OceanBase cluster yet: observer_sys_password is "
            "left unset (restart the obproxies once a cluster is linked)"
        )
        return
    ctx.secret(proxyro)
    shown = await client.show_proxyconfig("observer_sys_password")
    if shown.get("observer_sys_password") == ctx.secret(cmdline.sha1_hex(proxyro)):
        ctx.log("observer_sys_password is already the proxyro password")
        return
    await client.alter_proxyconfig("observer_sys_password", proxyro)
    ctx.log(f"observer_sys_password set to the proxyro password on {client.label}")


async def cluster_parameters(ctx: SubtaskContext, cluster_id: int) -> list[tuple[str, str]]:
    """The cluster's runtime parameters, as recorded."""
    return await read(
        ctx, lambda s: [(p["name"], p["value"]) for p in records.get(s, cluster_id).parameters]
    )


async def set_parameters(
    ctx: SubtaskContext, placement: Placement, items: Sequence[tuple[str, str]]
) -> None:
    """`alter proxyconfig set` each item whose value `show proxyconfig` shows differently."""
    client = await admin_client(ctx, placement)
    if not items:
        ctx.log(f"no runtime parameter to set on {client.label}")
        return
    current = await client.show_proxyconfig()
    for name, value in items:
        if current.get(name) == value:
            ctx.log(f"{name} is already {value}")
            continue
        await client.alter_proxyconfig(name, value)
        ctx.log(f"alter proxyconfig set {name} = {value}")
