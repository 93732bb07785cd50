"""The process's log: text or one JSON object per line (OBFLEET_LOG_FORMAT), with the ids of
the request, user, task and subtask each line was written for.

Those ids live in a context variable holding a mutable dict: the request middleware binds a
fresh dict (traceId), the auth dependency adds the user to that same dict (a dependency runs
in a copy of the request's context, so it could not set a variable the middleware would see),
and the task engine binds taskId/subtaskId around each subtask run.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

_fields: ContextVar[dict[str, Any] | None] = ContextVar("obfleet_log_fields", default=None)


def log_fields() -> dict[str, Any]:
    """The ids bound where this code runs (empty outside a request or subtask run)."""
    return dict(_fields.get() or {})


@contextmanager
def bound(**fields: Any) -> Iterator[dict[str, Any]]:
    """Bind `fields` (on top of those already bound) for the code inside; yields the dict, which
    callees in copied contexts may add to with `annotate`."""
    merged = {**(_fields.get() or {}), **{k: v for k, v in fields.items() if v is not None}}
    token = _fields.set(merged)
    try:
        yield merged
    finally:
        _fields.reset(token)


def annotate(**fields: Any) -> None:
    """Add `fields` to the dict bound by the nearest `bound` (nothing outside one)."""
    current = _fields.get()
    if current is not None:
        current.update({k: v for k, v in fields.items() if v is not None})


def note(key: str, value: Any) -> None:
    """Append `value` to the list `key` of the dict bound by the nearest `bound`."""
    current = _fields.get()
    if current is not None:
        current.setdefault(key, []).append(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, newlines and tracebacks escaped inside it."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **log_fields(),
        }
        if record.exc_info:
            entry["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(entry, ensure_ascii=False, default=str)


class _FieldsFormatter(logging.Formatter):
    """The text format, with the bound ids appended (`traceId=… user=…`)."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = log_fields()
        if not fields:
            return text
        return text + " " + " ".join(f"{k}={v}" for k, v in fields.items())


def check_format(name: str) -> str:
    if name not in FORMATS:
        raise ValueError(f"OBFLEET_LOG_FORMAT must be one of {', '.join(FORMATS)}, not {name!r}")
    return name


def configure(level: str, fmt: str) -> None:
    """Send every logger's records (uvicorn's and alembic's too: they propagate to the root) to
    stderr in `fmt`, and Python's warnings with them, so no line escapes the format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if check_format(fmt) == "json" else _FieldsFormatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def show(text: str) -> None:
    """Write `text` for the operator to stderr, past every logger (it may be a secret meant
    to be seen once, such as the first admin's password, which no log handler should ship
    elsewhere): as it is in the text format, as one JSON object in the json one."""
    formats = [h.formatter for h in logging.getLogger().handlers]
    if any(isinstance(f, JsonFormatter) for f in formats):
        record = logging.LogRecord("obfleet", logging.WARNING, __file__, 0, text, None, None)
        text = JsonFormatter().format(record)
    print(text, file=sys.stderr, flush=True)


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None:
        _log_uncaught(args.exc_type, args.exc_value, args.exc_traceback)


def _log_uncaught(
    kind: type[BaseException], error: BaseException, tb: TracebackType | None
) -> None:
    """A crash's traceback as one log record, in the log's format, not Python's bare print."""
    logging.getLogger("obfleet").critical(
        "uncaught %s: %s", kind.__name__, error, exc_info=(kind, error, tb)
    )
