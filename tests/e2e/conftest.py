"""Browser end-to-end fixtures: Debian's Chromium driven by Playwright, against real servers.

The servers come from the shared launcher (tests/support/server_process.py): ``chatbot serve``
as a real process with its own HOME, serving the built UI from ui/dist. Playwright's bundled
driver is used, never its browser download (which cannot work here): the browser is
/usr/bin/chromium (``make browser`` installs it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.support.fake_openai import FakeOpenAI
from tests.support.server_process import REPO, ServerProcess, StartServer

CHROMIUM = Path(os.environ.get("CHATBOT_E2E_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
UI_DIST = REPO / "ui" / "dist"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Pace of the offline model's tokens: slow enough that a reply takes a few hundred ms and is
# seen growing, fast enough that the suite stays quick.
OFFLINE_PACE_MS = "25"


@pytest.fixture(scope="session")
def built_ui() -> Path:
    index = UI_DIST / "index.html"
    if not index.is_file():
        pytest.fail(f"{index} is missing: build the UI first (make ui, or cd ui && npm run build)")
    return UI_DIST


# Module scope, not session: Playwright's sync API keeps an event loop running in this thread
# while it is open, which would break every pytest-asyncio test collected after tests/e2e.
@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: run 'make browser' (Debian's chromium package)")
    browser = playwright_driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()


@dataclass
class PageProblems:
    """JavaScript errors and dialogs seen by a page; a test that expects none checks this."""

    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@pytest.fixture
def context(browser: Browser, built_ui: Path) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport=DESKTOP, reduced_motion="reduce")
    ctx.set_default_timeout(20_000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def page(context: BrowserContext, problems: PageProblems) -> Iterator[Page]:
    page = context.new_page()
    page.on("pageerror", lambda error: problems.errors.append(str(error)))

    def on_dialog(dialog) -> None:
        problems.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    yield page
    assert problems.errors == [], f"JavaScript errors in the page: {problems.errors}"
    # The UI never uses alert/confirm/prompt: any dialog is a bug (or injected script).
    assert problems.dialogs == [], f"dialogs opened: {problems.dialogs}"


# The offline model at a visible pace.
OFFLINE_ENV = {
    "CHATBOT_OFFLINE_PACE_MS": OFFLINE_PACE_MS,
    "CHATBOT_CANNED_PACE_MS": OFFLINE_PACE_MS,
}


@pytest.fixture
def e2e_offline_server(serve: StartServer, built_ui: Path) -> ServerProcess:
    """``chatbot serve`` with the embedded offline model at a visible pace (no Burr UI)."""
    return serve(**OFFLINE_ENV)


@pytest.fixture
def e2e_burr_server(serve: StartServer, built_ui: Path) -> ServerProcess:
    """As ``e2e_offline_server``, with Burr's tracking UI mounted under /burr."""
    return serve(**OFFLINE_ENV, CHATBOT_BURR_UI_ENABLED="true")


API_KEY = "e2e-secret-key"


@pytest.fixture
def e2e_auth_server(serve: StartServer, built_ui: Path) -> ServerProcess:
    """``chatbot serve`` (offline model) that wants ``Authorization: Bearer <API_KEY>``."""
    return serve(**OFFLINE_ENV, CHATBOT_API_KEY=API_KEY, CHATBOT_BURR_UI_ENABLED="true")


@pytest.fixture
def e2e_upstream_server(
    fake_openai: FakeOpenAI, serve: StartServer, built_ui: Path
) -> ServerProcess:
    """``chatbot serve`` proxying the scriptable fake OpenAI-compatible upstream."""
    return serve(upstream=fake_openai)


def save_screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
