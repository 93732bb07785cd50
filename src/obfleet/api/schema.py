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
    its time validating models only to dump them again, and reading a row's values by name
    costs ten times reading them by position. The model stays the documented schema; this
    reads its fields once: their camelCase keys, which are times (OcpTime), and which column
    holds each.

    `source` names the column of a field called otherwise in the row; a field no column holds
    takes the model's default; `skip` leaves out fields the caller fills (nested ones).
    """

    def __init__(
        self,
        model: type[BaseModel],
        columns: Iterable[str],
        *,
        source: Mapping[str, str] | None = None,
        skip: Collection[str] = (),
    ) -> None:
        position = {column: index for index, column in enumerate(columns)}
        renamed = source or {}
        keys: list[str] = []
        indexes: list[int] = []
        self.times: list[str] = []
        self.fixed: dict[str, Any] = {}
        for name, info in model.model_fields.items():
            key, column = info.alias or name, renamed.get(name, name)
            if name in skip:
                continue
            if column in position:
                keys.append(key)
                indexes.append(position[column])
                if _is_time(info.annotation, info.metadata):
                    self.times.append(key)
            elif info.is_required():
                raise ValueError(f"no column {column!r} for {model.__name__}.{name}")
            else:
                self.fixed[key] = info.get_default()
        self.keys = tuple(keys)
        # Every value at once, in C (itemgetter of one index gives the value, not a tuple).
        pick = itemgetter(*indexes) if indexes else (lambda _row: ())
        self.values: Callable[[Sequence[Any]], tuple[Any, ...]] = (
            pick if len(indexes) != 1 else lambda row: (pick(row),)
        )

    def __call__(self, row: Sequence[Any]) -> dict[str, Any]:
        wire = dict(zip(self.keys, self.values(row), strict=True))
        for key in self.times:
            wire[key] = iso(wire[key])
        if self.fixed:
            wire.update(self.fixed)
        return wire


def _is_time(annotation: Any, metadata: Sequence[Any] = ()) -> bool:
    """Whether a field is an OcpTime, optional or not."""
    if any(isinstance(m, PlainSerializer) and m.func is iso for m in metadata):
        return True
    if get_origin(annotation) is Annotated:
        return _is_time(get_args(annotation)[0], annotation.__metadata__)
    return any(_is_time(arg) for arg in get_args(annotation) if arg is not type(None))
