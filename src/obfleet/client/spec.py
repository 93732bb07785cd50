"""The declarative fleet file of `obfleet apply`: OceanBase clusters to record, hosts, and
OBProxy clusters with their hosts, ports, mode, links, version and parameters.

It is read with PyYAML, validated against pydantic models whose JSON Schema `apply --schema`
prints, and an invalid file is reported with the line of each offending key or value.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

NAME = r"^[A-Za-z0-9_.-]{1,128}$"
ROOT_SERVER = r"^[^:\s]+:\d+:\d+(:(LEADER|FOLLOWER))?$"


class SpecError(Exception):
    """The file cannot be applied; each line of the message names where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _text(value: Any) -> str:
    """A parameter value as OBProxy takes it: YAML's true/false/numbers back to their text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise ValueError("a parameter value must be a string, number or boolean")


class ObClusterSpec(_Strict):
    """An existing OceanBase cluster to record (obfleet does not deploy OceanBase)."""

    name: str = Field(pattern=NAME)
    obClusterId: int = Field(ge=1)
    rootServers: list[str] = Field(min_length=1, description="ip:rpcPort:sqlPort[:LEADER|FOLLOWER]")
    proxyroCredential: str = Field(
        description="Name of an OB_CLUSTER credential holding proxyro's password."
    )
    obVersion: str | None = None

    @field_validator("rootServers")
    @classmethod
    def _servers(cls, value: list[str]) -> list[str]:
        for item in value:
            if not re.match(ROOT_SERVER, item):
                raise ValueError(f"'{item}' is not ip:rpcPort:sqlPort[:LEADER|FOLLOWER]")
        return value


class HostSpec(_Strict):
    address: str = Field(min_length=1, max_length=255)
    credential: str = Field(description="Name of the HOST credential obfleet logs in with.")
    sshPort: int = Field(22, ge=1, le=65535)
    kind: str = "DEDICATED_PHYSICAL_MACHINE"


class ObproxyClusterSpec(_Strict):
    name: str = Field(pattern=NAME)
    mode: Literal["CONFIG_URL", "RS_LIST"] = "CONFIG_URL"
    obClusters: list[str] = Field(min_length=1, description="OceanBase clusters it routes to.")
    hosts: list[str] = Field(min_length=1, description="Host addresses, one obproxy each.")
    sqlPort: int = Field(2883, ge=1, le=65535)
    exporterPort: int = Field(2884, ge=1, le=65535)
    version: str | None = Field(
        None,
        description="version-buildNumber as obproxies show it, e.g. 4.2.3.0-3 "
        "(default: the newest uploaded package).",
    )
    startupParameters: dict[str, str] = Field(default_factory=dict)
    parameters: dict[str, str] = Field(default_factory=dict)

    @field_validator("startupParameters", "parameters", mode="before")
    @classmethod
    def _values(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): _text(v) for k, v in value.items()}
        return value


class FleetSpec(_Strict):
    """What should exist. `apply` makes it so; `--prune` also deletes OBProxy clusters (and
    obproxies, links) that the file does not name. What `apply` compares: OceanBase clusters
    and hosts by name and address only (one that exists is left as it is); an OBProxy cluster's
    hosts, links, version and the values of the parameters the file names (a parameter the
    file leaves out keeps its recorded value)."""

    obClusters: list[ObClusterSpec] = Field(default_factory=list)
    hosts: list[HostSpec] = Field(default_factory=list)
    obproxyClusters: list[ObproxyClusterSpec] = Field(default_factory=list)


def schema() -> str:
    return json.dumps(FleetSpec.model_json_schema(), indent=2)


def _line_of(root: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the deepest node along `loc` in the composed YAML."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == key), None)
            if node is None:  # a missing key: the mapping that lacks it
                return line
            # an unknown key is reported at the key itself, not its value
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            node = node.value[key] if key < len(node.value) else None
        else:
            return line
        if node is None:
            return line
        line = node.start_mark.line + 1
    return line


def load(path: Path) -> FleetSpec:
    text = path.read_text()
    try:
        data = yaml.safe_load(text) or {}
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not YAML: {exc}") from exc
    try:
        return FleetSpec.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            where = ".".join(str(k) for k in loc) or "(top)"
            lines.append(f"{path}:{_line_of(root, loc)}: {where}: {error['msg']}")
        raise SpecError("\n".join(lines)) from exc
