"""The OBProxy parameter catalog, and validation of the parameters a request wants to set.

The data is ``parameters.json`` next to this module. Each entry is one parameter for a range of
OBProxy versions, taken from OBProxy's own ``ob_proxy_config.h`` at each open-source release
tag, from OBD's ``parameter.yaml`` and from OCP's ODP parameter guide (the file lists them).

**Startup or runtime.** OCP's create call takes ``startupParameters`` and ``parameters`` and
every parameter belongs to exactly one of the two lists. The rule: a parameter whose change
needs a restart (``CFG_NEED_REBOOT`` in ``ob_proxy_config.h``, ``need_restart`` in OBD) is a
startup parameter and goes on OBProxy's command line; everything else is a runtime parameter,
which OBProxy takes with ``ALTER PROXYCONFIG`` while it runs. ``startup`` in the data is
therefore always equal to ``needRestart``. ``proxy_id`` shows that this can depend on the
version: it needs a restart before 4.2.3 and not from 4.2.3 on.

**Versions.** ``minVersion`` is inclusive and is the first open-source release whose
``ob_proxy_config.h`` defines the entry (or OBD's plugin version, when OBD shows it earlier);
no ``minVersion`` means "already in 3.1.0, the first open-source release". ``maxVersion`` is
inclusive and compared as a prefix: ``4.2.2`` covers every 4.2.2.x. Where a parameter changed
(a range, the log levels, the need for a restart), it has one entry per version range, and the
ranges of one name never overlap.

**allowedStringValues** follows OCP's sample: ``[min,max]`` for numbers, times and capacities
(an open side is left empty, ``[0,]``), ``[]`` for booleans and free text, and for a STRING
with a fixed set of values the values themselves, ``[client,server]``.

**The command line.** Startup values end up in ``-o k=v,k=v``, which OBProxy splits on commas
and newlines (``ObCommonConfig::add_extra_config_from_opt``), so values must not carry either,
nor quotes, backslashes or other control characters that the command builder's quoting would
have to fight with: :func:`command_line_safe`. Lists are rewritten with ``;``, OBProxy's own
list separator. Secrets (passwords) are exempt from that rule: they never go on the command
line as typed (OBProxy wants their SHA1 hex there) and are never echoed in error messages.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from functools import cache
from importlib import resources

__all__ = [
    "RUNTIME_FIELD",
    "STARTUP_FIELD",
    "TYPES",
    "ParameterError",
    "ParameterInfo",
    "catalog",
    "command_line_safe",
    "get",
    "parse_version",
    "validate_parameters",
    "validate_value",
]

TYPES = frozenset({"BOOL", "CAPACITY", "DOUBLE", "INT", "MOMENT", "STRING", "STRING_LIST", "TIME"})
STARTUP_FIELD = "startupParameters"
RUNTIME_FIELD = "parameters"

# OB_MAX_CONFIG_VALUE_LEN is 4096 bytes with the terminating NUL (src/lib/ob_define.h).
MAX_VALUE_BYTES = 4095
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# The first open-source OBProxy release: an entry without minVersion is already in it.
FIRST_RELEASE = "3.1.0"

Version = tuple[int, ...]


class ParameterError(ValueError):
    """A parameter a request wants to set is unknown, misplaced or has a bad value."""

    def __init__(self, message: str, *, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


# --- versions ------------------------------------------------------------------------------

_VERSION = re.compile(r"v?(\d+(?:\.\d+){0,4})(?:[-_].*)?")


def parse_version(text: str) -> Version:
    """(4, 2, 3, 0) from "4.2.3.0"; a release suffix ("4.2.3.0-3") is ignored."""
    match = _VERSION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"'{text}' is not an OBProxy version such as 4.2.3.0")
    return tuple(int(part) for part in match.group(1).split("."))


def _at_least(version: Version, minimum: Version) -> bool:
    width = max(len(version), len(minimum))
    return _pad(version, width) >= _pad(minimum, width)


def _at_most(version: Version, maximum: Version) -> bool:
    # A prefix comparison: maxVersion 4.2.2 covers 4.2.2.x but not 4.2.3.
    return _pad(version, len(maximum))[: len(maximum)] <= maximum


def _pad(version: Version, width: int) -> Version:
    return version + (0,) * (width - len(version))


# --- the entries ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ParameterInfo:
    """One entry of parameters.json; ``id`` is its 1-based position in the file."""

    id: int
    name: str
    type: str
    default_value: str
    min_value: str | None
    max_value: str | None
    allowed_string_values: str
    need_restart: bool
    readonly: bool
    description: str
    explanation: str | None
    startup: bool
    secret: bool
    min_version: str | None
    max_version: str | None
    source: str = ""

    @property
    def enum_values(self) -> tuple[str, ...]:
        """The fixed values of a STRING parameter; empty when any text goes."""
        if self.type != "STRING":
            return ()
        inner = self.allowed_string_values.strip()[1:-1]
        return tuple(item.strip() for item in inner.split(",") if item.strip())

    def available_in(self, version: str | Version | None) -> bool:
        if version is None:
            return True
        wanted = parse_version(version) if isinstance(version, str) else version
        if self.min_version and not _at_least(wanted, parse_version(self.min_version)):
            return False
        return not (self.max_version and not _at_most(wanted, parse_version(self.max_version)))

    def versions_text(self) -> str:
        if self.min_version and self.max_version:
            return f"from {self.min_version} to {self.max_version}"
        if self.min_version:
            return f"from {self.min_version}"
        if self.max_version:
            return f"up to {self.max_version}"
        return "in every version"

    def to_ocp_dict(self, version: str | None = None) -> dict[str, object]:
        """OCP's ParameterInfo. ``version`` (a String in OCP) is the OBProxy version asked for,
        else the first release the catalog knows the entry from: minVersion, or 3.1.0."""
        return {
            "id": self.id,
            "name": self.name,
            "version": version if version is not None else self.min_version or FIRST_RELEASE,
            "type": self.type,
            "allowedStringValues": self.allowed_string_values,
            "maxValue": self.max_value,
            "minValue": self.min_value,
            "defaultValue": self.default_value,
            "needRestart": self.need_restart,
            "readonly": self.readonly,
            "description": self.description,
            "explanation": self.explanation,
        }


def _text(item: dict[str, object], key: str) -> str:
    value = item[key]
    if not isinstance(value, str):
        raise ValueError(f"parameters.json: {key} of {item.get('name')} must be a string")
    return value


def _optional(item: dict[str, object], key: str) -> str | None:
    return None if item[key] is None else _text(item, key)


def _flag(item: dict[str, object], key: str) -> bool:
    value = item[key]
    if not isinstance(value, bool):
        raise ValueError(f"parameters.json: {key} of {item.get('name')} must be true or false")
    return value


_JSON_KEYS = frozenset(
    {
        "name",
        "type",
        "defaultValue",
        "minValue",
        "maxValue",
        "allowedStringValues",
        "needRestart",
        "readonly",
        "description",
        "explanation",
        "startup",
        "secret",
        "minVersion",
        "maxVersion",
        "source",
    }
)


def _from_json(position: int, item: dict[str, object]) -> ParameterInfo:
    if set(item) != _JSON_KEYS:
        odd = sorted(set(item) ^ _JSON_KEYS)
        raise ValueError(f"parameters.json entry {position}: unexpected or missing keys {odd}")
    info = ParameterInfo(
        id=position,
        name=_text(item, "name"),
        type=_text(item, "type"),
        default_value=_text(item, "defaultValue"),
        min_value=_optional(item, "minValue"),
        max_value=_optional(item, "maxValue"),
        allowed_string_values=_text(item, "allowedStringValues"),
        need_restart=_flag(item, "needRestart"),
        readonly=_flag(item, "readonly"),
        description=_text(item, "description"),
        explanation=_optional(item, "explanation"),
        startup=_flag(item, "startup"),
        secret=_flag(item, "secret"),
        min_version=_optional(item, "minVersion"),
        max_version=_optional(item, "maxVersion"),
        source=_text(item, "source"),
    )
    if info.type not in TYPES:
        raise ValueError(f"parameters.json entry {position}: unknown type {info.type}")
    return info


@cache
def _entries() -> tuple[ParameterInfo, ...]:
    text = resources.files("obfleet.obproxy").joinpath("parameters.json").read_text("utf-8")
    raw = json.loads(text)["parameters"]
    return tuple(_from_json(position, item) for position, item in enumerate(raw, start=1))


def catalog(version: str | None = None) -> list[ParameterInfo]:
    """Every entry, or those that exist in OBProxy ``version`` (e.g. "4.2.3.0", "1.9.1")."""
    wanted = None if version is None else parse_version(version)
    return [info for info in _entries() if info.available_in(wanted)]


def _named(name: str) -> list[ParameterInfo]:
    return [info for info in _entries() if info.name == name]


def get(name: str, version: str | None = None) -> ParameterInfo | None:
    """The entry for ``name`` in ``version``; without a version, the newest entry."""
    entries = _named(name.strip().lower())
    if version is not None:
        wanted = parse_version(version)
        entries = [info for info in entries if info.available_in(wanted)]
    return max(entries, key=_newness, default=None)


def _newness(info: ParameterInfo) -> tuple[bool, Version, Version]:
    # An open-ended entry is the newest; otherwise the one that reaches furthest.
    upper = parse_version(info.max_version) if info.max_version else ()
    lower = parse_version(info.min_version) if info.min_version else ()
    return (info.max_version is None, upper, lower)


# --- values --------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[,'\"`\\\x00-\x1f\x7f]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def command_line_safe(value: str) -> bool:
    """Whether ``value`` can sit in OBProxy's ``-o k=v,k=v`` without adding or breaking items."""
    return _UNSAFE.search(value) is None


