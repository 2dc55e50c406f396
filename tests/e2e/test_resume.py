"""The chat UI and replies that outlive the page: a reload mid-reply, and a tab closed mid-reply.

The server proxies the scriptable fake upstream, whose gate holds a reply mid-way for as long
as the test needs; nothing here waits on a clock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.chat_page import RECORD_STREAMING_TEXTS, ChatPage
from tests.support.fake_openai import FakeOpenAI, Script
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.e2e

TOKENS = ["Partial ", "reply ", "so far", " and ", "the ", "rest."]
SO_FAR = "Partial reply so far"
WHOLE = "".join(TOKENS)


@pytest.fixture
def chat(page: Page, e2e_upstream_server: ServerProcess) -> ChatPage:
    return ChatPage(page, e2e_upstream_server.base_url).open()


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # never leave the fake upstream waiting


def stored(server: ServerProcess, app_id: str) -> list[dict]:
    return httpx.get(f"{server.api}/history/demo_streaming_chatbot/{app_id}", timeout=30).json()


def test_a_reload_mid_reply_shows_the_reply_still_growing_with_nothing_doubled(
    chat: ChatPage,
    page: Page,
    fake_openai: FakeOpenAI,
    gate: threading.Event,
    e2e_upstream_server: ServerProcess,
) -> None:
    chat.ask("Is this the first turn?")
    fake_openai.on_stream(Script(tokens=TOKENS, gate_after=3, gate=gate))
    reply = chat.send("What is a long answer?")
    expect(reply.get_by_test_id("assistant-text")).to_have_text(SO_FAR)

    requests: list[str] = []
    page.on("request", lambda r: requests.append(f"{r.method} {r.url.removeprefix(chat.base_url)}"))
    page.reload()
    page.evaluate(RECORD_STREAMING_TEXTS)
    # The history, then the running turn: its prompt and the reply so far, still streaming.
    expect(chat.user_messages).to_have_text(["Is this the first turn?", "What is a long answer?"])
    expect(chat.replies).to_have_count(2)
    reply = chat.replies.nth(1)
    expect(reply).to_have_attribute("data-status", "streaming")
    expect(reply.get_by_test_id("assistant-text")).to_have_text(SO_FAR)
    expect(chat.stop_button).to_be_visible()

    # Reattached with the AI SDK's own resume request, not the Burr-UI frames' route.
    assert f"GET /api/chat/{chat.app_id}/stream" in requests, requests
    assert not [r for r in requests if "/streaming_chatbot/stream/" in r], requests

    gate.set()
    chat.wait_done(reply)
    expect(reply.get_by_test_id("assistant-text")).to_have_text(WHOLE)
    # Every text the reply showed while it streamed was a beginning of the reply: the replay
    # from its start was not appended to what the page had, nothing was doubled or skipped.
    seen = chat.streamed_texts()
    assert seen and all(WHOLE.startswith(text) for text in seen), seen
    expect(chat.replies).to_have_count(2)
    expect(chat.user_messages).to_have_count(2)
    assert stored(e2e_upstream_server, chat.app_id)[-1]["content"] == WHOLE
    # One upstream call for the reply, never cancelled: the reload did not stop or restart it.
    assert len(fake_openai.streamed_requests()) == 2
    assert fake_openai.streams_cancelled == 0
    expect(chat.input).to_be_enabled()


def test_stop_after_a_reload_keeps_the_partial_reply(
    chat: ChatPage,
    page: Page,
    fake_openai: FakeOpenAI,
    gate: threading.Event,
    e2e_upstream_server: ServerProcess,
) -> None:
    fake_openai.on_stream(Script(tokens=TOKENS, gate_after=3, gate=gate))
    reply = chat.send("What is a long answer?")
    expect(reply.get_by_test_id("assistant-text")).to_have_text(SO_FAR)
    page.reload()
    reply = chat.replies.first
    expect(reply.get_by_test_id("assistant-text")).to_have_text(SO_FAR)

    chat.stop_button.click()
    chat.wait_done(reply, "stopped")
    expect(reply.get_by_test_id("assistant-text")).to_have_text(SO_FAR)
    expect(chat.input).to_be_enabled()
    assert fake_openai.wait_for(lambda: fake_openai.streams_cancelled == 1)
    assert stored(e2e_upstream_server, chat.app_id)[-1] == {
        "role": "assistant",
        "content": SO_FAR,
        "type": "text",
        "interrupted": True,
    }
    page.reload()
    expect(chat.replies.first.get_by_test_id("assistant-text")).to_have_text(SO_FAR)
    expect(chat.replies.first.get_by_test_id("interrupted")).to_be_visible()


def test_a_reply_that_finished_while_the_tab_was_closed_is_there_when_it_opens(
    chat: ChatPage,
    page: Page,
    fake_openai: FakeOpenAI,
    gate: threading.Event,
    e2e_upstream_server: ServerProcess,
) -> None:
    fake_openai.on_stream(Script(tokens=TOKENS, gate_after=3, gate=gate))
    reply = chat.send("What is a long answer?")
    expect(reply.get_by_test_id("assistant-text")).to_have_text(SO_FAR)
    app_id = chat.app_id
    page.close()

    gate.set()
    assert fake_openai.wait_for(lambda: len(stored(e2e_upstream_server, app_id)) == 2)
    later = ChatPage(page.context.new_page(), e2e_upstream_server.base_url).open(f"/c/{app_id}")
    expect(later.replies).to_have_count(1)
    later.wait_done(later.replies.first)
    expect(later.replies.first.get_by_test_id("assistant-text")).to_have_text(WHOLE)
    expect(later.user_messages).to_have_text(["What is a long answer?"])
