"""A task's state changes as Server-Sent Events, for watchers that should not poll the API.

The stream opens with the whole task (`event: task`, a WrappedTaskInstance), then sends
`event: subtask` with a SubtaskInstance whenever a subtask's status, operation, executor or
runTime changes and `event: task` when the task's own status or operation does, and ends
with `event: end` once the task is SUCCESSFUL or FAILED. Changes committed in this process
are seen at once; those of other replicas at the next poll.

It lives in the API layer: its frames are the task API's JSON (TaskOut), and all it needs of
the engine is the change signal and the task's rows. A poll that finds the task's version
unchanged reuses the view (api/taskviews.py): one primary-key read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from obfleet.api.taskviews import task_views
from obfleet.engine import signals
from obfleet.engine.states import ACTIVE, TaskStatus
from obfleet.store.db import Database

_SUBTASK_KEYS = ("status", "operation", "executor", "runTime")


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, sort_keys=True)}\n\n"


def _finished(view: dict[str, Any]) -> bool:
    settled = view["status"] in (TaskStatus.SUCCESSFUL, TaskStatus.FAILED)
    return settled and not any(s["status"] in ACTIVE for s in view["subtasks"])


def _changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    frames = []
    old = {s["id"]: s for s in before["subtasks"]}
    for sub in after["subtasks"]:
        previous = old.get(sub["id"])
        if previous is None or any(previous[k] != sub[k] for k in _SUBTASK_KEYS):
            frames.append(sse("subtask", sub))
    if (before["status"], before["operation"]) != (after["status"], after["operation"]):
        frames.append(sse("task", {k: v for k, v in after.items() if k != "subtasks"}))
    return frames


async def task_events(
    db: Database, task_id: int, *, poll_interval: float = 1.0, keepalive: float = 15.0
) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()

    def on_signal(task_ids: frozenset[int], _work: bool) -> None:
        if task_id in task_ids:
            with contextlib.suppress(RuntimeError):  # the stream's loop is gone
                loop.call_soon_threadsafe(changed.set)

    views = task_views(db)

    def snapshot() -> dict[str, Any]:
        with db.session() as session:
            return views.get(session, task_id).data

    signals.subscribe(on_signal)
    try:
        view = await asyncio.to_thread(snapshot)
        yield sse("task", view)
        quiet = 0.0
        while not _finished(view):
            try:
                async with asyncio.timeout(poll_interval):
                    await changed.wait()
            except TimeoutError:
                quiet += poll_interval
            changed.clear()
            latest = await asyncio.to_thread(snapshot)
            frames = _changes(view, latest)
            view = latest
            for frame in frames:
                yield frame
            if frames:
                quiet = 0.0
            elif quiet >= keepalive:
                quiet = 0.0
                yield ": keepalive\n\n"
        yield sse("end", {"id": task_id, "status": view["status"], "operation": view["operation"]})
    finally:
        signals.unsubscribe(on_signal)