def _show(value: str) -> str:
    shown = value if len(value) <= 60 else value[:57] + "..."
    return repr(shown)


_BOOL_WORDS = {
    # ObConfigBoolItem::parse accepts these, case-insensitively.
    **dict.fromkeys(("true", "on", "yes", "t", "1"), "true"),
    **dict.fromkeys(("false", "off", "no", "f", "0"), "false"),
}


def _bool(info: ParameterInfo, text: str) -> str:
    try:
        return _BOOL_WORDS[text.lower()]
    except KeyError:
        raise ParameterError(
            f"'{info.name}': {_show(text)} is not a boolean: use true or false"
        ) from None


_INTEGER = re.compile(r"[+-]?\d+")


def _int_number(info: ParameterInfo, text: str) -> int:
    # Only plain decimals: OBProxy's strtol(..., 0) would read "010" as octal 8.
    if not _INTEGER.fullmatch(text):
        raise ParameterError(f"'{info.name}': {_show(text)} is not an integer")
    number = int(text)
    if not INT64_MIN <= number <= INT64_MAX:
        raise ParameterError(f"'{info.name}': {text} does not fit in a 64-bit integer")
    return number


_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _double_number(info: ParameterInfo, text: str) -> float:
    number = float(text) if _DECIMAL.fullmatch(text) else math.nan
    if not math.isfinite(number):
        raise ParameterError(f"'{info.name}': {_show(text)} is not a number")
    return number


