"""The 8 task endpoints and the event stream, through the app."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from obfleet.engine import Flow, TaskSubject
from obfleet.store.db import Database
from obfleet.store.models.tasks import SubtaskInstance, TaskInstance
from tests.conftest import ADMIN
from tests.engine.conftest import StartEngine, status_is, submit_flow, wait_for
from tests.engine.subtasks import A, B, Journal, Patient

BASE = "/api/v2/tasks/instances"
SAMPLE_TASK_KEYS = {
    "createTime",
    "creator",
    "executor",
    "finishTime",
    "id",
    "name",
    "operation",
    "prohibitRollback",
    "startTime",
    "status",
    "subtasks",
    "taskDefinitionId",
    "type",
    "context",
}
SAMPLE_SUBTASK_KEYS = {
    "className",
    "createTime",
    "description",
    "downstreams",
    "executor",
    "finishTime",
    "id",
    "name",
    "nodeType",
    "operation",
    "parallelIdx",
    "prohibitRollback",
    "runTime",
    "seriesId",
    "startTime",
    "status",
    "timeout",
    "upstreams",
}


def db_of(client: TestClient) -> Database:
    db: Database = client.app.state.ctx.db  # type: ignore[attr-defined]
    return db


def get(client: TestClient, path: str, **params: Any) -> Any:
    response = client.get(f"{BASE}{path}", params=params, headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def post(client: TestClient, path: str) -> Any:
    return client.post(f"{BASE}{path}", headers=ADMIN)


def make_task(
    client: TestClient, name: str, subject: TaskSubject | None = None, status: str | None = None
) -> int:
    flow = Flow(name)
    flow.chain(A, B)
    task_id = submit_flow(db_of(client), flow, subject=subject)
    if status:
        with db_of(client).transaction() as session:
            session.execute(
                update(TaskInstance).where(TaskInstance.id == task_id).values(status=status)
            )
            session.execute(
                update(SubtaskInstance)
                .where(SubtaskInstance.task_id == task_id)
                .values(status=status, run_time=1)
            )
    return task_id


def ids(page: dict[str, Any]) -> list[int]:
    return [t["id"] for t in page["contents"]]


def test_list_filters_pages_and_sorts(client: TestClient) -> None:
    one = make_task(
        client, "Install obproxy", TaskSubject(cluster_id=7, cluster_name="meta"), status="FAILED"
    )
    two = make_task(client, "Restart obproxy", TaskSubject(host_id=3), status="SUCCESSFUL")
    three = make_task(client, "Install obproxy again")

    assert ids(get(client, "", name="install")) == [one, three]
    assert ids(get(client, "", status="FAILED,SUCCESSFUL")) == [one, two]
    assert ids(get(client, "", status=["RUNNING", "FAILED"])) == [one, three]
    assert ids(get(client, "", clusterId=7)) == [one]
    assert ids(get(client, "", cluterName="met")) == [one]
    assert ids(get(client, "", clusterName="met")) == [one]
    assert ids(get(client, "", hostId=3)) == [two]
    assert ids(get(client, "", type="MANUAL")) == [one, two, three]
    page = get(client, "", size=2, page=1, sort="id,desc")
    assert ids(page) == [three, two]
    assert page["page"] == {"number": 1, "size": 2, "totalElements": 3, "totalPages": 2}
    item = page["contents"][0]
    assert item["creator"] == {"id": None, "name": "admin"}
    assert [set(s) for s in item["subtasks"]] == [
        {"id", "name", "description", "status", "operation"}
    ] * 2
    assert get(client, "", clusterId=7)["contents"][0]["cluster"] == {"id": 7, "name": "meta"}


def test_details_have_the_samples_fields(client: TestClient) -> None:
    task_id = make_task(client, "Details")
    data = get(client, f"/{task_id}")
    assert set(data) >= SAMPLE_TASK_KEYS
    assert (data["taskDefinitionId"], data["type"], data["status"]) == (-1, "MANUAL", "RUNNING")
    assert data["context"] == {"stringMap": {}, "listMap": {}, "parallelIdx": -1, "parallel": False}
    first, second = data["subtasks"]
    assert set(first) >= SAMPLE_SUBTASK_KEYS
    assert (first["nodeType"], first["parallelIdx"], first["seriesId"]) == ("JAVA_TASK", -1, 0)
    assert first["className"] == "tests.engine.subtasks.A"
    assert first["downstreams"] == [second["id"]] and second["upstreams"] == [first["id"]]
    assert (first["status"], second["status"]) == ("READY", "PENDING")


def test_unknown_task_is_4001(client: TestClient) -> None:
    for response in (
        client.get(f"{BASE}/424242", headers=ADMIN),
        post(client, "/424242/retry"),
        client.get(f"{BASE}/424242/subtasks/1/log", headers=ADMIN),
        client.get(f"{BASE}/424242/events", headers=ADMIN),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == 4001


def test_refused_operations_are_4007_envelopes(client: TestClient) -> None:
    task_id = make_task(client, "Busy")
    response = post(client, f"/{task_id}/rollback")
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": 4007,
        "message": (
            f"The operation is not allowed because the Busy ({task_id}) task is in the RUNNING "
            "state."
        ),
    }
    assert response.json()["successful"] is False


def test_task_and_subtask_operations(client: TestClient) -> None:
    task_id = make_task(client, "Failed", status="FAILED")
    retried = post(client, f"/{task_id}/retry")
    assert retried.status_code == 200
    assert (retried.json()["data"]["status"], retried.json()["data"]["operation"]) == (
        "RUNNING",
        "RETRY",
    )

    other = make_task(client, "Failed again", status="FAILED")
    first, second = get(client, f"/{other}")["subtasks"]
    response = post(client, f"/{other}/subtasks/{first['id']}/retry")
    assert response.status_code == 200
    assert (response.json()["data"]["id"], response.json()["data"]["status"]) == (
        first["id"],
        "READY",
    )
    skipped = post(client, f"/{other}/subtasks/{second['id']}/skip")
    assert skipped.status_code == 200 and skipped.json()["data"] is None
    cancelled = post(client, f"/{other}/subtasks/{first['id']}/cancel")  # READY: fails at once
    assert cancelled.status_code == 200
    statuses = [(s["status"], s["operation"]) for s in get(client, f"/{other}")["subtasks"]]
    assert statuses == [("FAILED", "CANCEL"), ("SUCCESSFUL", "SKIP")]
    assert post(client, f"/{other}/subtasks/{second['id']}/skip").status_code == 409

    rolled = post(client, f"/{other}/rollback")
    assert rolled.status_code == 200 and rolled.json()["data"]["operation"] == "ROLLBACK"


async def test_a_running_subtasks_log_grows(
    client: TestClient, start_engine: StartEngine, journal: Journal
) -> None:
    db = db_of(client)
    await start_engine()
    flow = Flow("log while running")
    flow.add(Patient)
    task_id = submit_flow(db, flow)
    view = await wait_for(db, task_id, lambda v: v["subtasks"][0]["status"] == "RUNNING")
    path = f"/{task_id}/subtasks/{view['subtasks'][0]['id']}/log"

    async def log() -> str:
        data = await asyncio.to_thread(get, client, path)
        return str(data["log"])

    deadline = asyncio.get_running_loop().time() + 30
    # The running subtask's line arrives with the next log flush.
    while "waiting for the test" not in (running_log := await log()):
        assert asyncio.get_running_loop().time() < deadline, "the line never reached the log"
        await asyncio.sleep(0.02)
    assert running_log.startswith("############{EXECUTE}{")
    assert "waiting for the test" in running_log and "new state" not in running_log
    journal.release.set()
    await wait_for(db, task_id, status_is("SUCCESSFUL"))
    final = await log()
    assert final.startswith(running_log) and final.rstrip().endswith("new state: SUCCESSFUL")


def events_of(
    client: TestClient, task_id: int, events: list[tuple[str, dict[str, Any]]]
) -> list[tuple[str, dict[str, Any]]]:
    """Read the task's event stream to its end, appending each event to `events` as it arrives."""
    with client.stream("GET", f"{BASE}/{task_id}/events", headers=ADMIN) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[len("data: ") :])))
    return events


def subtask_changes(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str]]:
    return [(e["name"], e["status"]) for kind, e in list(events) if kind == "subtask"]


async def until(condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.02)


async def test_event_stream_follows_a_task_to_its_end(
    client: TestClient, start_engine: StartEngine, journal: Journal
) -> None:
    db = db_of(client)
    flow = Flow("watched")
    flow.chain(Patient, A)
    task_id = submit_flow(db, flow)
    events: list[tuple[str, dict[str, Any]]] = []
    stream = asyncio.create_task(asyncio.to_thread(events_of, client, task_id, events))
    await until(lambda: bool(events), "the stream never opened")
    await start_engine()
    # Patient waits for the test: it is released only once the stream has reported it
    # running, so the stream's coalescing of quick changes cannot hide that state.
    await until(lambda: ("Patient", "RUNNING") in subtask_changes(events), "no Patient RUNNING")
    journal.release.set()
    await asyncio.wait_for(stream, 20)

    assert events[0][0] == "task" and events[0][1]["id"] == task_id
    assert events[-1] == ("end", {"id": task_id, "status": "SUCCESSFUL", "operation": "EXECUTE"})
    changes = subtask_changes(events)
    assert changes[-1] == ("A", "SUCCESSFUL")
