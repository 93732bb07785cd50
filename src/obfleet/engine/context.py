"""What a running subtask sees: the task context, its branch index, its log, the app's resources."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from obfleet.timefmt import utcnow

MASK = "******"

# Values after these words are masked even when the subtask forgot to declare them secret.
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b((?:[\w-]*password|passwd|secret|token|pwd)[\w-]*\s*[=:]\s*)('[^']*'|\"[^\"]*\"|\S+)"
)


@dataclass
class TaskContextData:
    """OCP's Context: string values and string lists, shared by all subtasks of a task."""

    string_map: dict[str, str] = field(default_factory=dict)
    list_map: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, value: dict[str, Any] | None) -> TaskContextData:
        value = value or {}
        return cls(
            dict(value.get("stringMap", {})),
            {k: list(v) for k, v in value.get("listMap", {}).items()},
        )

    def to_json(self) -> dict[str, Any]:
        return {"stringMap": dict(self.string_map), "listMap": dict(self.list_map)}


@dataclass
class ContextChanges:
    """The keys a run wrote; applied to the task context when the run commits as SUCCESSFUL."""

    strings: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.strings or self.lists)

    def apply_to(self, context: dict[str, Any] | None) -> dict[str, Any]:
        merged = TaskContextData.from_json(context)
        merged.string_map.update(self.strings)
        merged.list_map.update(self.lists)
        return merged.to_json()


class Redactor:
    """Masks declared secrets and `password=…`-style assignments in log lines."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, secret: str) -> None:
        if secret:
            self._secrets.add(secret)

    def __call__(self, line: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            line = line.replace(secret, MASK)
        return _SECRET_ASSIGNMENT.sub(lambda m: m.group(1) + MASK, line)


def log_prefix() -> str:
    """OCP's log line prefix: local time with milliseconds."""
    now = utcnow().astimezone()
    return now.strftime("%Y-%m-%d %H:%M:%S.") + f"{now.microsecond // 1000:03d}"


class SubtaskContext:
    """Handed to `execute` and `rollback`.

    Reads see the task context as it was when the run started plus this run's own writes.
    Writes are kept with the run and applied to the task context in the same transaction that
    marks the subtask SUCCESSFUL, so a run that dies or fails leaves the context untouched.
    """

    def __init__(
        self,
        *,
        task_id: int,
        subtask_id: int,
        run_time: int,
        parallel_idx: int,
        context: TaskContextData,
        resources: Any,
        emit_log: Callable[[str], None],
    ) -> None:
        self.task_id = task_id
        self.subtask_id = subtask_id
        self.run_time = run_time  # 1 on the first execution, 2 on the next one...
        self.parallel_idx = parallel_idx  # -1 outside a parallel branch
        self.resources = resources  # whatever the app gave the engine (SSH pool, settings...)
        self.cancelled = asyncio.Event()  # set when an operator cancels this subtask
        self.changes = ContextChanges()
        self._context = context
        self._emit_log = emit_log
        self._redact = Redactor()

    @property
    def parallel(self) -> bool:
        return self.parallel_idx >= 0

    def get(self, key: str, default: str | None = None) -> str | None:
        if key in self.changes.strings:
            return self.changes.strings[key]
        return self._context.string_map.get(key, default)

    def require(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(f"task context has no string '{key}'")
        return value

    def set(self, key: str, value: str) -> None:
        self.changes.strings[key] = str(value)

    def get_list(self, key: str) -> list[str]:
        if key in self.changes.lists:
            return list(self.changes.lists[key])
        return list(self._context.list_map.get(key, []))

    def set_list(self, key: str, values: list[str]) -> None:
        self.changes.lists[key] = [str(v) for v in values]

    def item(self, key: str) -> str:
        """This branch's element of the list `key` (the list a parallel fan-out ran over)."""
        if not self.parallel:
            raise ValueError(f"subtask {self.subtask_id} is not in a parallel branch")
        return self.get_list(key)[self.parallel_idx]

    def secret(self, value: str) -> str:
        """Declare `value` secret: it is masked in every later log line. Returns `value`."""
        self._redact.add(value)
        return value

    def log(self, line: str) -> None:
        """Append to this execution's log (visible through the API while the subtask runs)."""
        for part in str(line).splitlines() or [""]:
            self._emit_log(f"{log_prefix()} {self._redact(part)}")

    def check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise asyncio.CancelledError("subtask cancelled by an operator")
