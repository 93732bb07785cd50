"""What tasks act on: named at submit, asked with one query.

A service that submits a task names what the task will act on (`submit(flow, targets=...)`):
`("host", 3)`, `("obproxy_port", "3:2883")`, `("obproxy_cluster", 7)`, `("obproxy", 12)`. The
engine keeps them in `task_target` and answers "which running tasks act on this" with one
indexed query, so no caller reads other tasks' contexts to find out. The kinds mean nothing to
the engine; the services that name them agree on them (records/targets.py).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from obfleet.engine.states import TaskStatus
from obfleet.store.models.tasks import TaskInstance, TaskTarget

Target = tuple[str, object]  # (kind, key); the key is stored as text


@dataclass(frozen=True)
class RunningTask:
    """A RUNNING task acting on `key` (of the kind asked for)."""

    task_id: int
    name: str
    key: str

    @property
    def label(self) -> str:
        return f"{self.task_id} ({self.name}, {TaskStatus.RUNNING})"


def record_targets(session: Session, task_id: int, targets: Iterable[Target]) -> None:
    """Keep what the task `task_id` acts on, in the caller's transaction (each target once)."""
    rows = [
        {"task_id": task_id, "kind": kind, "key": key}
        for kind, key in dict.fromkeys((kind, str(key)) for kind, key in targets)
    ]
    if rows:
        session.execute(insert(TaskTarget), rows)


def running_tasks_on(session: Session, kind: str, keys: Collection[object]) -> list[RunningTask]:
    """The RUNNING tasks acting on any of `keys` of `kind`, by task id. A FAILED task waits for
    a person and starts nothing on its own, so it holds nothing here."""
    if not keys:
        return []
    rows = session.execute(
        select(TaskTarget.task_id, TaskInstance.name, TaskTarget.key)
        .join(TaskInstance, TaskInstance.id == TaskTarget.task_id)
        .where(
            TaskTarget.kind == kind,
            TaskTarget.key.in_(sorted({str(key) for key in keys})),
            TaskInstance.status == TaskStatus.RUNNING,
        )
        .order_by(TaskTarget.task_id, TaskTarget.key)
    )
    return [RunningTask(task_id, name, key) for task_id, name, key in rows]
