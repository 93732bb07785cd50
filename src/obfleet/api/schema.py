"""The base of every request and response body: camelCase on the wire; a request body's unknown
fields are refused (unknown_fields.py), a response's are left out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

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
