"""The engine's observer hooks, seen through the service's metrics: a lease taken over from a
runner that stopped renewing it is counted."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from sqlalchemy import update

from obfleet.engine import Flow
from obfleet.monitor.metrics import Metrics
from obfleet.store.db import Database
from obfleet.store.models.tasks import SubtaskInstance
from obfleet.timefmt import utcnow
from tests.engine.conftest import StartEngine, status_is, submit_flow, wait_for
from tests.engine.subtasks import A


async def test_a_lease_taken_over_is_counted(database: Database, start_engine: StartEngine) -> None:
    flow = Flow("Orphaned")
    flow.add(A)
    task_id = submit_flow(database, flow)
    with database.transaction() as session:  # a runner that died holding the subtask
        session.execute(
            update(SubtaskInstance)
            .where(SubtaskInstance.task_id == task_id)
            .values(
                status="RUNNING",
                owner="gone/1/dead",
                attempt=1,
                run_time=1,
                lease_until=utcnow() - timedelta(hours=1),
            )
        )
    metrics = Metrics()
    await start_engine(observer=metrics)
    await wait_for(database, task_id, status_is("SUCCESSFUL"))
    samples = metrics.registry
    assert samples.get_sample_value("obfleet_engine_lease_takeovers_total") == 1
    finished = {"name": "Orphaned", "status": "SUCCESSFUL", "operation": "EXECUTE"}
    # Counted once the engine's loop has applied the step that committed the task's end,
    # which a reader of the metadb may see first.
    deadline = time.monotonic() + 10
    while samples.get_sample_value("obfleet_tasks_total", finished) is None:
        assert time.monotonic() < deadline, "the finished task was never counted"
        await asyncio.sleep(0.01)
    assert samples.get_sample_value("obfleet_tasks_total", finished) == 1
