"""Burr's UI opens a 200-turn conversation and shows what each step added.

Tracking logs each step's new messages, not the whole history (so the log stays small);
this checks in Chromium that Burr's own UI still lists every step, shows the messages a
step added in its state, and shows a streaming step's timings.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.support.server_process import ServerProcess, StartServer
from tests.support.sse_client import post_prompt

pytestmark = pytest.mark.e2e

PROJECT = "demo_streaming_chatbot"
APP = "long-talk"
TURNS = 200
STEPS_PER_TURN = 4  # prompt, check_safety, decide_mode, answer_question
# How long to wait for the page (not a speed requirement): the first request under /burr
# loads Burr's UI server, and each render of the page handles all 800 steps.
SLOW_PAGE_MS = 60_000


def _prompt(turn: int) -> str:
    return f"What is lighthouse number {turn}?"


@pytest.fixture
def long_conversation(serve: StartServer, built_ui: Path) -> ServerProcess:
    """A server with Burr's UI, and one conversation of ``TURNS`` turns at full speed."""
    server = serve(
        CHATBOT_BURR_UI_ENABLED="true",
        CHATBOT_OFFLINE_PACE_MS="0",
        CHATBOT_CANNED_PACE_MS="0",
    )
    with httpx.Client(timeout=60) as client:
        for turn in range(1, TURNS + 1):
            _, frames = post_prompt(client, server.api, PROJECT, APP, _prompt(turn))
            assert frames[-1].type == "end", frames[-1]
    return server


def _step_row(page: Page, sequence_id: int) -> Locator:
    number = page.get_by_text(str(sequence_id), exact=True)
    return page.locator("tbody tr", has=number).first


def _state_field(page: Page, name: str) -> Locator:
    """The state pane's block for one field: its heading and its value."""
    heading = page.locator("h1", has_text=re.compile(f"^{re.escape(name)}$"))
    return heading.locator("xpath=../..")


def _shows(locator: Locator, *texts: str | re.Pattern[str]) -> None:
    for text in texts:
        expect(locator).to_contain_text(text, timeout=SLOW_PAGE_MS)


def test_burr_ui_shows_each_step_of_a_200_turn_conversation_and_what_it_added(
    page: Page, long_conversation: ServerProcess
) -> None:
    steps = TURNS * STEPS_PER_TURN
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{long_conversation.base_url}/burr/project/{PROJECT}/null/{APP}")

    # Every step is listed, the last turn's included.
    expect(_step_row(page, steps - 1)).to_be_visible(timeout=SLOW_PAGE_MS)
    expect(page.locator("tbody tr")).to_have_count(steps)

    # The last turn's prompt step: its state shows the user message it added.
    _step_row(page, steps - STEPS_PER_TURN).click()
    _shows(_state_field(page, "chat_history_added"), "user", _prompt(TURNS))
    _shows(_state_field(page, "chat_history_length"), str(2 * TURNS - 1))

    # The last turn's reply step: its state shows the reply it added...
    reply_row = _step_row(page, steps - 1)
    reply_row.click()
    _shows(_state_field(page, "chat_history_length"), str(2 * TURNS))
    _shows(
        _state_field(page, "chat_history_added"),
        "assistant",
        "offline model",
        f"lighthouse number {TURNS}",
    )

    # ...and, expanded, its stream timings: the first item's delay and the throughput.
    rows_before = page.locator("tbody tr").count()
    reply_row.locator("svg").first.click()
    expect(page.locator("tbody tr")).to_have_count(rows_before + 2, timeout=SLOW_PAGE_MS)
    _shows(page.locator("tbody tr", has_text="delay:").last, re.compile(r"delay: \d+"))
    _shows(page.locator("tbody tr", has_text="throughput:").last, re.compile(r"\(\d+/\d+ms\)"))
