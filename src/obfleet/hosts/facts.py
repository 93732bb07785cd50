"""What a host is, read over SSH: its name, architecture and OS, and whether it has the tools
obfleet's deploys run there.

The tools checked are what obfleet runs on hosts, and nothing more: `sha256sum` (every upload is
verified with it), `mkdir`, `rm` (install and clean up), `kill` and `sleep` (stopping processes
and timed-out commands); ports are checked by reading `/proc/net/tcp` (so `ss` and iproute2 are
not required).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from obfleet.hosts.shell import command, quote
from obfleet.hosts.ssh import LogFn, SshConnection

REQUIRED_TOOLS = ("sha256sum", "mkdir", "rm", "kill", "sleep")
PORT_TABLE = "/proc/net/tcp"
COMMAND_TIMEOUT_S = 30.0
OS_RELEASE_FILES = ("/etc/os-release", "/usr/lib/os-release")


@dataclass(frozen=True)
class HostFacts:
    hostname: str
    architecture: str
    operating_system: str | None
    operating_system_release: str | None


def clean(value: str | None, limit: int) -> str | None:
    """A value read from a host, made fit to store and show: printable and bounded."""
    if value is None:
        return None
    text = "".join(c for c in value if c.isprintable()).strip()[:limit]
    return text or None


def parse_os_release(text: str) -> tuple[str | None, str | None]:
    """(NAME, VERSION_ID) from os-release(5) text, whose values use shell quoting."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, raw = line.partition("=")
        if not sep or key.strip().startswith("#"):
            continue
        try:
            words = shlex.split(raw, comments=False)
        except ValueError:
            continue  # a malformed line; the other lines still count
        values[key.strip()] = " ".join(words)
    return clean(values.get("NAME"), 64), clean(values.get("VERSION_ID"), 64)


def tools_check() -> str:
    """A script that names every missing tool (and an unreadable port table) and fails."""
    tools = " ".join(quote(tool) for tool in REQUIRED_TOOLS)
    return (
        f"missing=''; for t in {tools}; do "
        'command -v "$t" >/dev/null 2>&1 || missing="$missing $t"; done; '
        f'test -r {quote(PORT_TABLE)} || missing="$missing {PORT_TABLE}"; '
        'if [ -n "$missing" ]; then echo "missing:$missing" >&2; exit 1; fi; '
        "echo all tools present"
    )


async def read_facts(conn: SshConnection, log: LogFn) -> HostFacts:
    """Host name and architecture (`uname`), OS name and release (os-release)."""
    uname = await conn.run(command("uname", "-n", "-m"), timeout=COMMAND_TIMEOUT_S, log=log)
    nodename, _, machine = uname.stdout.strip().partition(" ")
    readers = " || ".join(command("cat", path) for path in OS_RELEASE_FILES)
    release = await conn.run(
        f"{{ {readers}; }} 2>/dev/null", timeout=COMMAND_TIMEOUT_S, check=False, log=log
    )
    os_name, os_release = parse_os_release(release.stdout)
    found = HostFacts(
        hostname=clean(nodename, 255) or "",
        architecture=clean(machine, 32) or "",
        operating_system=os_name,
        operating_system_release=os_release,
    )
    if not found.hostname or not found.architecture:
        raise RuntimeError(f"unexpected `uname -n -m` output: {uname.stdout!r}")
    return found
