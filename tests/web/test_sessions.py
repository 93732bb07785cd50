"""The console's session in process: the cookie's flags, the CSRF token every change through the
API needs, expiry, forgery, logout, where a login may lead, and what /openapi.json leaves out."""

from __future__ import annotations

import re
import time

import pytest
from fastapi.testclient import TestClient

from obfleet.api.sessions import COOKIE, CSRF_HEADER, ConsoleSession, new_session
from tests.conftest import ADMIN_PASSWORD

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
    expired = ConsoleSession("admin", "token", time.time() - 1).seal(box)
    for value in ("forged", expired, new_session("admin").seal(box)[:-4] + "AAAA"):
        client.cookies.set(COOKIE, value)
        assert client.get("/api/v2/compute/hosts").status_code == 401
        page = client.get("/console/clusters", follow_redirects=False)
        assert page.status_code == 303
        assert page.headers["location"].startswith("/console/login?next=")


def test_a_session_of_a_user_that_is_gone_is_no_login(client: TestClient) -> None:
    client.cookies.set(COOKIE, new_session("nobody").seal(client.app.state.ctx.secrets))
    assert client.get("/api/v2/compute/hosts").status_code == 401


def test_logout_needs_the_pages_token(client: TestClient) -> None:
    csrf = login(client)
    client.post("/console/logout", data={"csrf": "wrong"}, follow_redirects=False)
    assert client.get("/console/hosts", follow_redirects=False).status_code == 200
    answer = client.post("/console/logout", data={"csrf": csrf}, follow_redirects=False)
    assert answer.headers["location"] == "/console/login"
    assert f'{COOKIE}=""' in answer.headers["set-cookie"]


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
