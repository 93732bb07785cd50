"""The base of every request and response body: camelCase on the wire; a request body's unknown
fields are refused (unknown_fields.py), a response's are left out."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, ConfigDict, PlainSerializer, model_validator
from pydantic.alias_generators import to_camel

from obfleet.api.unknown_fields import ignored_fields
from obfleet.timefmt import iso


class ApiModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        from_attributes=True,
    )


class RequestModel(ApiModel):
    """A request body: strict, so a value of the wrong JSON type is refused rather than coerced
    (`obClusterId: true` would otherwise be stored as 1, `"22"` taken for 22), and closed, so a
    misspelt field is refused rather than dropped (`hostIDs` would install on no host). The
    fields OCP's doc samples send that obfleet does not use are dropped first."""

    model_config = ConfigDict(strict=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _drop_ignored_doc_fields(cls, data: Any) -> Any:
        ignored = ignored_fields(cls.__name__)
        if ignored and isinstance(data, dict):
            return {key: value for key, value in data.items() if key not in ignored}
        return data


# Times on the wire: ISO-8601 with offset and milliseconds, as OCP writes them.
OcpTime = Annotated[datetime, PlainSerializer(iso, return_type=str | None)]


def example(body: dict[str, Any]) -> ConfigDict:
    """A request model's config giving its example body: the OpenAPI document shows it on the
    operation and spreads its values onto the fields (api/openapi.py)."""
    return ConfigDict(json_schema_extra={"examples": [body]})


class WireRow:
    """A response model's wire form (`model_dump(by_alias=True, mode="json")`) made straight
    from a row of known columns, without building the model: a page of 2,000 spent most of
    its time validating models only to dump them again. The model stays the documented
    schema; this reads its fields once: their camelCase keys, which are times (OcpTime), and
    which column holds each.

    `source` names the column of a field called otherwise in the row; a field no column holds
    takes the model's default; `skip` leaves out fields the caller fills (nested ones).

    `dump(row)` gives the wire form: one function made here for the model, whose body is a
    single dict display (`{"id": row[0], "createTime": iso(row[12]), ...}`), as dataclasses
    make their `__init__`. Rows are read by position (by name costs ten times more), and a
    dict display costs half of `dict(zip(keys, values))` and a loop over the times: on a page
    of 2,000 rows that was a fifth of the answer's CPU.
    """

    def __init__(
        self,
        model: type[BaseModel],
        columns: Iterable[str],
        *,
        source: Mapping[str, str] | None = None,
        skip: Collection[str] = (),
    ) -> None:
        self.position = {column: index for index, column in enumerate(columns)}
        renamed = source or {}
        fixed: dict[str, Any] = {}
        items: list[str] = []
        for name, info in model.model_fields.items():
            key, column = info.alias or name, renamed.get(name, name)
            if name in skip:
                continue
            if column in self.position:
                value = f"row[{self.position[column]}]"
                if _is_time(info.annotation, info.metadata):
                    value = f"iso({value})"
            elif info.is_required():
                raise ValueError(f"no column {column!r} for {model.__name__}.{name}")
            else:
                fixed[key] = info.get_default()
                value = f"fixed[{key!r}]"
            items.append(f"{key!r}: {value}")
        # Keys are the model's own field aliases (repr() quotes them), values row positions:
        # nothing of a request reaches this text.
        text = f"def dump(row):\n    return {{{', '.join(items)}}}\n"
        scope: dict[str, Any] = {"iso": iso, "fixed": fixed}
        exec(compile(text, f"<WireRow {model.__name__}>", "exec"), scope)
        self.dump: Callable[[Sequence[Any]], dict[str, Any]] = scope["dump"]

    def columns(self, *names: str) -> Callable[[Sequence[Any]], Any]:
        """A getter of some columns of the row by position, for the fields a caller fills
        (one value for one name, a tuple for several)."""
        return itemgetter(*(self.position[name] for name in names))


def _is_time(annotation: Any, metadata: Sequence[Any] = ()) -> bool:
    """Whether a field is an OcpTime, optional or not."""
    if any(isinstance(m, PlainSerializer) and m.func is iso for m in metadata):
        return True
    if get_origin(annotation) is Annotated:
        return _is_time(get_args(annotation)[0], annotation.__metadata__)
    return any(_is_time(arg) for arg in get_args(annotation) if arg is not type(None))
