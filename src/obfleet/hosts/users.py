"""The user OBProxy runs as on a host: whether it exists, and creating it (as OCP and OBD create
`admin`) when obfleet logs in as root.

A user created here gets its own group and a home under /home, and no lastlog/faillog entries
(`--no-log-init`: large uids would make those files huge); nothing else on the host changes.
"""

from __future__ import annotations

from enum import StrEnum

from obfleet.hosts.shell import command, quote
from obfleet.hosts.ssh import LogFn, SshConnection

COMMAND_TIMEOUT_S = 30.0


class UserState(StrEnum):
    EXISTS = "exists"
    CREATED = "created"
    NOT_ROOT = "not-root"  # missing, and only root may create it


async def user_exists(conn: SshConnection, name: str, log: LogFn | None = None) -> bool:
    result = await conn.run(
        f"{command('id', '-u', '--', name)} >/dev/null 2>&1",
        check=False,
        timeout=COMMAND_TIMEOUT_S,
        log=log,
    )
    return result.ok


def _ensure_script(name: str) -> str:
    useradd = command(
        "useradd", "--create-home", "--user-group", "--shell", "/bin/bash", "--no-log-init", name
    )
    return (
        f"if {command('id', '-u', '--', name)} >/dev/null 2>&1; then echo {UserState.EXISTS}; "
        f'elif [ "$(id -u)" != 0 ]; then echo {quote(UserState.NOT_ROOT)}; '
        f"else {useradd} && echo {UserState.CREATED}; fi"
    )


async def ensure_user(conn: SshConnection, name: str, log: LogFn | None = None) -> UserState:
    """`name` exists afterwards, unless obfleet is not root there (then NOT_ROOT says so)."""
    result = await conn.run(_ensure_script(name), timeout=COMMAND_TIMEOUT_S, log=log)
    return UserState(result.stdout.strip().splitlines()[-1])
