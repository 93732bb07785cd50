"""pytest fixtures for a real browser: Debian's chromium driven by Playwright, offline.

Playwright's own browser download needs the internet; the system chromium (apt, installed by
scripts/system-deps.sh) is launched through its executable path instead. One browser serves the
whole session; each test gets a fresh context (no cookies shared) in which every request to an
address other than the allowed loopback/lab ones is aborted and remembered, so a test can show
that a page needs nothing from outside.

* `chromium` (session): the launched browser.
* `offline_browser` (function): `OfflineBrowser` with `.page(*allowed_hosts)`, `.blocked` (the
  URLs refused) and `.shot(page, name)`, which saves a screenshot into ./screenshots/.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Route, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "screenshots"
# Long enough for a page to render on a busy 2-core machine; a wait that fails is a failure.
TIMEOUT_MS = 20_000

__all__ = ["OfflineBrowser", "chromium", "offline_browser"]


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        pytest.fail("chromium is not installed: run scripts/system-deps.sh (apt-get)")
    playwright: Playwright = sync_playwright().start()
    try:
        # --no-sandbox: the suite runs as root, where chromium's sandbox refuses to start.
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")),
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        yield browser
        browser.close()
    finally:
        playwright.stop()


class OfflineBrowser:
    """Pages in one browser context that reach only the hosts they are given."""

    def __init__(self, browser: Browser) -> None:
        self._browser = browser
        self._contexts: list[BrowserContext] = []
        self.blocked: list[str] = []

    def page(self, *allowed_hosts: str) -> Page:
        """A new page (own cookies) that may reach 127.0.0.1 and `allowed_hosts` only."""
        allowed = {"127.0.0.1", *allowed_hosts}
        context = self._browser.new_context(viewport={"width": 1440, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        self._contexts.append(context)

        def guard(route: Route) -> None:
            url = route.request.url
            if urlsplit(url).scheme in ("data", "blob") or urlsplit(url).hostname in allowed:
                route.continue_()
            else:
                self.blocked.append(url)
                route.abort("blockedbyclient")

        context.route("**/*", guard)
        return context.new_page()

    @staticmethod
    def shot(page: Page, name: str, *, full_page: bool = True) -> Path:
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    def close(self) -> None:
        for context in self._contexts:
            context.close()


@pytest.fixture
def offline_browser(chromium: Browser) -> Iterator[OfflineBrowser]:
    browser = OfflineBrowser(chromium)
    yield browser
    browser.close()
