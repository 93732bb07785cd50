"""GET /api/v2/tasks/instances filters: unknown statuses and types are refused (as the host list
refuses an unknown status), and the name keywords are plain text, not LIKE patterns."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from obfleet.store.models.tasks import TaskInstance
from tests.conftest import ADMIN

TASKS = "/api/v2/tasks/instances"


@pytest.fixture
def tasks(client: TestClient) -> dict[str, int]:
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    rows = {
        "install": TaskInstance(
            name="Install obproxy", status="RUNNING", cluster_name="pc1", type="MANUAL"
        ),
        "percent": TaskInstance(
            name="Move 100% of pc_2", status="FAILED", cluster_name="pc_2", type="SYS_ONECE"
        ),
        "plain": TaskInstance(
            name="Restart obproxy", status="SUCCESSFUL", cluster_name="pcX2", type="MANUAL"
        ),
    }
    with ctx.db.transaction() as session:
        for row in rows.values():
            row.operation = "EXECUTE"
            row.creator = "admin"
            row.context = {}
        session.add_all(rows.values())
        session.flush()
        return {key: row.id for key, row in rows.items()}


def found(client: TestClient, query: str) -> set[int]:
    r = client.get(f"{TASKS}?{query}", headers=ADMIN)
    assert r.status_code == 200, r.text
    return {t["id"] for t in r.json()["data"]["contents"]}


@pytest.mark.parametrize(
    "query, words",
    [
        ("status=BOGUS", "status 'BOGUS' must be among RUNNING, FAILED, SUCCESSFUL"),
        ("status=RUNNING,running", "status 'running' must be among"),
        ("status=RUNNING&status=DONE", "status 'DONE'"),
        ("type=BOGUS", "type 'BOGUS' must be among MANUAL, SYS_ONECE, SCHEDULED, SYS_SCHEDULED"),
    ],
)
def test_unknown_status_or_type_is_refused(
    client: TestClient, tasks: dict[str, int], query: str, words: str
) -> None:
    r = client.get(f"{TASKS}?{query}", headers=ADMIN)
    assert r.status_code == 400, r.text
    answer = r.json()
    assert answer["successful"] is False and answer["error"]["code"] == 1003
    assert words in answer["error"]["message"]


def test_known_status_and_type_still_filter(client: TestClient, tasks: dict[str, int]) -> None:
    assert found(client, "status=RUNNING,FAILED") == {tasks["install"], tasks["percent"]}
    assert found(client, "status=SUCCESSFUL&type=MANUAL") == {tasks["plain"]}
    assert found(client, "type=SYS_ONECE") == {tasks["percent"]}
    assert found(client, "type=SCHEDULED") == set()
    # Values are matched exactly, as OCP spells them.
    assert client.get(f"{TASKS}?type=manual", headers=ADMIN).status_code == 400


def test_name_keywords_are_plain_text(client: TestClient, tasks: dict[str, int]) -> None:
    for query, keys in [
        ("name=%25", {"percent"}),  # a literal %, not "anything"
        ("name=Install_obproxy", set()),  # a literal _, not "any one character"
        ("name=0%25 of", {"percent"}),
        ("name=install", {"install"}),  # still case-insensitive and fuzzy
        ("name=OBPROXY", {"install", "plain"}),
        ("clusterName=pc_", {"percent"}),  # not pc1 or pcX2
        ("cluterName=pc_2", {"percent"}),
        ("clusterName=%25", set()),
    ]:
        assert found(client, query) == {tasks[k] for k in keys}, query
