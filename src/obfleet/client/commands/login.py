"""`obfleet login` / `logout`: store a connection profile (a user and password, or an access
key), checked against the server first."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from obfleet.client.api import Api, ApiFailure
from obfleet.client.output import err
from obfleet.client.profiles import DEFAULT, Profile, remove, save
from obfleet.client.session import fail, read_secret, refuse_argv_secret


def check(profile: Profile) -> None:
    """The server takes these credentials: a call any signed-in user may make answers, or is
    refused only for want of a role (403), not of a login (401)."""
    try:
        with Api(profile) as api:
            api.get("/api/v2/tasks/instances", page=1, size=1)
    except ApiFailure as exc:
        if exc.status != 403:
            fail(f"login refused by {profile.url}: {exc}")


def login(
    url: Annotated[str, typer.Option(help="The obfleet (or OCP) base URL.")],
    user: Annotated[str | None, typer.Option(help="Log in as this user (password asked).")] = None,
    access_key_id: Annotated[
        str | None, typer.Option(help="Sign requests with this access key (secret asked).")
    ] = None,
    password_file: Annotated[
        Path | None, typer.Option(help="Read the password or access key secret from this file.")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password or access key secret from stdin.")
    ] = False,
    password: Annotated[str | None, typer.Option(hidden=True)] = None,
    access_key_secret: Annotated[str | None, typer.Option(hidden=True)] = None,
    profile: Annotated[str, typer.Option("--profile", "-p", help="Profile name.")] = DEFAULT,
) -> None:
    """Check credentials against an obfleet and store them as a profile (mode 0600).

    Example: obfleet login --url http://obfleet:8080 --user admin
    Example: obfleet login --url http://obfleet:8080 --access-key-id AK --password-file sk.txt
    """
    refuse_argv_secret(password, "a password", "it is asked for, or use --password-file/-stdin")
    refuse_argv_secret(
        access_key_secret, "an access key secret", "use --password-file/--password-stdin"
    )
    if bool(user) == bool(access_key_id):
        fail("give either --user or --access-key-id", 2)
    label = "Password" if user else "Access key secret"
    secret = read_secret(label, password_file, password_stdin)
    if user:
        stored = Profile(url=url.rstrip("/"), user=user, password=secret)
    else:
        stored = Profile(
            url=url.rstrip("/"), access_key_id=access_key_id or "", access_key_secret=secret
        )
    check(stored)
    path = save(profile, stored)
    err.print(f"logged in to {stored.url}; profile '{profile}' saved in {path}", markup=False)


def logout(
    profile: Annotated[str, typer.Option("--profile", "-p", help="Profile name.")] = DEFAULT,
) -> None:
    """Forget a stored profile and its secret.

    Example: obfleet logout --profile prod
    """
    if not remove(profile):
        fail(f"no profile '{profile}'")
    err.print(f"profile '{profile}' removed", markup=False)
