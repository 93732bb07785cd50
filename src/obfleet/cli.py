"""The `obfleet` command: run the service, migrate the metadb, manage users and access keys."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from obfleet import logs
from obfleet.appcontext import AppContext
from obfleet.config import Settings
from obfleet.errors import ApiError
from obfleet.security.passwords import hash_password, policy_problems
from obfleet.security.roles import ROLES
from obfleet.services import users
from obfleet.services.audit import audited
from obfleet.services.lifecycle import prepare
from obfleet.store.migrate import upgrade

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
console = Console()
err = Console(stderr=True)


def _context() -> AppContext:
    ctx = AppContext.open(Settings.from_env())
    try:
        prepare(ctx)
    except ValueError as exc:  # a setting that cannot be used, e.g. a bad admin password hash
        ctx.close()
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    return ctx


def _fail(exc: ApiError) -> None:
    err.print(f"[red]error:[/red] {exc.message}")
    raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve the REST API and run the task engine in this process."""
    import uvicorn

    from obfleet.api.app import create_app

    # Every file the service makes (metadb, packages, the payload cache) is its user's alone;
    # the data dir is checked at start too (security/datadir.py).
    os.umask(0o077)
    settings = Settings.from_env()
    # Every line the process writes goes through obfleet's handler, in OBFLEET_LOG_FORMAT:
    # uvicorn is told to configure no logging of its own (log_config=None).
    logs.configure(log_level, settings.log_format)
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=log_level,
        log_config=None,
        access_log=False,
    )


@app.command()
def migrate() -> None:
    """Bring the metadb schema up to date (the service also does this when it starts)."""
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
    ctx = _context()
    try:
        with audited(ctx, "user add", "USER", username), ctx.db.transaction() as session:
            users.create_user(session, username, password, _roles_option(roles))
    except ApiError as exc:
        _fail(exc)
    finally:
        ctx.close()
    console.print(f"user {username} added")


@user_app.command("passwd")
def user_passwd(
    username: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Set a user's password."""
    ctx = _context()
    try:
        with audited(ctx, "user passwd", "USER", username), ctx.db.transaction() as session:
            users.set_password(session, username, password)
    except ApiError as exc:
        _fail(exc)
    finally:
        ctx.close()
    console.print(f"password of {username} changed")


@user_app.command("list")
def user_list() -> None:
    """List users and their roles."""
    ctx = _context()
    try:
        with ctx.db.session() as session:
            rows = [
                (u.username, ", ".join(u.role_names), "yes" if u.enabled else "no")
                for u in users.list_users(session)
            ]
    finally:
        ctx.close()
    table = Table("username", "roles", "enabled")
    for row in rows:
        table.add_row(*row)
    console.print(table)


@key_app.command("create")
def accesskey_create(username: str) -> None:
    """Create an AK/SK pair for a user. The secret is shown once: keep it."""
    ctx = _context()
    try:
        with (
            audited(ctx, "accesskey create", "USER", username),
            ctx.db.transaction() as session,
        ):
            access_key, secret = users.create_access_key(session, ctx.secrets, username)
    except ApiError as exc:
        _fail(exc)
    finally:
        ctx.close()
    console.print(f"AccessKey ID:     {access_key}\nAccessKey Secret: {secret}")
