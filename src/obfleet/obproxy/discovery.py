"""Finding an OBProxy that already runs on a host, for a take-over: the one process listening
on its SQL port, the version its binary prints, and the root@proxysys password it accepts.

Each refusal is a `NotAdoptable` whose message says what to do; nothing here changes the host
or the OBProxy."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from obfleet.hosts import processes
from obfleet.hosts.processes import COMMAND_TIMEOUT_S, ProcessFacts, pids_text
from obfleet.hosts.ssh import SshConnection
from obfleet.obproxy import cmdline
from obfleet.obproxy.admin import AdminError, ProxysysClient
from obfleet.obproxy.adoption import NotAdoptable

Log = Callable[[str], None]

# Where a root@proxysys password to try comes from, in the order they are tried.
CLUSTER, CREDENTIAL, EMPTY = "cluster", "credential", "empty"
_SOURCES = {
    CLUSTER: "this OBProxy cluster's",
    CREDENTIAL: "the given credential's",
    EMPTY: "an empty one",
}


async def listener(conn: SshConnection, ip: str, sql_port: int, log: Log) -> ProcessFacts:
    """The single process listening on `sql_port`, as /proc shows it."""
    where = f"{ip}:{sql_port}"
    owners = await processes.port_owners(conn, [sql_port], log)
    if sql_port not in owners:
        raise NotAdoptable(
            f"nothing listens on {where}: there is no OBProxy to take over there. Give the SQL "
            "port the OBProxy listens on (its listen_port, -p) and make sure it runs, then "
            "retry (or roll this task back and take it over again with the right sqlPort)"
        )
    holders = owners[sql_port]
    if not holders:
        raise NotAdoptable(
            f"port {where} is held by a process obfleet cannot see: it belongs to another user "
            "than the one obfleet connects to the host as. Connect obfleet to the host as root "
            "or as the OBProxy's user, then retry"
        )
    if len(holders) > 1:
        pids = pids_text(o.pid for o in holders)
        raise NotAdoptable(
            f"{len(holders)} processes hold {where} (pid {pids}); obfleet takes over a single "
            "obproxy process: leave only one (an OBProxy hot upgrade ends with one), then retry"
        )
    facts = await processes.process_facts(conn, holders[0].pid)
    log(
        f"pid {facts.pid} listens on {where}: user {facts.user or '?'}, working directory "
        f"{facts.cwd or '?'}, executable {facts.exe or '?'}"
    )
    return facts


async def version(
    conn: SshConnection, facts: ProcessFacts, home: str, where: str, log: Log
) -> tuple[str, str | None]:
    """(version, build) from the banner of `<home>/bin/obproxy -V`, as OBD and obshell read it."""
    result = await conn.run(
        cmdline.version_command(home), check=False, timeout=COMMAND_TIMEOUT_S, log=log
    )
    banner = cmdline.parse_banner(result.stdout + "\n" + result.stderr)
    if banner is None:
        raise NotAdoptable(
            f"{home}/bin/obproxy -V does not print OBProxy's version banner (exit "
            f"{result.exit_status}): pid {facts.pid} on {where} is not OBProxy"
        )
    return banner


async def log_in(
    ip: str, sql_port: int, passwords: Sequence[tuple[str, str]], log: Log
) -> tuple[str, dict[str, str]]:
    """The source of the first password root@proxysys accepts, and its `show proxyconfig`.
    `passwords` are (source, password) pairs; the caller has registered them as secrets."""
    refusals: list[tuple[str, AdminError]] = []
    for source, password in passwords:
        try:
            return source, await ProxysysClient(ip, sql_port, password).show_proxyconfig()
        except AdminError as exc:
            refusals.append((source, exc))
            log(f"root@proxysys refused the {source} password ({exc})")
    raise NotAdoptable(
        f"root@proxysys on {ip}:{sql_port} accepts none of the passwords obfleet knows "
        f"({', '.join(_SOURCES[source] for source, _ in refusals)}; last answer "
        f"{refusals[-1][1]}). Tell obfleet its current password by creating an OBPROXY "
        "credential with it (POST /api/v2/credentials) and taking the OBProxy over with "
        "hosts[].proxysysCredentialId set to it; or clear it on the OBProxy (as root@proxysys, "
        "alter proxyconfig set obproxy_sys_password to the empty string ''); obfleet then gives "
        "it the cluster's own password. Then retry. (OBProxy also refuses root@proxysys from "
        "non-private addresses unless skip_proxy_sys_private_check is true.)"
    )
