"""A task's view (TaskOut, as JSON) built once per task version, for pollers and event streams.

Every transaction that changes a task or any of its subtasks bumps `task_instance.version`
in the same commit (engine/dag.py, engine/store.py, engine/kept.py). A reader reads the
version first (one primary-key lookup) and reuses the view it built under that version; on
a miss it builds the view with reads made after the version's, so a view is never older than
the version it is kept under. Every replica reads the version from the metadb, so none serves
a view older than the last commit it can see.

Only sessions that write nothing may ask: a view built inside a write transaction could be
kept under a version that its rollback would hand to a different change.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, cast

import orjson
from sqlalchemy import Table, bindparam, select
from sqlalchemy.orm import Session

from obfleet.api.envelope import encoded
from obfleet.api.schemas.tasks import TaskOut
from obfleet.errors import ApiError, ErrorCode
from obfleet.store.db import PerDatabase
from obfleet.store.models.tasks import TaskInstance

VIEWS_KEPT = 512  # tasks per metadb and process; a view is a few KiB

_TASKS = cast(Table, TaskInstance.__table__)
_VERSION = select(_TASKS.c.version).where(_TASKS.c.id == bindparam("task_id"))


@dataclass(frozen=True)
class TaskView:
    version: int
    data: dict[str, Any]  # the WrappedTaskInstance's JSON; shared: never change it
    encoded: orjson.Fragment  # the same, encoded once, for the envelope


class TaskViews:
    """The most recently read tasks' views, one version each, least recently read dropped."""

    def __init__(self, size: int = VIEWS_KEPT) -> None:
        self.size = size
        self._views: OrderedDict[int, TaskView] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: Session, task_id: int) -> TaskView:
        """The task's view as of its current version (4001 for an unknown task)."""
        version = session.scalar(_VERSION, {"task_id": task_id})
        if version is None:
            raise ApiError(ErrorCode.TASK_NOT_FOUND, task_id)
        with self._lock:
            view = self._views.get(task_id)
            if view is not None and view.version == version:
                self._views.move_to_end(task_id)
                return view
        data = TaskOut.load(session, task_id).model_dump(mode="json", by_alias=True)
        view = TaskView(version, data, encoded(data))
        with self._lock:
            kept = self._views.get(task_id)
            if kept is None or kept.version <= version:  # a slower reader may bring an older one
                self._views[task_id] = view
                self._views.move_to_end(task_id)
            while len(self._views) > self.size:
                self._views.popitem(last=False)
        return view

    def clear(self) -> None:
        with self._lock:
            self._views.clear()


# One cache per metadb (task ids and versions mean nothing across metadbs), gone with it.
task_views: PerDatabase[TaskViews] = PerDatabase(TaskViews)
