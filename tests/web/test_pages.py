"""Console pages in process: what each role is offered, and the task center's filters."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from obfleet.services.users import create_user
from tests.conftest import ADMIN, ADMIN_PASSWORD

PASSWORD = "Role_Pass_123"
WRITE_CONTROLS = re.compile(
    r'class="[^"]*\b(api-button|api-form|upload-form)\b|data-add-param|href="/console/clusters/new"'
)


def login(client: TestClient, username: str, password: str) -> None:
    answer = client.post(
        "/console/login",
        data={"username": username, "password": password},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


def test_a_viewer_is_offered_no_change_an_admin_is(client: TestClient) -> None:
    with client.app.state.ctx.db.transaction() as session:
        create_user(session, "viewer", PASSWORD, ["CLUSTER_VIEWER"])
    pages = ["/clusters", "/hosts", "/credentials", "/packages", "/ob-clusters"]
    login(client, "viewer", PASSWORD)
    for page in pages:
        text = client.get(f"/console{page}").text
        assert not WRITE_CONTROLS.search(text), page
    client.cookies.clear()
    login(client, "admin", ADMIN_PASSWORD)
    for page in pages:
        assert WRITE_CONTROLS.search(client.get(f"/console{page}").text), page


def _start_a_task(client: TestClient) -> None:
    """A register-only cluster: its task stays RUNNING (the engine does not run here)."""
    imported = client.post(
        "/api/v2/ob/clusters/import",
        headers=ADMIN,
        json={
            "name": "ob1",
            "obClusterId": 1,
            "proxyroPassword": "Proxyro_pw_1",
            "rootServers": [{"address": "198.18.250.1:2882", "role": "LEADER", "sqlPort": 2881}],
        },
    )
    assert imported.status_code == 200, imported.text
    created = client.post(
        "/api/v2/obproxy/clusters",
        headers=ADMIN,
        json={
            "name": "c1",
            "workMode": "CONFIG_URL",
            "obLinks": [{"clusterName": "ob1", "obClusterId": 1}],
        },
    )
    assert created.status_code == 200, created.text


def task_rows(client: TestClient, query: str) -> list[str]:
    page = client.get(f"/console/tasks?{query}")
    assert page.status_code == 200
    return re.findall(r'href="/console/tasks/\d+">([^<]+)<', page.text)


def test_the_task_center_filters_by_status_type_name_and_time(client: TestClient) -> None:
    _start_a_task(client)
    login(client, "admin", ADMIN_PASSWORD)
    (name,) = task_rows(client, "")
    assert task_rows(client, "status=RUNNING") == [name]
    assert task_rows(client, "status=FAILED") == []
    assert task_rows(client, "type=MANUAL") == [name]
    assert task_rows(client, "type=SYS_SCHEDULED") == []
    assert task_rows(client, f"name={name.split()[0]}") == [name]
    assert task_rows(client, "name=nothing-like-it") == []
    assert task_rows(client, "since=2000-01-01T00:00") == [name]
    assert task_rows(client, "until=2000-01-01T00:00") == []


def test_an_unknown_filter_value_shows_the_apis_refusal(client: TestClient) -> None:
    login(client, "admin", ADMIN_PASSWORD)
    page = client.get("/console/tasks?status=SLEEPING")
    assert page.status_code == 400
    assert "SLEEPING" in page.text
