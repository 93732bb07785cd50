"""The `obfleet` command: run the service, migrate the metadb, manage users and access keys.

The client's commands (obfleet/client/) are most of what people run, and they speak HTTP only:
the server's modules (the app, services, SQLAlchemy, argon2) are imported inside the commands
that use them, so a client command does not pay for loading them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from obfleet import __version__, logs
from obfleet.client.cli import add_client_commands
from obfleet.config import Settings
from obfleet.errors import ApiError
from obfleet.security.roles import ROLES

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from obfleet.appcontext import AppContext

app = typer.Typer(
    help="obfleet: OBProxy fleet manager for OceanBase with an OCP-compatible REST API.\n\n"
    "Configuration comes from the environment: OBFLEET_DATA_DIR (default ~/.obfleet), "
    "OBFLEET_DATABASE_URL (default SQLite in the data dir), OBFLEET_ADMIN_PASSWORD (or "
    "OBFLEET_ADMIN_PASSWORD_HASH), OBFLEET_SECRET_KEY, OBFLEET_ADVERTISE_URL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
user_app = typer.Typer(
    help="Manage users (HTTP Basic logins) and their roles.", no_args_is_help=True
)
key_app = typer.Typer(
    help="Manage AK/SK access keys (OCP 4.2 request signatures).", no_args_is_help=True
)
app.add_typer(user_app, name="user")
app.add_typer(key_app, name="accesskey")
add_client_commands(app)  # the client: profiles, resources, tasks, apply (obfleet/client/)
console = Console()
T = TypeVar("T")
err = Console(stderr=True)


def _show_version(show: bool) -> None:
    if show:
        console.print(f"obfleet {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """obfleet: OBProxy fleet manager for OceanBase with an OCP-compatible REST API."""


def _context() -> AppContext:
    from obfleet.appcontext import AppContext
    from obfleet.services.lifecycle import prepare

    ctx = AppContext.open(Settings.from_env())
    try:
        first_admin = prepare(ctx)
    except ValueError as exc:  # a setting that cannot be used, e.g. a bad admin password hash
        ctx.close()
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    if first_admin:
        print(first_admin, file=sys.stderr, flush=True)
    return ctx


def _fail(exc: ApiError) -> NoReturn:
    err.print(f"[red]error:[/red] {exc.message}")
    raise typer.Exit(1)


def _in_metadb(
    work: Callable[[AppContext, Session], T], *, audit: tuple[str, str, str] | None = None
) -> T:
    """What `work` returns, run in a metadb session; a change (`audit`: its action, object type
    and object id) runs in one transaction and is recorded in the audit trail, refused or not.
    An ApiError ends the command with its message."""
    from obfleet.services.audit import audited

    ctx = _context()
    try:
        if audit:
            with audited(ctx, *audit), ctx.db.transaction() as session:
                return work(ctx, session)
        with ctx.db.session() as session:
            return work(ctx, session)
    except ApiError as exc:
        _fail(exc)
    finally:
        ctx.close()


def _print_table(columns: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    table = Table(*columns)
    for row in rows:
        table.add_row(*row)
    console.print(table)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve the REST API and run the task engine in this process."""
    import uvicorn

    from obfleet.api.app import create_app
    from obfleet.serving import ListenError, Server, listen

    try:
        listener = listen(host, port)  # first: a start that cannot listen changes nothing
    except ListenError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from exc
    # Every file the service makes (metadb, packages, the payload cache) is its user's alone;
    # the data dir is checked at start too (security/datadir.py).
    os.umask(0o077)
    settings = Settings.from_env()
    # Every line the process writes goes through obfleet's handler, in OBFLEET_LOG_FORMAT:
    # uvicorn is told to configure no logging of its own (log_config=None).
    logs.configure(log_level, settings.log_format)
    api = create_app(settings)
    # httptools and uvloop named, not "auto": a missing one fails the start instead of
    # silently costing every request 15-30% more CPU (h11 and asyncio's loop).
    config = uvicorn.Config(
        api,
        http="httptools",
        loop="uvloop",
        log_level=log_level,
        log_config=None,
        access_log=False,
    )
    Server(config, api).run([listener])


@app.command()
def doctor() -> None:
    """Check what the service needs, changing nothing: the metadb (reachable, schema up to
    date), the data dir (private to its owner) and OBFLEET_ADVERTISE_URL (answers from this
    machine). Exits 1 when something is wrong. (No ssh client is needed: obfleet speaks SSH
    itself.)"""
    from obfleet.services.doctor import examine

    findings = examine(Settings.from_env())
    for finding in findings:
        mark = "[green]ok[/green]  " if finding.healthy else "[red]FAIL[/red]"
        console.print(f"{mark} {finding.check}: {finding.detail}", highlight=False)
    if not all(f.healthy for f in findings):
        raise typer.Exit(1)


