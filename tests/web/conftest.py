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
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

LOOPBACK = {"127.0.0.1", "localhost", "[::1]"}


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "Debian chromium is missing: run `make testdeps` (deploy/sysdeps.sh --test)"
    return path


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    # one driver for the session: a second sync_playwright() inside the first one's loop is refused
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright) -> Iterator[Browser]:
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


#: the fake microphone: Chromium plays this file (looped) as the capture device, and accepts
#: the permission prompt itself
FAKE_MIC_ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                 "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="session")
def fake_mic_wav(tmp_path_factory) -> str:
    """The repo's voice sample as the WAV Chromium's fake capture device reads (it wants PCM)."""
    import subprocess

    from tests.conftest import SAMPLE

    wav = tmp_path_factory.mktemp("fake-mic") / "voice.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(SAMPLE), "-ac", "1", "-ar", "48000",
                    "-c:a", "pcm_s16le", str(wav)], check=True, timeout=120)
    return str(wav)


@pytest.fixture(scope="session")
def mic_browser(playwright, fake_mic_wav) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=chromium_path(), headless=True,
        args=["--no-sandbox", "--disable-dev-shm-usage", *FAKE_MIC_ARGS,
              f"--use-file-for-fake-audio-capture={fake_mic_wav}"])
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory):
    """Where every screen's picture goes, for people to look at: under this run's output folder."""
    folder = tmp_path_factory.getbasetemp() / "screenshots"
    folder.mkdir(exist_ok=True)
    return folder