_AMOUNT = re.compile(r"(\d+)\s*([a-zA-Z]*)")
# ObConfigCapacityParser: no unit means MB. Canonical spelling, shift.
_CAPACITY_UNITS = {
    "b": ("B", 0),
    "k": ("KB", 10),
    "kb": ("KB", 10),
    "": ("MB", 20),
    "m": ("MB", 20),
    "mb": ("MB", 20),
    "g": ("GB", 30),
    "gb": ("GB", 30),
    "t": ("TB", 40),
    "tb": ("TB", 40),
}
# ObConfigTimeItem::parse: no unit means seconds; "m" is minutes. Microseconds per unit.
_TIME_UNITS = {
    "us": 1,
    "ms": 1_000,
    "": 1_000_000,
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
    "d": 86_400_000_000,
}


def _capacity(info: ParameterInfo, text: str) -> tuple[str, int]:
    match = _AMOUNT.fullmatch(text)
    unit = _CAPACITY_UNITS.get(match.group(2).lower()) if match else None
    if match is None or unit is None:
        raise ParameterError(
            f"'{info.name}': {_show(text)} is not a capacity such as 512MB or 2GB"
            " (units B, KB, MB, GB, TB)"
        )
    spelling, shift = unit
    return f"{int(match.group(1))}{spelling}", int(match.group(1)) << shift


