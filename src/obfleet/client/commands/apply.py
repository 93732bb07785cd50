"""`obfleet apply -f`, `obfleet diff -f` and `obfleet import-obd`: the declarative fleet file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
import yaml

from obfleet.client import obd
from obfleet.client.api import Api
from obfleet.client.output import err, out
from obfleet.client.plan import Change, PlanError, State, plan
from obfleet.client.session import FAILED, ProfileOpt, connect, fail
from obfleet.client.spec import FleetSpec, SpecError, load, schema
from obfleet.client.watch import Watcher

FileOpt = Annotated[
    Path | None, typer.Option("--file", "-f", help="The fleet file (YAML).", dir_okay=False)
]
PruneOpt = Annotated[
    bool,
    typer.Option(help="Also delete OBProxy clusters, obproxies and links the file does not name."),
]


def _spec(file: Path | None) -> FleetSpec:
    if file is None:
        fail("give the fleet file with -f FILE", 2)
    try:
        return load(file)
    except (SpecError, OSError) as exc:
        fail(str(exc))


def _planned(api: Api, fleet: FleetSpec, prune: bool) -> tuple[State, list[Change]]:
    state = State.read(api, [c.name for c in fleet.obproxyClusters])
    try:
        return state, plan(fleet, state, prune)
    except PlanError as exc:
        fail(str(exc))


def _show(changes: list[Change]) -> None:
    if not changes:
        err.print("nothing to change: obfleet matches the file")
        return
    err.print(f"plan: {len(changes)} change(s)")
    for change in changes:
        mark = (
            "-" if change.kind in ("delete", "unlink") else "+" if change.kind == "create" else "~"
        )
        err.print(f"  {mark} {change.text}", markup=False)


def diff(file: FileOpt = None, prune: PruneOpt = False, profile: ProfileOpt = None) -> None:
    """Print what `apply` would change, and change nothing. Exits 0 when there is nothing to
    change, 1 when there is (handy in CI).

    Example: obfleet diff -f fleet.yaml --prune
    """
    fleet = _spec(file)
    with connect(profile) as api:
        _, changes = _planned(api, fleet, prune)
    _show(changes)
    if changes:
        raise typer.Exit(FAILED)


def apply(
    file: FileOpt = None,
    prune: PruneOpt = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    print_schema: Annotated[
        bool, typer.Option("--schema", help="Print the fleet file's JSON Schema and exit.")
    ] = False,
    profile: ProfileOpt = None,
) -> None:
    """Make obfleet match a fleet file: print the plan, confirm, submit each change and watch
    its task. Applying the same file again changes nothing. Exits 1 when a task fails (its
    failed step's log is printed).

    Example: obfleet apply -f fleet.yaml --yes

    Example: obfleet apply --schema > fleet.schema.json
    """
    if print_schema:
        sys.stdout.write(schema() + "\n")
        return
    fleet = _spec(file)
    with connect(profile) as api:
        _, changes = _planned(api, fleet, prune)
        _show(changes)
        if not changes:
            return
        if not yes:
            if not sys.stdin.isatty():
                fail("not confirmed: run with --yes to apply without a terminal", 2)
            typer.confirm("Apply these changes?", abort=True, err=True)
        watcher = Watcher(api, out)
        for change in changes:
            err.print(f"→ {change.text}", markup=False)
            for task in change.call(api, State.read(api, [])):
                ended = watcher.watch(task["id"])
                if ended["status"] != "SUCCESSFUL":
                    fail(f"task {task['id']} ({task['name']}) failed: {change.text}")
    err.print("applied")


def import_obd(
    config: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="OBD config.yaml.")],
) -> None:
    """Convert an OBD config.yaml (its obproxy-ce component, with servers, global and
    per-server keys, and depends) into a fleet file on stdout. Secrets are not carried over:
    the file names credentials, which are made with `obfleet credential add`.

    Example: obfleet import-obd config.yaml > fleet.yaml
    """
    try:
        fleet, notes = obd.convert(yaml.safe_load(config.read_text()))
    except (obd.ObdError, yaml.YAMLError) as exc:
        fail(f"{config}: {exc}")
    for note in notes:
        err.print(f"note: {note}", markup=False)
    sys.stdout.write(yaml.safe_dump(fleet, sort_keys=False))
