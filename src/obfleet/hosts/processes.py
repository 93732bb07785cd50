"""What runs on a host, read from /proc over SSH: who listens on a port, what runs from a
directory, what one process is; and stopping what runs from a directory.

The kernel's own tables, as OBD reads them: no ss, netstat or pgrep needed on the host. A
process belongs to an install path when its working directory is that path (OBProxy is
started there and daemonizes without changing directory).
"""

from __future__ import annotations

import asyncio
import posixpath
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from obfleet.hosts.shell import command, quote
from obfleet.hosts.ssh import LogFn, SshConnection

COMMAND_TIMEOUT_S = 60.0
STOP_WAIT_S = (("TERM", 10.0), ("KILL", 5.0))
POLL_S = 0.3
LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


class StillRunning(RuntimeError):
    """Processes would not stop; the message names them."""


class NotMoved(RuntimeError):
    """A directory could not be renamed aside: nothing of it was deleted. The message is why."""


class NotDeleted(RuntimeError):
    """A directory renamed aside could not be deleted: it is partly gone. The message is why."""


def parse_listeners(proc_net_tcp: str, ports: Collection[int]) -> dict[int, set[int]]:
    """Socket inodes listening on each of `ports`, from /proc/net/tcp and /proc/net/tcp6."""
    found: dict[int, set[int]] = {}
    for line in proc_net_tcp.splitlines():
        fields = line.split()
        if len(fields) < 10 or fields[3] != LISTEN:
            continue
        try:
            port = int(fields[1].rpartition(":")[2], 16)
            inode = int(fields[9])
        except ValueError:
            continue
        if port in ports:
            found.setdefault(port, set()).add(inode)
    return found


def _owners_script(inodes: Iterable[int]) -> str:
    """Prints `socket:[inode] pid cmdline` for every process holding one of the sockets (printf,
    not echo: dash's echo would expand backslashes found in a command line)."""
    patterns = "|".join(quote(f"socket:[{int(inode)}]") for inode in sorted(inodes))
    args = "$(tr '\\000\\n' '  ' < \"$p/cmdline\" 2>/dev/null)"
    return (
        'for p in /proc/[0-9]*; do for f in "$p"/fd/*; do l=$(readlink "$f" 2>/dev/null); '
        f'case "$l" in {patterns}) printf \'%s %s %s\\n\' "$l" "${{p#/proc/}}" "{args}";; '
        "esac; done; done; true"
    )


@dataclass(frozen=True)
class PortOwner:
    """A process holding a listening socket: its pid and its command line (NULs as blanks)."""

    pid: int
    args: str


async def port_owners(
    conn: SshConnection, ports: Collection[int], log: LogFn | None = None
) -> dict[int, list[PortOwner]]:
    """For each port something listens on: the processes holding it, by pid (an empty list when
    the socket belongs to a process obfleet cannot see, e.g. another user's without root)."""
    table = await conn.run(
        "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null; true", timeout=COMMAND_TIMEOUT_S
    )
    listening = parse_listeners(table.stdout, ports)
    if not listening:
        return {}
    port_of = {inode: port for port, inodes in listening.items() for inode in inodes}
    owners = await conn.run(_owners_script(port_of), timeout=COMMAND_TIMEOUT_S, log=log)
    found: dict[int, dict[int, PortOwner]] = {port: {} for port in listening}
    for line in owners.stdout.splitlines():
        link, _, rest = line.partition(" ")
        if not link.startswith("socket:["):
            continue
        pid, _, args = rest.partition(" ")
        inode = int(link.removeprefix("socket:[").removesuffix("]"))
        if pid.isdigit():
            found[port_of[inode]][int(pid)] = PortOwner(int(pid), args.strip())
    return {port: sorted(by_pid.values(), key=lambda o: o.pid) for port, by_pid in found.items()}


async def port_holders(
    conn: SshConnection, ports: Collection[int], log: LogFn | None = None
) -> dict[int, list[str]]:
    """For each port something listens on: who holds it (`pid 12 (cmdline)`)."""
    owners = await port_owners(conn, ports, log)
    return {
        port: sorted(f"pid {o.pid} ({o.args[:200]})" for o in found)
        or ["a process obfleet cannot see"]
        for port, found in owners.items()
    }


async def path_entries(conn: SshConnection, path: str, log: LogFn | None = None) -> list[str]:
    """What the directory holds (empty when it does not exist)."""
    script = f"if [ -e {quote(path)} ]; then {command('ls', '-A', '--', path)}; fi"
    result = await conn.run(script, timeout=COMMAND_TIMEOUT_S, log=log)
    return result.stdout.split()


async def exists(conn: SshConnection, path: str, log: LogFn | None = None) -> bool:
    result = await conn.run(
        command("test", "-e", path), check=False, timeout=COMMAND_TIMEOUT_S, log=log
    )
    return result.ok


