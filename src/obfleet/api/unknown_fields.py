"""Unknown fields in a request body: refused, each named by its JSON path with a did-you-mean.

Request models forbid extra fields (schema.RequestModel), so a typo such as `hostIDs` is a 400
instead of an install on no host. Pydantic reports each as an `extra_forbidden` error with its
location; this module turns those into one cause. The fields OCP's own doc samples send that
obfleet deliberately does not use are listed here, once, and dropped before validation.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Sequence
from typing import Any, Union, get_args, get_origin

from pydantic import AliasChoices, BaseModel

# Request model name -> fields OCP's doc samples send that obfleet ignores, and why.
IGNORED_DOC_FIELDS: dict[str, dict[str, str]] = {
    "ObLinkIn": {
        # The create and obLinks/batchAdd samples send OCP's own id of the cluster next to
        # obClusterId; obfleet links by obClusterId (and checks clusterName against it).
        "clusterId": "OCP's internal cluster id; obfleet links by obClusterId",
    },
}

# How many unknown fields one answer names; the rest are counted.
MAX_NAMED = 10

UNKNOWN = "extra_forbidden"


def ignored_fields(model_name: str) -> frozenset[str]:
    return frozenset(IGNORED_DOC_FIELDS.get(model_name, {}))


def is_unknown_field(error: dict[str, Any]) -> bool:
    return error.get("type") == UNKNOWN


def wire_names(model: type[BaseModel]) -> list[str]:
    """Each field's name on the wire: its alias, else its first validation alias."""
    names = []
    for name, info in model.model_fields.items():
        choice = info.validation_alias
        if isinstance(choice, AliasChoices):
            first = choice.choices[0]
            names.append(first if isinstance(first, str) else name)
        else:
            names.append(info.alias or name)
    return names


def _spellings(model: type[BaseModel], field: str) -> set[str]:
    info = model.model_fields[field]
    found = {field, info.alias or field}
    choice = info.validation_alias
    if isinstance(choice, AliasChoices):
        found |= {c for c in choice.choices if isinstance(c, str)}
    elif isinstance(choice, str):
        found.add(choice)
    return found


def _field_type(model: type[BaseModel], key: str) -> Any:
    for name, info in model.model_fields.items():
        if key in _spellings(model, name):
            return info.annotation
    return None


def _unwrap(annotation: Any) -> Any:
    """`X | None` -> X."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        return members[0] if len(members) == 1 else None
    return annotation


def model_at(body_type: Any, path: Sequence[str | int]) -> type[BaseModel] | None:
    """The request model holding the field at `path` (keys and list indexes) in a body of
    `body_type`; None when the path leaves the models."""
    current = _unwrap(body_type)
    for step in path:
        if isinstance(step, int):
            args = get_args(current) if get_origin(current) is list else ()
            current = _unwrap(args[0]) if args else None
        elif isinstance(current, type) and issubclass(current, BaseModel):
            current = _unwrap(_field_type(current, step))
        else:
            return None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


# A field name longer than this is cut in the answer (a body may hold a huge key).
MAX_NAME = 64


def _shown(name: str) -> str:
    return name if len(name) <= MAX_NAME else name[: MAX_NAME - 3] + "..."


def json_path(path: Sequence[str | int]) -> str:
    """obproxyInstallParam.hostIDs, obLinks[0].clusterIdx, [0].name."""
    text = ""
    for step in path:
        if isinstance(step, int):
            text += f"[{step}]"
        else:
            text += f".{_shown(step)}" if text else _shown(step)
    return text


def _suggestion(key: str, model: type[BaseModel] | None) -> str:
    if model is None:
        return ""
    names = wire_names(model)
    if any(key in _spellings(model, field) for field in model.model_fields):
        return " (another spelling of a field already given: give it once)"
    same_case = [n for n in names if n.lower() == key.lower()]
    close = same_case or difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (known fields: {', '.join(names)})"


def _body_path(error: dict[str, Any]) -> list[str | int]:
    loc = list(error.get("loc", ()))
    return loc[1:] if loc[:1] == ["body"] else loc


def _named(body_type: Any, error: dict[str, Any]) -> str:
    path = _body_path(error)
    *where, key = path or ["?"]
    return f"{json_path(path)}{_suggestion(str(key), model_at(body_type, where))}"


def describe(body_type: Any, errors: Sequence[dict[str, Any]]) -> str:
    """The cause naming each unknown field of `errors` (at most MAX_NAMED, the rest counted)."""
    shown = "; ".join(_named(body_type, error) for error in errors[:MAX_NAMED])
    if len(errors) > MAX_NAMED:
        shown += f"; and {len(errors) - MAX_NAMED} more"
    noun = "field" if len(errors) == 1 else "fields"
    return f"unknown {noun} in the request body: {shown}"
