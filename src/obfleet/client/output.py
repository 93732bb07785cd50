"""What read commands print: one JSON or YAML document on stdout, or a table for people.
Messages and progress go to stderr, so `--output json` leaves stdout parseable."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, highlight=False)


class Format(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


def document(data: Any, fmt: Format) -> str:
    if fmt is Format.yaml:
        return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def emit(data: Any, fmt: Format, columns: Sequence[str] = ()) -> None:
    """Print `data`: a list as a table of `columns`, one object as its fields."""
    if fmt is not Format.table:
        sys.stdout.write(document(data, fmt))
        return
    if isinstance(data, list):
        out.print(rows(data, columns))
    else:
        out.print(fields(data, columns))


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def rows(items: list[dict[str, Any]], columns: Sequence[str]) -> Table:
    table = Table(*columns, box=None, pad_edge=False)
    for item in items:
        table.add_row(*(cell(item.get(c)) for c in columns))
    return table


def fields(item: dict[str, Any], columns: Sequence[str]) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    for key in columns or list(item):
        table.add_row(f"[bold]{key}[/bold]", cell(item.get(key)))
    return table
