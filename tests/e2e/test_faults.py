"""The chat UI when things go wrong: stopping a reply, a failing upstream, a busy conversation.

The server proxies the scriptable fake OpenAI-compatible upstream (tests/support/fake_openai.py),
so the test decides exactly when tokens arrive and what fails; nothing here waits on a clock.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from chatbot.settings import Settings
from tests.e2e.chat_page import ChatPage
from tests.e2e.conftest import save_screenshot
from tests.support.fake_openai import FakeOpenAI, Script
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.e2e


@pytest.fixture
def chat(page: Page, e2e_upstream_server: ServerProcess) -> ChatPage:
    return ChatPage(page, e2e_upstream_server.base_url).open()


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # never leave the fake upstream waiting


def held_stream(gate: threading.Event) -> Script:
    """Three tokens, then the upstream holds the stream until the gate opens."""
    return Script(tokens=["Partial ", "reply ", "so far", " and the rest"], gate_after=3, gate=gate)


def test_stop_keeps_the_partial_reply_and_the_input_works_again(
    chat: ChatPage,
    page: Page,
    fake_openai: FakeOpenAI,
    gate: threading.Event,
    e2e_upstream_server: ServerProcess,
) -> None:
    fake_openai.on_stream(held_stream(gate))
    stops: list[str] = []
    page.on("request", lambda r: "/stop/" in r.url and stops.append(f"{r.method} {r.url}"))
    reply = chat.send("What is a long answer?")
    text = reply.get_by_test_id("assistant-text")
    expect(text).to_have_text("Partial reply so far")
    expect(reply).to_have_attribute("data-status", "streaming")

    chat.stop_button.click()
    chat.wait_done(reply, "stopped")
    expect(text).to_have_text("Partial reply so far")
    expect(reply.get_by_test_id("interrupted")).to_have_text("stopped")
    expect(chat.input).to_be_enabled()
    expect(chat.input).to_be_focused()
    expect(chat.send_button).to_be_visible()
    # Stopped through the server's stop route: the reply ended there, the upstream call was
    # cancelled and the partial reply is stored, marked interrupted.
    assert stops == [f"POST {e2e_upstream_server.api}/stop/demo_streaming_chatbot/{chat.app_id}"]
    assert fake_openai.wait_for(lambda: fake_openai.streams_cancelled == 1)
    history = httpx.get(
        f"{e2e_upstream_server.api}/history/demo_streaming_chatbot/{chat.app_id}", timeout=30
    ).json()
    assert history[-1] == {
        "role": "assistant",
        "content": "Partial reply so far",
        "type": "text",
        "interrupted": True,
    }

    # The next prompt works (the fake's default reply).
    chat.ask("And a short one?")
    expect(chat.replies.nth(1).get_by_test_id("assistant-text")).to_have_text(
        "Hello from the fake upstream."
    )

    # The server kept the partial reply, marked interrupted, in the history.
    page.reload()
    expect(chat.replies).to_have_count(2)
    expect(chat.replies.first.get_by_test_id("assistant-text")).to_have_text("Partial reply so far")
    expect(chat.replies.first.get_by_test_id("interrupted")).to_be_visible()


def test_a_stop_before_the_turn_began_stops_it_once_it_does(
    chat: ChatPage,
    page: Page,
    fake_openai: FakeOpenAI,
    gate: threading.Event,
    e2e_upstream_server: ServerProcess,
) -> None:
    """Stop pressed while the prompt's request has not reached the server: the stop route has
    nothing to stop yet (409), so the UI sends it again when the stream's start arrives, and
    the reply ends on the server instead of running on without a reader."""
    chat.ask("First, a short one")  # the conversation exists: the stop route answers 409
    fake_openai.on_stream(held_stream(gate))
    held: list[Route] = []
    page.route("**/api/chat", lambda route: held.append(route))  # the prompt waits here
    stops: list[int] = []
    page.on("response", lambda r: "/stop/" in r.url and stops.append(r.status))
    reply = chat.send("Stop this before it starts")
    expect(reply).to_have_attribute("data-status", "streaming")
    with page.expect_response(lambda r: "/stop/" in r.url) as first_stop:
        chat.stop_button.click()
    assert first_stop.value.status == 409
    assert len(held) == 1
    held[0].continue_()

    chat.wait_done(reply, "stopped")
    assert stops == [409, 200]
    expect(chat.input).to_be_enabled()
    # Nothing is being written any more: the server ended the reply (the upstream is still
    # held at its gate, so a reply left running would still be there).
    assert (
        httpx.get(
            f"{e2e_upstream_server.base_url}/api/chat/{chat.app_id}/stream", timeout=30
        ).status_code
        == 204
    )
    history = httpx.get(
        f"{e2e_upstream_server.api}/history/demo_streaming_chatbot/{chat.app_id}", timeout=30
    ).json()
    assert history[2] == {"role": "user", "content": "Stop this before it starts", "type": "text"}
    assert all(item.get("interrupted") for item in history[3:]), history


def test_escape_stops_a_reply(
    chat: ChatPage, fake_openai: FakeOpenAI, gate: threading.Event
) -> None:
    fake_openai.on_stream(held_stream(gate))
    reply = chat.send("What is Escape for?")
    expect(reply.get_by_test_id("assistant-text")).to_have_text("Partial reply so far")
    chat.page.keyboard.press("Escape")
    chat.wait_done(reply, "stopped")
    expect(chat.input).to_be_enabled()


def test_an_upstream_error_is_shown_inline_and_retry_recovers(
    chat: ChatPage, page: Page, fake_openai: FakeOpenAI
) -> None:
    # The server retries a reply that failed before its first text: fail every attempt.
    attempts = 1 + Settings.model_fields["upstream_max_retries"].default
    exploded = Script(status=500, error_message="the fake upstream exploded")
    fake_openai.on_stream(*[exploded] * attempts)
    reply = chat.send("What happens on failure?")
    chat.wait_done(reply, "failed")
    error = reply.get_by_test_id("turn-error")
    expect(error).to_be_visible()
    expect(error).to_have_attribute("role", "alert")
    # The server's error frame: its message is on screen, not swallowed.
    message = error.locator("p").inner_text()
    assert message.strip(), "the error frame's message is not shown"
    expect(chat.input).to_be_enabled()
    save_screenshot(page, "05-error")

    # Retry sends the same prompt again; this time the upstream answers. The server stored the
    # failed turn, so the transcript keeps it (as the server has it) above the new one.
    error.get_by_role("button", name="Retry").click()
    expect(chat.replies).to_have_count(2)
    chat.wait_done(chat.replies.nth(1))
    expect(chat.replies.nth(1).get_by_test_id("assistant-text")).to_have_text(
        "Hello from the fake upstream."
    )
    expect(chat.user_messages).to_have_text(
        ["What happens on failure?", "What happens on failure?"]
    )
    expect(chat.replies.first.get_by_test_id("stored-error")).to_contain_text(message.strip())
    expect(chat.page.get_by_role("button", name="Retry")).to_have_count(0)


def test_a_stream_cut_mid_reply_keeps_the_text_and_shows_an_error(
    chat: ChatPage, fake_openai: FakeOpenAI
) -> None:
    fake_openai.on_stream(Script(tokens=["Half ", "a ", "reply", " never"], cut_after=3))
    reply = chat.send("What if the upstream drops?")
    chat.wait_done(reply, "failed")
    expect(reply.get_by_test_id("assistant-text")).to_contain_text("Half a reply")
    expect(reply.get_by_test_id("turn-error")).to_be_visible()
    expect(reply.get_by_role("button", name="Retry")).to_be_visible()


def test_a_busy_conversation_shows_the_servers_http_error(
    chat: ChatPage,
    page: Page,
    fake_openai: FakeOpenAI,
    gate: threading.Event,
    e2e_upstream_server: ServerProcess,
) -> None:
    chat.ask("Is anyone here?")
    # A second tab has the conversation open (a tab that opens it while a reply is written
    # shows that reply, and waits for it; this one opened before).
    other = page.context.new_page()
    second = ChatPage(other, e2e_upstream_server.base_url).open(f"/c/{chat.app_id}")
    expect(second.replies).to_have_count(1)
    fake_openai.on_stream(held_stream(gate))
    reply = chat.send("What is busy?")
    expect(reply.get_by_test_id("assistant-text")).to_have_text("Partial reply so far")
    # The second tab sends to the same conversation while the first reply still streams.
    failed = second.send("Me too?")
    second.wait_done(failed, "failed")
    error = failed.get_by_test_id("turn-error")
    expect(error).to_contain_text("HTTP 409")
    expect(error).to_have_attribute("data-code", "conversation_busy")
    gate.set()
    chat.wait_done(reply)
    # Once the first reply is done, Retry in the second tab goes through.
    error.get_by_role("button", name="Retry").click()
    second.wait_done(second.replies.last)
    expect(second.user_messages).to_have_text(["Is anyone here?", "What is busy?", "Me too?"])
    other.close()


def test_a_lost_server_shows_network_errors_inline(
    chat: ChatPage,
    fake_openai: FakeOpenAI,
    gate: threading.Event,
    e2e_upstream_server: ServerProcess,
) -> None:
    fake_openai.on_stream(held_stream(gate))
    reply = chat.send("What if the server dies?")
    expect(reply.get_by_test_id("assistant-text")).to_have_text("Partial reply so far")
    e2e_upstream_server.kill()

    # Mid-reply: the text so far stays, the failure says the connection was lost.
    chat.wait_done(reply, "failed")
    expect(reply.get_by_test_id("assistant-text")).to_have_text("Partial reply so far")
    expect(reply.get_by_test_id("turn-error")).to_have_attribute(
        "data-code", re.compile(r"^(stream_incomplete|network_error)$")
    )
    expect(chat.input).to_be_enabled()

    # A new prompt with no server at all: the fetch itself fails, shown inline with Retry.
    failed = chat.send("Anyone there?")
    chat.wait_done(failed, "failed")
    error = failed.get_by_test_id("turn-error")
    expect(error).to_have_attribute("data-code", "network_error")
    expect(error).to_contain_text("Connection problem")
    expect(error.get_by_role("button", name="Retry")).to_be_visible()
