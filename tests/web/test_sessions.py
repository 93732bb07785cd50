"""The console's session in process: the cookie's flags, the CSRF token every change through the
API needs, expiry, forgery, logout, where a login may lead, and what /openapi.json leaves out."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from obfleet.api.sessions import COOKIE, CSRF_HEADER, ConsoleSession, new_session
from obfleet.services import users
from obfleet.store.migrate import upgrade
from obfleet.timefmt import utcnow
from tests.conftest import ADMIN_PASSWORD, LOOPBACK
from tests.dbfixtures import migrated_to

CREDENTIAL = {
    "name": "k1",
    "targetType": "HOST",
    "authType": "PASSWORD",
    "username": "root",
    "password": "Some_pass_1",
}


def login(client: TestClient, next_page: str = "/console/tasks") -> str:
    """Log in as admin; the page's CSRF token."""
    answer = client.post(
        "/console/login",
        data={"username": "admin", "password": ADMIN_PASSWORD, "next": next_page},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    page = client.get("/console/hosts")
    found = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert found
    return found.group(1)


def test_the_session_cookie_is_httponly_and_samesite(client: TestClient) -> None:
    answer = client.post(
        "/console/login",
        data={"username": "admin", "password": ADMIN_PASSWORD},
        follow_redirects=False,
    )
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=" in cookie
    assert ADMIN_PASSWORD not in cookie and "admin" not in cookie.split(";")[0]


def test_a_wrong_password_shows_the_apis_message(client: TestClient) -> None:
    answer = client.post("/console/login", data={"username": "admin", "password": "nope"})
    assert answer.status_code == 401
    assert "The username or password you entered is invalid" in answer.text
    assert COOKIE not in answer.headers.get("set-cookie", "")


def test_writes_with_the_cookie_need_the_csrf_token(client: TestClient) -> None:
    csrf = login(client)
    refused = client.post("/api/v2/credentials", json=CREDENTIAL)
    assert refused.status_code == 401
    assert CSRF_HEADER in refused.json()["error"]["message"]
    wrong = client.post("/api/v2/credentials", json=CREDENTIAL, headers={CSRF_HEADER: "x" + csrf})
    assert wrong.status_code == 401
    assert client.get("/api/v2/credentials").json()["data"]["contents"] == []
    done = client.post("/api/v2/credentials", json=CREDENTIAL, headers={CSRF_HEADER: csrf})
    assert done.status_code == 200, done.text


def test_reads_with_the_cookie_need_no_token(client: TestClient) -> None:
    login(client)
    assert client.get("/api/v2/compute/hosts").status_code == 200


def test_a_forged_or_expired_cookie_is_no_login(client: TestClient) -> None:
    box = client.app.state.ctx.secrets
    expired = ConsoleSession("admin", 1, 0, "token", time.time() - 1).seal(box)
    # As obfleet sealed it before sessions had epochs: refused, its user logs in again.
    unversioned = box.encrypt(json.dumps({"u": "admin", "c": "t", "e": time.time() + 60}))
    garbled = new_session("admin", 1, 0).seal(box)[:-4] + "AAAA"
    for value in ("forged", expired, unversioned, garbled):
        client.cookies.set(COOKIE, value)
        assert client.get("/api/v2/compute/hosts").status_code == 401
        page = client.get("/console/clusters", follow_redirects=False)
        assert page.status_code == 303
        assert page.headers["location"].startswith("/console/login?next=")


def test_a_session_of_a_user_that_is_gone_is_no_login(client: TestClient) -> None:
    client.cookies.set(COOKIE, new_session("nobody", 1, 0).seal(client.app.state.ctx.secrets))
    assert client.get("/api/v2/compute/hosts").status_code == 401


def test_logout_needs_the_pages_token(client: TestClient) -> None:
    csrf = login(client)
    client.post("/console/logout", data={"csrf": "wrong"}, follow_redirects=False)
    assert client.get("/console/hosts", follow_redirects=False).status_code == 200
    answer = client.post("/console/logout", data={"csrf": csrf}, follow_redirects=False)
    assert answer.headers["location"] == "/console/login"
    assert f'{COOKIE}=""' in answer.headers["set-cookie"]


def session_cookie(client: TestClient) -> str:
    return client.cookies[COOKIE]


def replaying(client: TestClient, cookie: str) -> TestClient:
    """Another client of the same app, sending a copy of a session cookie."""
    replay = TestClient(client.app, raise_server_exceptions=False, client=LOOPBACK)
    replay.cookies.set(COOKIE, cookie)
    return replay


def refused(client: TestClient, cookie: str) -> bool:
    """Whether the API and the console both refuse `cookie` (replayed from elsewhere): the API
    answers 401, a page sends the browser to the login page, which shows the login form."""
    replay = replaying(client, cookie)
    api = replay.get("/api/v2/compute/hosts").status_code
    page = replay.get("/console/hosts", follow_redirects=False)
    is_login = page.status_code == 303 and page.headers["location"].startswith("/console/login")
    assert (api == 401) == is_login, (api, page.status_code)
    if is_login:  # the login form itself, not a redirect back to the page (a loop)
        login_page = replay.get(page.headers["location"], follow_redirects=False)
        assert login_page.status_code == 200 and 'name="password"' in login_page.text
        assert "Your session has ended" in login_page.text
    return is_login


def test_a_copied_cookie_is_refused_after_logout(client: TestClient) -> None:
    csrf = login(client)
    copied = session_cookie(client)
    assert not refused(client, copied)
    client.post("/console/logout", data={"csrf": csrf}, follow_redirects=False)
    assert refused(client, copied)
    # A write with the copy and its CSRF token is refused as well.
    write = replaying(client, copied).post(
        "/api/v2/credentials", json=CREDENTIAL, headers={CSRF_HEADER: csrf}
    )
    assert write.status_code == 401
    # Logging in again makes a session that holds.
    login(client)
    assert not refused(client, session_cookie(client))
    assert refused(client, copied)


def test_logout_ends_the_users_other_console_sessions(client: TestClient) -> None:
    other = TestClient(client.app, raise_server_exceptions=False, client=LOOPBACK)
    login(other)
    csrf = login(client)
    client.post("/console/logout", data={"csrf": csrf}, follow_redirects=False)
    assert refused(client, session_cookie(other))


def test_logout_with_an_ended_session_ends_no_newer_one(client: TestClient) -> None:
    csrf = login(client)
    copied = session_cookie(client)
    client.post("/console/logout", data={"csrf": csrf}, follow_redirects=False)
    login(client)
    # The ended session's holder posts logout: the session made since stays.
    replaying(client, copied).post("/console/logout", data={"csrf": csrf}, follow_redirects=False)
    assert not refused(client, session_cookie(client))


def _in_metadb(client: TestClient, change: Callable[[Session], object]) -> None:
    with client.app.state.ctx.db.transaction() as session:
        change(session)


def test_a_new_password_ends_the_users_console_sessions(client: TestClient) -> None:
    login(client)
    copied = session_cookie(client)
    _in_metadb(client, lambda s: users.set_password(s, "admin", "Admin_Pass_34"))
    assert refused(client, copied)


def logged_in_new_user(client: TestClient) -> str:
    """The session cookie of a new user ops1, logged in."""
    _in_metadb(client, lambda s: users.create_user(s, "ops1", "Ops1_Pass_12", ["ADMIN"]))
    client.post("/console/login", data={"username": "ops1", "password": "Ops1_Pass_12"})
    return session_cookie(client)


def test_a_disabled_users_sessions_stay_ended_when_it_is_enabled_again(
    client: TestClient,
) -> None:
    copied = logged_in_new_user(client)
    assert not refused(client, copied)
    _in_metadb(client, lambda s: users.disable_user(s, "ops1"))
    assert refused(client, copied)
    _in_metadb(client, lambda s: users.enable_user(s, "ops1"))
    assert refused(client, copied)


def test_a_deleted_users_sessions_do_not_hold_for_a_new_user_of_that_name(
    client: TestClient,
) -> None:
    copied = logged_in_new_user(client)
    _in_metadb(client, lambda s: users.delete_user(s, "ops1"))
    _in_metadb(client, lambda s: users.create_user(s, "ops1", "Ops1_Pass_56", ["ADMIN"]))
    assert refused(client, copied)


def test_users_of_an_older_metadb_start_at_session_epoch_zero(database_url: str) -> None:
    db = migrated_to(database_url, "0011")
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO iam_user (username, password_hash, enabled, create_time, "
                "update_time) VALUES ('ops', 'h', :on, :now, :now)"
            ),
            {"on": True, "now": utcnow()},
        )
    upgrade(db)
    with db.session() as session:
        assert users.get_user(session, "ops").session_epoch == 0
    db.dispose()


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/", "/console/\\evil", "/api/v2/time"]
)
def test_a_login_leads_only_to_a_console_page(client: TestClient, target: str) -> None:
    answer = client.post(
        "/console/login",
        data={"username": "admin", "password": ADMIN_PASSWORD, "next": target},
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/console/clusters"


def test_the_root_leads_a_browser_to_the_console(client: TestClient) -> None:
    answer = client.get("/", follow_redirects=True)
    assert answer.url.path == "/console/login"


def test_console_pages_refuse_framing_and_outside_scripts(client: TestClient) -> None:
    login(client)
    page = client.get("/console/clusters")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert not re.search(r"(src|href)=\"https?://", page.text)


def test_the_console_is_not_in_the_api_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith(("/console", "/docs", "/redoc", "/static"))]
    assert "/" not in paths