@app.command()
def migrate() -> None:
    """Bring the metadb schema up to date (the service also does this when it starts)."""
    from obfleet.appcontext import AppContext
    from obfleet.store.migrate import upgrade

    ctx = AppContext.open(Settings.from_env())
    try:
        upgrade(ctx.db)
    finally:
        ctx.close()
    console.print(f"metadb is up to date ({ctx.db.dialect})")


@app.command("hash-password")
def hash_password_command(
    password: Annotated[
        str | None, typer.Option(help="The password (asked for when not given).")
    ] = None,
) -> None:
    """Print the argon2 hash of a password, for OBFLEET_ADMIN_PASSWORD_HASH: the first admin
    then gets that password without it ever being in the service's environment. Only the hash
    goes to stdout (prompts go to stderr), so `obfleet hash-password > admin.hash` works."""
    from obfleet.security.passwords import hash_password, policy_problems

    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    problems = policy_problems(password)
    if problems:  # checked here: the service cannot check a password it only gets as a hash
        err.print(f"[red]error:[/red] the password is refused: {'; '.join(problems)}")
        raise typer.Exit(1)
    console.print(hash_password(password), highlight=False, soft_wrap=True)


def _roles_option(roles: str) -> list[str]:
    return [r.strip() for r in roles.split(",") if r.strip()]


@user_app.command("add")
def user_add(
    username: str,
    roles: Annotated[str, typer.Option(help=f"Comma-separated roles: {', '.join(ROLES)}.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Add a user with the given roles."""
    from obfleet.services import users

    _in_metadb(
        lambda _ctx, s: users.create_user(s, username, password, _roles_option(roles)),
        audit=("user add", "USER", username),
    )
    console.print(f"user {username} added")


@user_app.command("passwd")
def user_passwd(
    username: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Set a user's password."""
    from obfleet.security.first_password import forget
    from obfleet.services import users

    def change(ctx: AppContext, session: Session) -> None:
        users.set_password(session, username, password)
        if username == users.ADMIN:
            forget(ctx.settings.data_dir)  # the generated first password no longer holds

    _in_metadb(change, audit=("user passwd", "USER", username))
    console.print(f"password of {username} changed")


@user_app.command("list")
def user_list() -> None:
    """List users and their roles."""
    from obfleet.services import users

    rows = _in_metadb(
        lambda _ctx, s: [
            (u.username, ", ".join(u.role_names), "yes" if u.enabled else "no")
            for u in users.list_users(s)
        ]
    )
    _print_table(("username", "roles", "enabled"), rows)


@user_app.command("disable")
def user_disable(username: str) -> None:
    """Refuse the user's logins (password and access keys) until enabled again."""
    from obfleet.services import users

    _in_metadb(
        lambda _ctx, s: users.disable_user(s, username), audit=("user disable", "USER", username)
    )
    console.print(f"user {username} disabled")


@user_app.command("enable")
def user_enable(username: str) -> None:
    """Let a disabled user log in again."""
    from obfleet.services import users

    _in_metadb(
        lambda _ctx, s: users.enable_user(s, username), audit=("user enable", "USER", username)
    )
    console.print(f"user {username} enabled")


@user_app.command("delete")
def user_delete(username: str) -> None:
    """Delete a user with its roles and access keys (its tasks keep its name)."""
    from obfleet.services import users

    _in_metadb(
        lambda _ctx, s: users.delete_user(s, username), audit=("user delete", "USER", username)
    )
    console.print(f"user {username} deleted")


@key_app.command("create")
def accesskey_create(username: str) -> None:
    """Create an AK/SK pair for a user. The secret is shown once: keep it."""
    from obfleet.services import users

    access_key, secret = _in_metadb(
        lambda ctx, s: users.create_access_key(s, ctx.secrets, username),
        audit=("accesskey create", "USER", username),
    )
    console.print(f"AccessKey ID:     {access_key}\nAccessKey Secret: {secret}")


@key_app.command("list")
def accesskey_list(
    username: Annotated[str | None, typer.Argument(help="Only this user's keys.")] = None,
) -> None:
    """List access keys (never their secrets)."""
    from obfleet.services import users

    rows = _in_metadb(
        lambda _ctx, s: [
            (k.access_key_id, k.user.username, k.create_time.isoformat(timespec="seconds"))
            for k in users.list_access_keys(s, username)
        ]
    )
    _print_table(("AccessKey ID", "user", "created"), rows)


@key_app.command("revoke")
def accesskey_revoke(access_key_id: str) -> None:
    """Delete an access key: requests signed with it are refused from now on."""
    from obfleet.services import users

    owner = _in_metadb(
        lambda _ctx, s: users.revoke_access_key(s, access_key_id),
        audit=("accesskey revoke", "ACCESS_KEY", access_key_id),
    )
    console.print(f"access key {access_key_id} of {owner} revoked")
