"""Burr's own demo page, served by this chatbot, chats with this chatbot.

The page (shipped inside the ``burr`` package) lists the project's conversations, creates
one when a new name is typed, streams the reply on the left and shows the run's steps on
the right as they happen. It works the same whether Burr's tracking is in Burr's files
(read by Burr's own backend) or in the database (read by ours, ``server.burr_backend``).
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import OFFLINE_ENV, save_screenshot
from tests.support.server_process import ServerProcess, StartServer

pytestmark = pytest.mark.e2e

PROJECT = "demo_streaming_chatbot"
PROMPT = "Write a poem about owls"


@pytest.fixture(params=["file", "database"])
def e2e_burr_server(
    request: pytest.FixtureRequest, serve: StartServer, built_ui: Path
) -> ServerProcess:
    """The offline chatbot with Burr's UI under /burr, tracking where the param says."""
    return serve(**OFFLINE_ENV, CHATBOT_BURR_UI_ENABLED="true", CHATBOT_TRACKING=request.param)


def test_demo_page_creates_a_conversation_streams_a_reply_and_shows_its_steps(
    page: Page, e2e_burr_server: ServerProcess
) -> None:
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{e2e_burr_server.base_url}/burr/demos/streaming-chatbot")

    # Create a conversation through the demo's selector by typing a new name.
    selector = page.locator("input[id^='react-select'][id$='-input']")
    selector.click()
    selector.fill("owls-demo")
    expect(page.get_by_text('Create "owls-demo"')).to_be_visible()
    with page.expect_response(re.compile(r"/burr/api/v0/streaming_chatbot/create/")) as created:
        page.keyboard.press("Enter")
    assert created.value.status == 200
    assert created.value.json() == "owls-demo"

    # Send a prompt; the reply grows on the page while it streams.
    page.get_by_placeholder(re.compile("Ask me")).fill(PROMPT)
    page.get_by_role("button", name="Send").click()
    reply = page.get_by_text(re.compile(r"^Morning opens on owls"))
    expect(reply).to_be_visible()
    finished = page.get_by_text("connect a real model for your own")
    renders: list[str] = []
    for _ in range(600):  # bounded: at most ~30 s of polling
        if finished.count():
            break
        text = reply.inner_text() if reply.count() else ""
        if text and (not renders or renders[-1] != text):
            renders.append(text)
        page.wait_for_timeout(50)
    expect(finished).to_be_visible()
    assert len(renders) >= 3, f"the reply appeared at once, not streamed: {renders}"
    assert all(len(a) < len(b) for a, b in zip(renders, renders[1:], strict=False))

    # The telemetry pane lists the run's steps, in order, with the streaming action.
    for step in ("prompt", "check_safety", "decide_mode", "generate_poem"):
        expect(page.get_by_text(step, exact=True).first).to_be_visible()
    expect(page.get_by_text("stream", exact=True).first).to_be_visible()
    steps_text = page.locator("table").first.inner_text()
    order = [
        steps_text.index(name)
        for name in ("prompt", "check_safety", "decide_mode", "generate_poem")
    ]
    assert order == sorted(order), steps_text

    save_screenshot(page, "burr-demo-page")  # the README's picture of it comes from here

    # What the page showed is what the chatbot stored.
    history = httpx.get(f"{e2e_burr_server.api}/history/{PROJECT}/owls-demo", timeout=10).json()
    assert [item["role"] for item in history] == ["user", "assistant"]
    assert history[0]["content"] == PROMPT
    assert history[1]["content"].startswith("Morning opens on owls")


def test_demo_page_lists_conversations_made_in_our_ui(
    page: Page, e2e_burr_server: ServerProcess
) -> None:
    with httpx.Client(timeout=30) as client:
        client.post(f"{e2e_burr_server.api}/reply/{PROJECT}/from-our-ui", json={"prompt": "hi?"})
    page.goto(f"{e2e_burr_server.base_url}/burr/demos/streaming-chatbot")
    selector = page.locator("input[id^='react-select'][id$='-input']")
    selector.click()
    expect(page.get_by_text("from-our-ui", exact=True)).to_be_visible()
