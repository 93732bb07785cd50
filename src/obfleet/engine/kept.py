"""Values a subtask keeps in its task's context inside its own database transaction.

A run's `ctx.set` writes reach the task context only when the run ends SUCCESSFUL. A step that
creates something in the metadb (an obproxy row, say) must remember it even when the run fails
later, so that a retry recognises it as its own and a rollback undoes only that: it keeps the
id with `keep`, in the transaction that creates the thing, and reads it back with `kept`. The
engine merges a successful run's own writes into the context as it finds it then, so a kept
value stays.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from obfleet.engine.context import ContextChanges
from obfleet.store.models.tasks import TaskInstance


def _locked_context(session: Session, task_id: int) -> dict[str, Any] | None:
    return session.scalar(
        select(TaskInstance.context).where(TaskInstance.id == task_id).with_for_update()
    )


def kept(session: Session, task_id: int, key: str) -> str | None:
    """The value kept under `key`, read with the task row locked (parallel branches of one
    task keep theirs one after the other)."""
    context = _locked_context(session, task_id)
    value = ((context or {}).get("stringMap") or {}).get(key)
    return None if value is None else str(value)


def keep(session: Session, task_id: int, key: str, value: str) -> None:
    """Write `key` into the task context in the caller's transaction: it commits with what the
    caller writes beside it, whatever the run does next."""
    merged = ContextChanges(strings={key: value}).apply_to(_locked_context(session, task_id))
    session.execute(
        update(TaskInstance)
        .where(TaskInstance.id == task_id)
        .values(context=merged, version=TaskInstance.version + 1)
    )
