"""POST /api/v2/compute/hosts/{id}/prepare (extension): a recorded host's "Prepare host" task,
submitted again; refused while a task acting on the host runs. In process: tasks are only
submitted, not run (the browser flow in tests/web runs one)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from obfleet.engine.states import TaskStatus
from obfleet.store.models.tasks import TaskInstance
from tests.conftest import ADMIN

HOSTS = "/api/v2/compute/hosts"
ADDRESS = "198.18.0.2"


def add_host(client: TestClient) -> tuple[int, int]:
    """Host ADDRESS, recorded with its first Prepare host task (left RUNNING): (host, task)."""
    credential = client.post(
        "/api/v2/credentials",
        headers=ADMIN,
        json={"name": "ssh", "targetType": "HOST", "username": "root", "password": "Ssh_pw_12"},
    )
    assert credential.status_code == 200, credential.text
    made = client.post(
        f"{HOSTS}/batchCreate",
        headers=ADMIN,
        json={
            "hostBasicDataList": [{"innerIpAddress": ADDRESS}],
            "kind": "DEDICATED_PHYSICAL_MACHINE",
            "credentialId": credential.json()["data"]["id"],
        },
    )
    assert made.status_code == 200, made.text
    (task,) = made.json()["data"]["contents"]
    return task["hostId"], task["id"]


def end(client: TestClient, task_id: int, status: str) -> None:
    with client.app.state.ctx.db.transaction() as session:
        session.execute(
            update(TaskInstance).where(TaskInstance.id == task_id).values(status=status)
        )


def prepare(client: TestClient, host_id: int) -> Any:
    return client.post(f"{HOSTS}/{host_id}/prepare", headers=ADMIN)


def test_a_failed_prepare_is_run_again_as_a_new_task(client: TestClient) -> None:
    host_id, first = add_host(client)
    end(client, first, TaskStatus.FAILED)
    answer = prepare(client, host_id)
    assert answer.status_code == 200, answer.text
    task = answer.json()["data"]
    assert task["id"] != first
    assert (task["name"], task["status"], task["hostId"]) == ("Prepare host", "RUNNING", host_id)
    assert {s["branchLabel"] for s in task["subtasks"]} == {ADDRESS}


def test_an_online_host_is_prepared_again(client: TestClient) -> None:
    host_id, first = add_host(client)
    end(client, first, TaskStatus.SUCCESSFUL)
    assert prepare(client, host_id).status_code == 200


def test_it_is_refused_while_a_task_acts_on_the_host(client: TestClient) -> None:
    host_id, first = add_host(client)
    refused = prepare(client, host_id)
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == 1005
    assert ADDRESS in error["message"] and f"{first} (Prepare host, RUNNING)" in error["message"]
    tasks = client.get("/api/v2/tasks/instances", headers=ADMIN).json()["data"]["contents"]
    assert [t["id"] for t in tasks] == [first]  # nothing submitted


def test_an_unknown_host_is_not_found(client: TestClient) -> None:
    missing = prepare(client, 4242)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == 7005