async def pids_in(conn: SshConnection, home: str) -> list[int]:
    """Processes whose working directory is `home`."""
    script = (
        'for p in /proc/[0-9]*; do [ "$(readlink "$p/cwd" 2>/dev/null)" = '
        f'{quote(home)} ] && echo "${{p#/proc/}}"; done; true'
    )
    result = await conn.run(script, timeout=COMMAND_TIMEOUT_S)
    return sorted(int(pid) for pid in result.stdout.split())


def pids_text(pids: Iterable[int]) -> str:
    return ", ".join(map(str, pids))


async def stop_all(conn: SshConnection, home: str, log: LogFn) -> None:
    """Stop every process running from `home`: TERM, then KILL; wait until they are gone."""
    pids = await pids_in(conn, home)
    if not pids:
        log(f"no process runs from {home}")
        return
    for signal, wait_s in STOP_WAIT_S:
        log(f"stopping pid {pids_text(pids)} running from {home} with SIG{signal}")
        await conn.run(command("kill", f"-{signal}", *pids), check=False, timeout=30, log=log)
        deadline = time.monotonic() + wait_s
        while pids and time.monotonic() < deadline:
            await asyncio.sleep(POLL_S)
            pids = await pids_in(conn, home)
        if not pids:
            log(f"nothing runs from {home} any more")
            return
    raise StillRunning(f"pid {pids_text(pids)} still run from {home} after SIGKILL")


async def remove_aside(conn: SshConnection, path: str, aside: str, log: LogFn) -> bool:
    """Delete the directory `path` by renaming it to `aside` first (one atomic step: until it
    succeeds nothing is deleted), stopping whatever followed it there, then deleting `aside`.
    An `aside` left by an interrupted earlier attempt is deleted too. False when neither
    exists."""
    if await exists(conn, path, log):
        if await exists(conn, aside, log):
            log(f"{aside} is left from an earlier attempt; removing it first")
            await _delete_tree(conn, aside, log)
        moved = await conn.run(
            command("mv", "--", path, aside), check=False, timeout=COMMAND_TIMEOUT_S, log=log
        )
        if not moved.ok:
            raise NotMoved(_last_line(moved.stderr))
        log(f"{path} renamed to {aside}; deleting it")
        await stop_all(conn, aside, log)  # nothing should have followed it; make sure
    elif await exists(conn, aside, log):
        log(f"{path} is gone; {aside} is left from an earlier attempt")
    else:
        return False
    await _delete_tree(conn, aside, log)
    return True


async def _delete_tree(conn: SshConnection, path: str, log: LogFn) -> None:
    removed = await conn.run(command("rm", "-rf", "--", path), check=False, timeout=600, log=log)
    if not removed.ok or await exists(conn, path, log):
        raise NotDeleted(_last_line(removed.stderr))
    log(f"{path} deleted")


def _last_line(stderr: str) -> str:
    return stderr.strip().splitlines()[-1] if stderr.strip() else "no reason given"


# --- one process -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessFacts:
    """A process as /proc shows it (`exe`/`cwd` empty when obfleet may not look)."""

    pid: int
    exe: str
    cwd: str
    user: str
    me: str  # the SSH user obfleet runs as
    argv: tuple[str, ...]

    @property
    def args_text(self) -> str:
        return " ".join(self.argv)[:300]

    def program(self, name: str) -> str | None:
        """The `bin/<name>` the process runs: its executable, or (a script under an
        interpreter) the first argument naming one, relative to its working directory."""
        exe = self.exe.removesuffix(" (deleted)")
        if exe.endswith(f"/bin/{name}"):
            return exe
        for arg in self.argv[:3]:
            if arg == f"bin/{name}" or arg.endswith(f"/bin/{name}"):
                return posixpath.normpath(posixpath.join(self.cwd, arg))
        return None


def facts_script(pid: int) -> str:
    p = f"/proc/{int(pid)}"
    return (
        f"printf 'exe=%s\\n' \"$(readlink {p}/exe 2>/dev/null)\"; "
        f"printf 'cwd=%s\\n' \"$(readlink {p}/cwd 2>/dev/null)\"; "
        f"printf 'user=%s\\n' \"$(stat -c %U {p} 2>/dev/null)\"; "
        "printf 'me=%s\\n' \"$(id -un)\"; echo argv; "
        f"tr '\\000' '\\n' < {p}/cmdline 2>/dev/null; true"
    )


def parse_facts(pid: int, text: str) -> ProcessFacts:
    head, _, args = text.partition("argv\n")
    values = dict(line.partition("=")[::2] for line in head.splitlines())
    return ProcessFacts(
        pid=pid,
        exe=values.get("exe", ""),
        cwd=values.get("cwd", ""),
        user=values.get("user", ""),
        me=values.get("me", ""),
        argv=tuple(args.splitlines()),
    )


async def process_facts(conn: SshConnection, pid: int, log: LogFn | None = None) -> ProcessFacts:
    result = await conn.run(facts_script(pid), timeout=COMMAND_TIMEOUT_S, log=log)
    return parse_facts(pid, result.stdout)
