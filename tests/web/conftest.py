"""Headless Chromium for the tests that look at pages as a person would.

Debian's `chromium` (installed by `make test` through deploy/sysdeps.sh --test), driven by
Playwright through its executable path: no browser is downloaded at run time. Every request
that leaves loopback is refused, so a page that needs the internet fails here as it would
offline.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

LOOPBACK = {"127.0.0.1", "localhost", "[::1]"}


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "Debian chromium is missing: run `make testdeps` (deploy/sysdeps.sh --test)"
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


class OfflinePage:
    """A page that records what it could not load and every Content-Security-Policy refusal."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.left_loopback: list[str] = []
        self.failed: list[str] = []
        self.console_errors: list[str] = []
        page.route("**/*", self._only_loopback)
        page.on("requestfailed", lambda request: self.failed.append(request.url))
        page.on("console", lambda message: message.type == "error" and self.console_errors.append(message.text))

    def _only_loopback(self, route) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:")) or host in LOOPBACK:
            route.continue_()
        else:
            self.left_loopback.append(route.request.url)
            route.abort("internetdisconnected")


@pytest.fixture()
def offline_page(browser) -> Iterator[OfflinePage]:
    context = browser.new_context()
    page = context.new_page()
    yield OfflinePage(page)
    context.close()
