"""Auto-scroll: the transcript follows a growing reply, unless the reader scrolled up."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.chat_page import ChatPage
from tests.support.fake_openai import FakeOpenAI, Script
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.e2e

LINES = [f"Line {i} of a long reply.\n\n" for i in range(60)]
DISTANCE_FROM_BOTTOM = "el => el.scrollHeight - el.scrollTop - el.clientHeight"


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def chat(page: Page, e2e_upstream_server: ServerProcess) -> ChatPage:
    page.set_viewport_size({"width": 1000, "height": 600})
    return ChatPage(page, e2e_upstream_server.base_url).open()


def test_follows_the_reply_until_the_reader_scrolls_up(
    chat: ChatPage, page: Page, fake_openai: FakeOpenAI, gate: threading.Event
) -> None:
    fake_openai.on_stream(Script(tokens=LINES, gate_after=30, gate=gate, token_delay=0))
    reply = chat.send("What is a long reply?")
    text = reply.get_by_test_id("assistant-text")
    expect(text).to_contain_text("Line 29 of a long reply.")
    transcript = page.get_by_test_id("transcript")
    # The reply overflows the window, and the view followed it to the bottom.
    assert transcript.evaluate("el => el.scrollHeight > el.clientHeight * 1.5")
    assert transcript.evaluate(DISTANCE_FROM_BOTTOM) < 64

    # The reader scrolls up; more text arrives; the view stays where the reader put it.
    transcript.hover()
    page.mouse.wheel(0, -100_000)
    expect(page.get_by_role("button", name="Scroll to the latest message")).to_be_visible()
    top = transcript.evaluate("el => el.scrollTop")
    gate.set()
    chat.wait_done(reply)
    expect(text).to_contain_text("Line 59 of a long reply.")
    assert transcript.evaluate("el => el.scrollTop") == top

    # "Jump to latest" goes back to the bottom, and the next reply is followed again.
    page.get_by_role("button", name="Scroll to the latest message").click()
    assert transcript.evaluate(DISTANCE_FROM_BOTTOM) < 64
    fake_openai.on_stream(Script(tokens=LINES[:40], token_delay=0))
    chat.ask("And another?")
    assert transcript.evaluate(DISTANCE_FROM_BOTTOM) < 64
