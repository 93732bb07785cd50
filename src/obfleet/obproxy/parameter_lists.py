"""An OBProxy cluster's parameter lists as a change sees them: what a start puts on the command
line, and what a parameter a change removes goes back to. Pure."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from obfleet.obproxy import catalog, cmdline

Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ParameterLists:
    """A cluster's startup and runtime parameters, as recorded."""

    startup: Pairs
    runtime: Pairs

    @classmethod
    def of(cls, startup: list[dict[str, Any]], runtime: list[dict[str, Any]]) -> ParameterLists:
        """From the recorded lists ([{"name", "value"}])."""
        return cls(
            tuple((p["name"], p["value"]) for p in startup),
            tuple((p["name"], p["value"]) for p in runtime),
        )

    def to_json(self) -> str:
        return json.dumps({"startup": self.startup, "runtime": self.runtime})

    @classmethod
    def from_json(cls, text: str) -> ParameterLists:
        data = json.loads(text)
        return cls(
            tuple((str(n), str(v)) for n, v in data["startup"]),
            tuple((str(n), str(v)) for n, v in data["runtime"]),
        )


@dataclass(frozen=True)
class StartParameters:
    """The parameters a start puts on the command line, when they are not the cluster's
    recorded ones (a parameter change and its rollback start with the lists they apply)."""

    startup: Pairs
    runtime_names: frozenset[str]


def default_value(name: str, version: str | None) -> str | None:
    """What a parameter goes back to when no list sets it any more: obfleet's own command-line
    default (cmdline.DEFAULTS: obfleet must keep its root@proxysys access), else OBProxy's
    default in the obproxy's version (the catalog)."""
    own = dict(cmdline.DEFAULTS).get(name)
    if own is not None:
        return own
    try:
        info = catalog.get(name, version)
    except ValueError:  # a version the catalog cannot read: its newest entry
        info = catalog.get(name)
    return info.default_value if info is not None else None


def with_defaults(
    wanted: Sequence[tuple[str, str]], other: Sequence[tuple[str, str]], version: str | None
) -> list[tuple[str, str]]:
    """`wanted`, plus each parameter only `other` sets at its default: a parameter a change
    removes goes back to its default, as OBD's reload does (OBProxy would otherwise keep the
    value it stored in etc/)."""
    names = {name for name, _ in wanted}
    reset = [(name, default_value(name, version)) for name, _ in other if name not in names]
    return [*wanted, *((name, value) for name, value in reset if value is not None)]


def start_parameters(
    wanted: ParameterLists, other: ParameterLists, version: str | None
) -> StartParameters:
    return StartParameters(
        tuple(with_defaults(wanted.startup, other.startup, version)),
        frozenset(name for name, _ in wanted.runtime),
    )


def describe_change(before: ParameterLists, after: ParameterLists) -> list[str]:
    """What a change from `before` to `after` does, a line per parameter."""
    lines = []
    for what, old, new in (
        ("startup", dict(before.startup), dict(after.startup)),
        ("runtime", dict(before.runtime), dict(after.runtime)),
    ):
        for name, value in new.items():
            if name not in old:
                lines.append(f"{what} parameter {name} set to {value}")
            elif old[name] != value:
                lines.append(f"{what} parameter {name}: {old[name]} -> {value}")
        lines += [f"{what} parameter {n} removed: back to its default" for n in old if n not in new]
    return lines or ["no parameter changes: every obproxy gets the recorded values again"]
