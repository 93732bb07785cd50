"""Engine fixtures: an in-process engine on the metadb under test, and waiting for tasks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from obfleet.api.schemas.tasks import TaskOut
from obfleet.engine import Flow, TaskEngine, submit
from obfleet.store.db import Database
from tests.engine.subtasks import Journal

StartEngine = Callable[..., Coroutine[Any, Any, TaskEngine]]


@pytest.fixture
def journal() -> Journal:
    return Journal()


@pytest.fixture
async def start_engine(database: Database, journal: Journal) -> AsyncIterator[StartEngine]:
    engines: list[TaskEngine] = []

    async def start(**options: Any) -> TaskEngine:
        settings = {
            "node_address": "127.0.0.1",
            "resources": journal,
            "concurrency": 8,
            "lease_seconds": 3.0,
            "poll_interval": 0.2,
            "stop_grace": 1.0,
            **options,
        }
        engine = TaskEngine(database, **settings)
        await engine.start()
        engines.append(engine)
        return engine

    yield start
    journal.release.set()
    for engine in engines:
        await engine.stop()


def submit_flow(db: Database, flow: Flow, **kwargs: Any) -> int:
    with db.transaction() as session:
        return submit(session, flow, creator="admin", **kwargs)


def task_view(db: Database, task_id: int) -> dict[str, Any]:
    with db.session() as session:
        return TaskOut.load(session, task_id).model_dump(mode="json", by_alias=True)


async def wait_for(
    db: Database, task_id: int, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15
) -> dict[str, Any]:
    """Poll the task until `predicate(view)` holds; fail with the last view after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        view = await asyncio.to_thread(task_view, db, task_id)
        if predicate(view):
            return view
        if time.monotonic() > deadline:
            raise AssertionError(f"task {task_id} never reached the expected state: {view}")
        await asyncio.sleep(0.02)


def status_is(status: str) -> Callable[[dict[str, Any]], bool]:
    return lambda view: (
        view["status"] == status
        and not any(s["status"] in ("READY", "RUNNING", "CANCELING") for s in view["subtasks"])
    )


def subtask(view: dict[str, Any], name: str, parallel_idx: int = -1) -> dict[str, Any]:
    return next(
        s for s in view["subtasks"] if s["name"] == name and s["parallelIdx"] == parallel_idx
    )
