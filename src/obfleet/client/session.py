"""What every client command shares: its options (--profile, --output, --wait), the connection
it opens, how failures become messages and exit codes, secrets read without argv, names
resolved to ids, and the tasks a command starts, watched when asked."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from obfleet.client.api import Api, ApiFailure
from obfleet.client.output import Format, emit, err, out
from obfleet.client.profiles import ProfileError, resolve
from obfleet.client.watch import Watcher

ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        "-p",
        help="Connection profile (see `obfleet login`); default: $OBFLEET_PROFILE or 'default'.",
    ),
]
OutputOpt = Annotated[
    Format, typer.Option("--output", "-o", help="table for people, json or yaml for scripts.")
]
WaitOpt = Annotated[
    bool,
    typer.Option(
        "--wait/--no-wait",
        "-w",
        help="Watch the started task(s) to the end; exit 1 if one fails.",
    ),
]
# Exit codes: 1 a refused request or a failed task, 2 bad usage (Click's own), 3 no connection.
FAILED, NO_CONNECTION = 1, 3


def fail(message: str, code: int = FAILED) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    raise typer.Exit(code)


@contextmanager
def connect(profile: str | None) -> Iterator[Api]:
    """An API client for the profile; a refusal or an unreachable server ends the command."""
    try:
        api = Api(resolve(profile))
    except ProfileError as exc:
        fail(str(exc), NO_CONNECTION)
    try:
        with api:
            yield api
    except ApiFailure as exc:
        fail(str(exc), NO_CONNECTION if exc.status == 0 else FAILED)


def refuse_argv_secret(value: str | None, what: str, instead: str) -> None:
    """Secrets given as arguments end up in shell history and in `ps`: refused."""
    if value is not None:
        fail(f"{what} is not taken from the command line (shell history, ps); {instead}", 2)


def read_secret(label: str, file: Path | None, stdin: bool, *, confirm: bool = False) -> str:
    """A secret from a file, from stdin or from a hidden prompt; never echoed."""
    if file is not None and stdin:
        fail(f"give the {label} from a file or from stdin, not both", 2)
    if file is not None:
        return file.read_text().rstrip("\n")
    if stdin:
        return sys.stdin.read().rstrip("\n")
    if not sys.stdin.isatty():
        fail(f"no {label}: give it with a file or stdin option (no terminal to ask on)", 2)
    return str(typer.prompt(label, hide_input=True, confirmation_prompt=confirm, err=True))


def messages_console(fmt: Format) -> Console:
    """Where progress goes: stdout for people, stderr when stdout carries a document."""
    return out if fmt is Format.table else err


def started(api: Api, tasks: list[dict[str, Any]], wait: bool, fmt: Format = Format.table) -> None:
    """Report the tasks a command started; with `wait`, watch them and exit 1 if one fails.
    With a document format, stdout gets the tasks (id, name, status) as one document."""
    console = messages_console(fmt)
    for task in tasks:
        console.print(f"started task {task['id']}: {task['name']}", markup=False)
    if wait:
        tasks = [Watcher(api, console).watch(task["id"]) for task in tasks]
    if fmt is not Format.table:
        emit([{k: t[k] for k in ("id", "name", "status")} for t in tasks], fmt)
    if any(t["status"] == "FAILED" for t in tasks):
        raise typer.Exit(FAILED)


def by_name(items: list[dict[str, Any]], key: str, ref: str, what: str) -> dict[str, Any]:
    """The item whose `key` is `ref`, or whose id is `ref` when it is a number."""
    for item in items:
        if str(item.get(key)) == ref or (ref.isdigit() and item["id"] == int(ref)):
            return item
    fail(f"no {what} '{ref}'")


def obproxy_cluster(api: Api, ref: str) -> dict[str, Any]:
    if ref.isdigit():
        return dict(api.get(f"/api/v2/obproxy/clusters/{ref}"))
    return by_name(api.every("/api/v2/obproxy/clusters", name=ref), "name", ref, "OBProxy cluster")


def hosts_named(api: Api, refs: list[str]) -> list[dict[str, Any]]:
    """The hosts of addresses or ids."""
    hosts = api.every("/api/v2/compute/hosts")
    return [by_name(hosts, "innerIpAddress", ref, "host") for ref in refs]


def host_ids(api: Api, refs: list[str]) -> list[int]:
    """Host ids for addresses or ids."""
    return [host["id"] for host in hosts_named(api, refs)]


def credential_id(api: Api, ref: str) -> int:
    return int(by_name(api.every("/api/v2/credentials"), "name", ref, "credential")["id"])


def ob_cluster(api: Api, ref: str) -> dict[str, Any]:
    return by_name(api.every("/api/v2/ob/clusters"), "name", ref, "OceanBase cluster")


def pairs(items: list[str]) -> list[dict[str, str]]:
    """name=value arguments as OCP's [{name, value}]."""
    result = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            fail(f"'{item}' is not name=value", 2)
        result.append({"name": name.strip(), "value": value})
    return result


def print_all(profile: str | None, output: Format, path: str, columns: tuple[str, ...]) -> None:
    """A list command: every item of a paged list, as a document or a table of `columns`."""
    with connect(profile) as api:
        items = api.every(path)
    emit(items, output, columns)


def delete_named(profile: str | None, path: str, key: str, ref: str, what: str) -> None:
    """A delete command: the item of `path` whose `key` (or id) is `ref`."""
    with connect(profile) as api:
        found = by_name(api.every(path), key, ref, what)
        api.delete(f"{path}/{found['id']}")
    err.print(f"deleted {what} {found[key]}", markup=False)