def _time(info: ParameterInfo, text: str) -> tuple[str, int]:
    match = _AMOUNT.fullmatch(text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _TIME_UNITS:
        raise ParameterError(
            f"'{info.name}': {_show(text)} is not a duration such as 100ms, 10s, 5m, 1h or 1d"
            " (units us, ms, s, m, h, d)"
        )
    amount = int(match.group(1))
    return f"{amount}{unit or 's'}", amount * _TIME_UNITS[unit]


_MOMENT = re.compile(r"(\d{1,2}):(\d{2})")


def _moment(info: ParameterInfo, text: str) -> str:
    # ObConfigMomentItem: "disable", or a time of day read with strptime("%H:%M").
    if text.lower() == "disable":
        return "disable"
    match = _MOMENT.fullmatch(text)
    if match and int(match.group(1)) < 24 and int(match.group(2)) < 60:
        return f"{int(match.group(1)):02d}:{match.group(2)}"
    raise ParameterError(
        f"'{info.name}': {_show(text)} is not a time of day such as 02:00, or disable"
    )


def _string(info: ParameterInfo, text: str) -> str:
    allowed = info.enum_values
    if not allowed:
        return text
    for candidate in allowed:
        if candidate.lower() == text.lower():
            return candidate
    raise ParameterError(f"'{info.name}': {_show(text)} is not one of {', '.join(allowed)}")


def _string_list(info: ParameterInfo, text: str) -> str:
    # OBProxy's list items are separated by ';' (ObConfigStrListItem); ',' would end the -o item.
    if not text:
        return ""
    items = [item.strip() for item in re.split(r"[;,]", text)]
    if not all(items):
        raise ParameterError(f"'{info.name}': {_show(text)} has an empty item")
    return ";".join(items)


def _ordered(info: ParameterInfo, text: str) -> tuple[str, float]:
    """The normalised value and a number to compare with minValue/maxValue."""
    if info.type == "INT":
        number = _int_number(info, text)
        return str(number), number
    if info.type == "DOUBLE":
        real = _double_number(info, text)
        return repr(real), real
    if info.type == "CAPACITY":
        return _capacity(info, text)
    return _time(info, text)


def _check_range(info: ParameterInfo, text: str, number: float) -> None:
    if info.min_value is not None and number < _ordered(info, info.min_value)[1]:
        raise ParameterError(f"'{info.name}': {text} is below the minimum {info.min_value}")
    if info.max_value is not None and number > _ordered(info, info.max_value)[1]:
        raise ParameterError(f"'{info.name}': {text} is above the maximum {info.max_value}")


def _ranged(info: ParameterInfo, text: str) -> str:
    normalised, number = _ordered(info, text)
    _check_range(info, text, number)
    return normalised


_NORMALISERS: dict[str, Callable[[ParameterInfo, str], str]] = {
    "BOOL": _bool,
    "INT": _ranged,
    "DOUBLE": _ranged,
    "CAPACITY": _ranged,
    "TIME": _ranged,
    "MOMENT": _moment,
    "STRING": _string,
    "STRING_LIST": _string_list,
}


def _check_text(info: ParameterInfo, value: object) -> str:
    if not isinstance(value, str):
        raise ParameterError(f"'{info.name}': the value must be a string")
    if len(value.encode("utf-8")) > MAX_VALUE_BYTES:
        raise ParameterError(
            f"'{info.name}': the value is longer than OBProxy's {MAX_VALUE_BYTES}-byte limit"
        )
    if _CONTROL.search(value):
        raise ParameterError(
            f"'{info.name}': the value contains a control character (newline, tab, ...)"
        )
    return value


def validate_value(info: ParameterInfo, value: str) -> str:
    """``value`` in the spelling OBProxy gets, or ParameterError naming the parameter and rule."""
    text = _check_text(info, value)
    if info.secret:
        # Passwords are kept exactly as typed (spaces included) and never shown.
        return text
    normalised = _NORMALISERS[info.type](info, text.strip())
    if not command_line_safe(normalised):
        raise ParameterError(
            f"'{info.name}': {_show(normalised)} cannot go on OBProxy's command line:"
            " commas, quotes and backslashes would break its -o k=v,k=v option"
        )
    return normalised


# --- a request's lists ---------------------------------------------------------------------

# Names people reach for that are not OBProxy parameters: OBD's deploy keys and the long
# options of the obproxy binary (-n/--appname, -r/--rs_list, -c/--cluster_name).
_ALIASES = {
    "appname": "app_name",
    "rs_list": "rootservice_list",
    "cluster_name": "rootservice_cluster_name",
    "idc_name": "proxy_idc_name",
}


def _unknown(where: str, name: str) -> ParameterError:
    key = name.strip().lower()
    known = sorted({info.name for info in _entries()})
    guess = _ALIASES.get(key) or next(iter(get_close_matches(key, known, n=1)), None)
    hint = f" (did you mean '{guess}'?)" if guess else ""
    return ParameterError(
        f"{where} {_show(name)} is not an OBProxy parameter{hint}", parameter=name
    )


def _lookup(where: str, name: object, version: str | None) -> ParameterInfo:
    if not isinstance(name, str) or not name.strip():
        raise ParameterError(f"{where} has no parameter name")
    found = get(name, version)
    if found is not None:
        return found
    other = _named(name.strip().lower())
    if not other:
        raise _unknown(where, name)
    ranges = " or ".join(info.versions_text() for info in other)
    raise ParameterError(
        f"{where} '{other[0].name}' is not available in OBProxy {version} (it exists {ranges})",
        parameter=other[0].name,
    )


def _check_placement(where: str, info: ParameterInfo, startup: bool, version: str | None) -> None:
    if info.readonly:
        raise ParameterError(f"{where} '{info.name}' is read-only", parameter=info.name)
    if info.startup == startup:
        return
    # Say which version decided it when the answer differs between versions (proxy_id).
    varies = len({entry.startup for entry in _named(info.name)}) > 1
    during = f" in OBProxy {version}" if varies and version else ""
    if info.startup:
        rule = f"is a startup parameter{during}: put it in {STARTUP_FIELD}"
    else:
        rule = f"is a runtime parameter{during}: put it in {RUNTIME_FIELD}"
    raise ParameterError(f"{where} '{info.name}' {rule}", parameter=info.name)


def validate_parameters(
    params: Sequence[tuple[str, str]], *, startup: bool, field: str, version: str | None
) -> list[tuple[str, str]]:
    """Canonical names and normalised values; ParameterError at the first bad one.

    ``startup`` says which list this is (``startupParameters`` or ``parameters``), ``field``
    names it in messages (``field[index]``), ``version`` is the OBProxy version to install.
    """
    seen: dict[str, int] = {}
    result: list[tuple[str, str]] = []
    for index, (name, value) in enumerate(params):
        where = f"{field}[{index}]"
        info = _lookup(where, name, version)
        if info.name in seen:
            raise ParameterError(
                f"{where} '{info.name}' is given twice (also {field}[{seen[info.name]}])",
                parameter=info.name,
            )
        _check_placement(where, info, startup, version)
        try:
            normalised = validate_value(info, value)
        except ParameterError as exc:
            raise ParameterError(f"{where} {exc}", parameter=info.name) from exc
        seen[info.name] = index
        result.append((info.name, normalised))
    return result
