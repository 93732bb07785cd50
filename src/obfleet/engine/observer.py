"""What the task engine tells whoever watches it (the service's metrics), without knowing who.

The runner calls these hooks from its event loop; the default watches nothing. A watcher must
be quick and must not raise: it runs inside the engine's loop.
"""

from __future__ import annotations


class EngineObserver:
    """Hooks the runner calls; each does nothing here."""

    def subtask_finished(self, name: str, action: str, outcome: str, seconds: float) -> None:
        """A run of subtask `name` ended: outcome SUCCESSFUL, FAILED, TIMEOUT or CANCELLED."""

    def task_finished(self, name: str, status: str, operation: str, seconds: float) -> None:
        """Task `name` settled SUCCESSFUL or FAILED, `seconds` after it started."""

    def running(self, count: int) -> None:
        """This node now runs `count` subtasks."""

    def claimed(self, count: int, seconds: float) -> None:
        """One claiming round took `seconds` and claimed `count` subtasks (0 s: they were
        claimed by the transaction that submitted their task, engine/local.py)."""

    def taken_over(self, count: int) -> None:
        """This node reclaimed `count` subtasks whose runner stopped renewing its lease."""
