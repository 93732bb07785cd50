"""The base of every request and response body: camelCase on the wire, unknown fields ignored."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainSerializer
from pydantic.alias_generators import to_camel

from obfleet.timefmt import iso


class ApiModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",  # OCP clients send fields we do not use (the docs' obLinks[].clusterId)
        from_attributes=True,
    )


class RequestModel(ApiModel):
    """A request body: strict, so a value of the wrong JSON type is refused rather than coerced
    (`obClusterId: true` would otherwise be stored as 1, `"22"` taken for 22)."""

    model_config = ConfigDict(strict=True)


# Times on the wire: ISO-8601 with offset and milliseconds, as OCP writes them.
OcpTime = Annotated[datetime, PlainSerializer(iso, return_type=str | None)]


def example(body: dict[str, Any]) -> ConfigDict:
    """A request model's config giving its example body: the OpenAPI document shows it on the
    operation and spreads its values onto the fields (api/openapi.py)."""
    return ConfigDict(json_schema_extra={"examples": [body]})
