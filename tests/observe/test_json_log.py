"""OBFLEET_LOG_FORMAT=json, through a real `obfleet serve`: every line the process writes is one
JSON object (uvicorn's and alembic's too), requests carry their trace id, user and client
address, tasks their lifecycle events with their ids, and no secret or Authorization header
appears."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from obfleet.config import Settings
from tests.server import ServerProcess, free_port

PASSWORD = "Admin_Json_12"
AUTH = ("admin", PASSWORD)
SECRET = "Host_json_secret_1"


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[ServerProcess]:
    env = {"OBFLEET_ADMIN_PASSWORD": PASSWORD, "OBFLEET_LOG_FORMAT": "json"}
    process = ServerProcess(tmp_path / "data", database_url=database_url, env=env)
    with process:
        yield process


def wait_status(base: str, task_id: int, wanted: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        task = httpx.get(f"{base}/api/v2/tasks/instances/{task_id}", auth=AUTH).json()["data"]
        if task["status"] == wanted or time.monotonic() > deadline:
            return task
        time.sleep(0.05)


def test_every_line_is_json_with_ids_and_the_task_events(server: ServerProcess) -> None:
    base = server.url
    credential = httpx.post(
        f"{base}/api/v2/credentials",
        auth=AUTH,
        json={"name": "ssh", "targetType": "HOST", "username": "root", "password": SECRET},
    )
    trace_id = credential.json()["traceId"]
    hosts = httpx.post(
        f"{base}/api/v2/compute/hosts/batchCreate",
        auth=AUTH,
        json={
            "hostBasicDataList": [{"innerIpAddress": "127.0.0.1"}],
            "sshPort": free_port(),  # nothing listens: the task fails
            "kind": "DEDICATED_PHYSICAL_MACHINE",
            "credentialId": credential.json()["data"]["id"],
        },
    )
    task_id = hosts.json()["data"]["contents"][0]["id"]
    assert wait_status(base, task_id, "FAILED")["status"] == "FAILED"
    httpx.post(f"{base}/api/v2/tasks/instances/{task_id}/retry", auth=AUTH).raise_for_status()
    time.sleep(0.2)
    assert wait_status(base, task_id, "FAILED")["status"] == "FAILED"
    httpx.post(f"{base}/api/v2/tasks/instances/{task_id}/rollback", auth=AUTH).raise_for_status()
    assert wait_status(base, task_id, "SUCCESSFUL")["operation"] == "ROLLBACK"
    server.stop()

    output = server.output()
    lines = [json.loads(line) for line in output.splitlines()]  # fails on any non-JSON line
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    loggers = {line["logger"] for line in lines}
    assert {"uvicorn.error", "alembic.runtime.migration", "obfleet.access"} <= loggers

    access = next(
        line
        for line in lines
        if line["logger"] == "obfleet.access" and line.get("traceId") == trace_id
    )
    assert access["user"] == "admin"
    assert access["message"].startswith("POST /api/v2/credentials 200")
    assert "client=127.0.0.1" in access["message"]

    about_task = [line for line in lines if line.get("taskId") == task_id]
    messages = [line["message"] for line in about_task]
    submitted = next(line for line in lines if "submitted" in line["message"])
    assert submitted["message"] == f"task {task_id} (Prepare host) submitted by admin"
    assert submitted["taskIds"] == [task_id] and submitted["user"] == "admin"
    assert f"task {task_id} started" in messages
    failures = [line for line in about_task if " failed: " in line["message"]]
    assert failures and all(line["level"] == "WARNING" and line["subtaskId"] for line in failures)
    assert "cannot connect" in failures[0]["message"]  # the reason
    assert any(m.startswith(f"task {task_id} (Prepare host) failed") for m in messages)
    everything = [line["message"] for line in lines]
    assert f"task {task_id} (Prepare host): retried" in everything
    assert f"task {task_id} (Prepare host): rolling back" in everything
    assert f"task {task_id} (Prepare host) rolled back" in messages

    for forbidden in (SECRET, PASSWORD, "Authorization", "Basic "):
        assert forbidden not in output, forbidden


def test_a_crash_is_one_json_line_too() -> None:
    crash = subprocess.run(
        [
            sys.executable,
            "-c",
            "from obfleet import logs; logs.configure('info', 'json'); "
            "import warnings; warnings.warn('careful'); raise SystemError('boom\\nline two')",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [json.loads(line) for line in crash.stderr.splitlines()]
    assert [(line["level"], line["logger"]) for line in lines] == [
        ("WARNING", "py.warnings"),
        ("CRITICAL", "obfleet"),
    ]
    assert lines[1]["message"] == "uncaught SystemError: boom\nline two"
    assert "Traceback" in lines[1]["exception"]


def test_an_unknown_log_format_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBFLEET_LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="OBFLEET_LOG_FORMAT must be one of text, json"):
        Settings.from_env()


def test_the_first_admins_password_is_one_json_object_too(
    tmp_path: Path, database_url: str
) -> None:
    process = ServerProcess(
        tmp_path / "data", database_url=database_url, env={"OBFLEET_LOG_FORMAT": "json"}
    )
    with process:
        kept = (tmp_path / "data" / "admin-password").read_text().strip()
        process.stop()
    lines = [json.loads(line) for line in process.output().splitlines()]  # fails on raw text
    (notice,) = [line for line in lines if kept in line["message"]]
    assert notice["logger"] == "obfleet" and "admin" in notice["message"]
