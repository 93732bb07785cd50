"""A user's requests in a row reuse the login read for the first (no metadb read for it), and
any change to users or roles this process commits is in force at the very next request."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, update

from obfleet.api.sessions import COOKIE
from obfleet.services import users
from obfleet.store.models.iam import User
from tests.conftest import ADMIN, ADMIN_PASSWORD, basic

PATH = "/api/v2/compute/hosts"


@pytest.fixture(autouse=True)
def no_recheck_by_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only this process's own changes may end a reuse here, however slowly the test runs."""
    monkeypatch.setattr(users, "LOGIN_RECHECK_S", 3600.0)


def user_reads(client: TestClient, headers: dict[str, str]) -> tuple[int, int]:
    """The answer's status, and how many statements read the user table meanwhile."""
    engine = client.app.state.ctx.db.engine  # type: ignore[attr-defined]
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM iam_user" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        status = client.get(PATH, headers=headers).status_code
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return status, len(seen)


def db(client: TestClient) -> Any:
    return client.app.state.ctx.db  # type: ignore[attr-defined]


def test_requests_in_a_row_read_the_login_once(client):
    assert user_reads(client, ADMIN)[0] == 200
    assert user_reads(client, ADMIN) == (200, 0)
    assert user_reads(client, ADMIN) == (200, 0)


def test_a_wrong_password_is_still_checked_against_the_metadb(client):
    assert user_reads(client, ADMIN) == (200, 1)
    status, reads = user_reads(client, basic("admin", "Not_the_password_1"))
    assert (status, reads) == (401, 1)
    assert user_reads(client, ADMIN) == (200, 0)


def test_a_disabled_user_is_refused_at_the_next_request(client):
    with db(client).transaction() as session:
        users.create_user(session, "ops", "Ops_Pass_123", ["ADMIN"])
    ops = basic("ops", "Ops_Pass_123")
    assert user_reads(client, ops) == (200, 1)
    assert user_reads(client, ops) == (200, 0)
    with db(client).transaction() as session:  # a Core statement, as much as an ORM change
        session.execute(update(User).where(User.username == "ops").values(enabled=False))
    assert user_reads(client, ops) == (401, 1)


def test_a_new_password_is_in_force_at_the_next_request(client):
    with db(client).transaction() as session:
        users.create_user(session, "ops", "Ops_Pass_123", ["ADMIN"])
    assert user_reads(client, basic("ops", "Ops_Pass_123")) == (200, 1)
    with db(client).transaction() as session:
        users.set_password(session, "ops", "Ops_Pass_456")
    assert user_reads(client, basic("ops", "Ops_Pass_123"))[0] == 401
    assert user_reads(client, basic("ops", "Ops_Pass_456"))[0] == 200


def test_console_sessions_reuse_the_login_and_a_logout_is_in_force_at_the_next_request(client):
    answer = client.post("/console/login", data={"username": "admin", "password": ADMIN_PASSWORD})
    assert answer.status_code == 200
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', answer.text)
    assert csrf
    copied = {"Cookie": f"{COOKIE}={client.cookies[COOKIE]}"}
    assert user_reads(client, copied) == (200, 0)  # the login read at login, reused
    client.post("/console/logout", data={"csrf": csrf.group(1)})
    assert user_reads(client, copied) == (401, 1)
