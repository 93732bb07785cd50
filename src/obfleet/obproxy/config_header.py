"""The config items OBProxy's ``src/obproxy/obutils/ob_proxy_config.h`` defines, read from the
header's own ``DEF_*`` macros (scripts/gen_parameter_catalog.py turns them into the catalog).

An item reads ``DEF_INT(name, "default", "[min,max]", "description", CFG_NEED_REBOOT,
CFG_SECTION_OBPROXY, CFG_VISIBLE_LEVEL_USER, CFG_MULTI_LEVEL_GLOBAL);``. The range is there for
the ranged kinds (``DEF_INT``, ``DEF_DBL``, ``DEF_CAP``, ``DEF_TIME``) and may be left out;
adjacent string literals are one string, as in C. Items inside ``#ifdef ERRSIM`` exist only in
error-simulation builds, never in a release, so they are left out. Pure: text in, items out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["HeaderItem", "parse_header"]

# The macro kind -> the catalog's type. DEF_IP and DEF_LOG_LEVEL are strings with a checker.
KINDS = {
    "INT": "INT",
    "DBL": "DOUBLE",
    "CAP": "CAPACITY",
    "TIME": "TIME",
    "BOOL": "BOOL",
    "STR": "STRING",
    "IP": "STRING",
    "LOG_LEVEL": "STRING",
    "STR_LIST": "STRING_LIST",
    "INT_LIST": "STRING_LIST",
    "MOMENT": "MOMENT",
}
# What a number without a unit means (ObConfigTimeItem: seconds; ObConfigCapacityParser: MB).
BARE_UNITS = {"TIME": "s", "CAPACITY": "MB"}
_DESCRIBED_UNIT = re.compile(r"\bunit(?:\s+is|:)?\s+(us|ms|second|seconds|s|byte|bytes)\b", re.I)
_UNIT_NAMES = {"second": "s", "seconds": "s", "byte": "B", "bytes": "B"}


@dataclass(frozen=True)
class HeaderItem:
    """One ``DEF_*`` item of the header."""

    name: str
    kind: str  # the macro's suffix: INT, TIME, LOG_LEVEL, ...
    default: str
    range: str | None  # as written, "[1s,1h]"; None when the macro has none
    description: str
    need_reboot: bool
    visibility: str | None  # USER, SYS, DBA, MEMORY; None when the item does not say

    @property
    def type(self) -> str:
        return KINDS[self.kind]

    @property
    def bounds(self) -> tuple[str | None, str | None]:
        """(min, max) of the range, an open side None: "[0,]" -> ("0", None)."""
        if not self.range:
            return None, None
        low, _, high = self.range.strip()[1:-1].partition(",")
        return low.strip() or None, high.strip() or None

    @property
    def unit(self) -> str | None:
        """What a bare number means: seconds for a TIME, MB for a CAPACITY, and for a number
        the unit its description states ("unit is us")."""
        if self.type in BARE_UNITS:
            return BARE_UNITS[self.type]
        found = _DESCRIBED_UNIT.search(self.description) if self.type == "INT" else None
        if found is None:
            return None
        word = found.group(1).lower()
        return _UNIT_NAMES.get(word, word)

    @property
    def log_levels(self) -> tuple[str, ...]:
        """The levels a DEF_LOG_LEVEL item lists after the colon of its description."""
        if self.kind != "LOG_LEVEL":
            return ()
        listed = self.description.partition(":")[2]
        return tuple(level.strip() for level in listed.split(",") if level.strip())


# A token of the header: a string literal, a comment, a preprocessor line, a word, or a sign.
_TOKEN = re.compile(
    r'"(?:[^"\\\n]|\\.)*"'
    r"|//[^\n]*"
    r"|/\*.*?\*/"
    r"|^[ \t]*#[^\n]*"
    r"|\w+"
    r"|[^\s\w]",
    re.S | re.M,
)
_C_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "'": "'"}


def _tokens(text: str) -> list[str]:
    """The tokens outside comments and outside ``#ifdef ERRSIM`` blocks."""
    kept: list[str] = []
    depth = 0  # #if nesting inside an ERRSIM block
    for token in _TOKEN.findall(text):
        if token.startswith(("//", "/*")):
            continue
        directive = token.strip()
        if directive.startswith("#"):
            words = directive[1:].split()
            if depth:
                if words and words[0].startswith("if"):
                    depth += 1
                elif words and words[0] == "endif":
                    depth -= 1
            elif words[:2] == ["ifdef", "ERRSIM"]:
                depth = 1
            continue
        if not depth:
            kept.append(token)
    return kept


def _literal(token: str) -> str:
    body = token[1:-1]
    return re.sub(r"\\(.)", lambda m: _C_ESCAPES.get(m.group(1), m.group(1)), body)


def _arguments(tokens: list[str], start: int) -> tuple[list[list[str]], int]:
    """The comma-separated arguments of the call whose "(" is at ``start``, and the index after
    its ")"."""
    args: list[list[str]] = [[]]
    depth = 0
    for index in range(start, len(tokens)):
        token = tokens[index]
        if token == "(":
            depth += 1
            if depth == 1:
                continue
        elif token == ")":
            depth -= 1
            if depth == 0:
                return args, index + 1
        elif token == "," and depth == 1:
            args.append([])
            continue
        args[-1].append(token)
    raise ValueError("a DEF_ macro is not closed")


def _string(arg: list[str]) -> str | None:
    """The value of an argument made of string literals only, else None."""
    if not arg or not all(token.startswith('"') for token in arg):
        return None
    return "".join(_literal(token) for token in arg)


def _item(kind: str, args: list[list[str]]) -> HeaderItem:
    name = args[0][0] if len(args[0]) == 1 else ""
    strings = []
    for arg in args[1:]:
        text = _string(arg)
        if text is None:
            break
        strings.append(text)
    flags = {"".join(arg) for arg in args[1 + len(strings) :]}
    if not name.isidentifier() or len(strings) not in (2, 3):
        raise ValueError(f"DEF_{kind}({name}, ...) is not a config item this parser knows")
    default, *middle, description = strings
    visible = [flag for flag in flags if flag.startswith("CFG_VISIBLE_LEVEL_")]
    return HeaderItem(
        name=name,
        kind=kind,
        default=default,
        range=middle[0] if middle else None,
        description=description,
        need_reboot="CFG_NEED_REBOOT" in flags,
        visibility=visible[0].removeprefix("CFG_VISIBLE_LEVEL_") if visible else None,
    )


def parse_header(text: str) -> list[HeaderItem]:
    """Every config item of ``ob_proxy_config.h`` in the header's order."""
    tokens = _tokens(text)
    items: list[HeaderItem] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        kind = token.removeprefix("DEF_")
        if token.startswith("DEF_") and kind in KINDS and tokens[index + 1 : index + 2] == ["("]:
            args, index = _arguments(tokens, index + 1)
            items.append(_item(kind, args))
        else:
            index += 1
    return items
