"""/docs and /redoc work without internet: every asset comes from obfleet, the pages name no
http(s) URL, and in a browser that may reach nothing but obfleet Swagger UI shows the API and
"Try it out" calls it with HTTP Basic credentials."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD
from tests.server import ServerProcess
from tests.support.browser import OfflineBrowser

pytestmark = pytest.mark.browser

URL = re.compile(r"https?://", re.IGNORECASE)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir: Path = tmp_path_factory.mktemp("docs") / "data"
    with ServerProcess(data_dir, env={"OBFLEET_ADMIN_PASSWORD": ADMIN_PASSWORD}) as server:
        yield server


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_doc_pages_name_no_outside_url(server: ServerProcess, path: str) -> None:
    page = httpx.get(server.url + path, trust_env=False)
    assert page.status_code == 200
    assert not URL.search(page.text), page.text
    assert '<link rel="shortcut icon" href="/static/' in page.text


def test_swagger_ui_shows_the_operations_offline(
    server: ServerProcess, offline_browser: OfflineBrowser
) -> None:
    page = offline_browser.page()
    page.goto(server.url + "/docs")
    page.locator(".opblock").first.wait_for()
    assert page.locator(".opblock").count() > 20
    assert page.get_by_text("Query server time").count() == 1
    offline_browser.shot(page, "docs-swagger", full_page=False)
    assert offline_browser.blocked == []


def test_try_it_out_sends_basic_credentials(
    server: ServerProcess, offline_browser: OfflineBrowser
) -> None:
    page = offline_browser.page()
    page.goto(server.url + "/docs")
    page.locator(".btn.authorize").first.click()
    # The Basic scheme's form (the AK/SK scheme has one of its own beside it).
    modal = page.locator(".modal-ux form").filter(has_text="basicAuth")
    modal.locator("input[type=text]").first.fill("admin")
    modal.locator("input[type=password]").first.fill(ADMIN_PASSWORD)
    modal.locator("button.modal-btn.authorize").click()
    modal = page.locator(".modal-ux")
    modal.locator("button.btn-done").first.click()

    path = page.locator(".opblock-summary-path[data-path='/api/v2/compute/hosts']")
    operation = page.locator(".opblock-get").filter(has=path)
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip() == "200"
    status.scroll_into_view_if_needed()
    offline_browser.shot(page, "docs-try-it-out", full_page=False)
    assert offline_browser.blocked == []


def test_redoc_shows_the_operations_offline(
    server: ServerProcess, offline_browser: OfflineBrowser
) -> None:
    page = offline_browser.page()
    page.goto(server.url + "/redoc")
    page.get_by_role("heading", name="Query server time").wait_for()
    offline_browser.shot(page, "docs-redoc", full_page=False)
    assert offline_browser.blocked == []
