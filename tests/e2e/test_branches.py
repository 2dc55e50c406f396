"""Branches in the chat UI, in Chromium against a real ``chatbot serve`` (offline model).

Edit a prompt and see the new reply stream; walk the versions with the switcher (one request
per switch, nothing refetched); reload and find the same version; regenerate a reply and see
its own switcher; follow "View in Burr" to the branch's run, where Burr shows its parent.
"""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from playwright.sync_api import Page, Request, expect

from tests.e2e.chat_page import ChatPage
from tests.e2e.conftest import save_screenshot
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.e2e

PROJECT = "demo_streaming_chatbot"
API = "/api/v0/streaming_chatbot"
FIRST = "Write a poem about the sea"
EDITED = "Write a poem about the moon"


@pytest.fixture
def chat(page: Page, e2e_burr_server: ServerProcess) -> ChatPage:
    return ChatPage(page, e2e_burr_server.base_url).open()


def api_requests(page: Page) -> list[str]:
    """Every API request the page makes from now on, as ``METHOD path``."""
    seen: list[str] = []

    def record(request: Request) -> None:
        path = urlparse(request.url).path
        if path.startswith(API):
            seen.append(f"{request.method} {path}")

    page.on("request", record)
    return seen


def assert_streamed(chat: ChatPage) -> None:
    """The newest reply was seen growing, over several renders, before it ended."""
    seen = chat.streamed_texts()
    assert len(seen) >= 3, seen
    assert max(len(text) for text in seen) > len(seen[0]), seen


def test_edit_walk_the_versions_reload_and_regenerate(chat: ChatPage, page: Page) -> None:
    first_reply = chat.ask(FIRST)
    old_reply = first_reply.get_by_test_id("assistant-text").inner_text()
    app_id = chat.app_id
    prompt = chat.items.nth(0)
    expect(prompt).to_have_attribute("data-testid", "message-user")
    expect(prompt.get_by_test_id("branch-switcher")).to_have_count(0)

    # Edit the prompt: the transcript is cut there and the new reply streams in.
    chat.record_streaming()
    reply = chat.edit(prompt, EDITED)
    expect(chat.stop_button).to_be_visible()
    # While it streams, nothing else can branch or switch.
    expect(page.get_by_role("button", name="Edit message")).to_have_count(0)
    chat.wait_done(reply)
    assert_streamed(chat)
    new_reply = reply.get_by_test_id("assistant-text").inner_text()
    assert new_reply != old_reply
    expect(chat.prompts).to_have_text([EDITED])
    expect(chat.replies).to_have_count(1)
    expect(chat.version(prompt)).to_have_text("2 / 2")
    expect(chat.previous_version(prompt)).to_be_enabled()
    expect(chat.next_version(prompt)).to_be_disabled()

    # Back to 1 / 2: the old prompt and its reply, from the switch's answer alone.
    requests = api_requests(page)
    chat.previous_version(prompt).click()
    expect(chat.version(prompt)).to_have_text("1 / 2")
    expect(chat.prompts).to_have_text([FIRST])
    expect(chat.replies).to_have_count(1)
    assert chat.replies.first.get_by_test_id("assistant-text").inner_text() == old_reply
    # The switched message is the same element: the button pressed keeps the focus.
    expect(chat.previous_version(prompt)).to_be_focused()

    # On to 2 / 2 again, with the keyboard.
    chat.next_version(prompt).focus()
    page.keyboard.press("Enter")
    expect(chat.version(prompt)).to_have_text("2 / 2")
    expect(chat.prompts).to_have_text([EDITED])
    assert chat.replies.first.get_by_test_id("assistant-text").inner_text() == new_reply
    # Two switches, two requests: no history reload, no conversation list reload.
    switch = f"POST {API}/branches/{PROJECT}/{app_id}"
    assert requests == [switch, switch]

    # The shown version is the server's: a reload shows it again.
    page.reload()
    expect(chat.version(prompt)).to_have_text("2 / 2")
    expect(chat.prompts).to_have_text([EDITED])
    assert chat.replies.first.get_by_test_id("assistant-text").inner_text() == new_reply

    # Regenerate the reply: it streams, then its own switcher appears.
    reply = chat.replies.first
    expect(reply.get_by_test_id("branch-switcher")).to_have_count(0)
    chat.record_streaming()
    chat.regenerate(reply)
    expect(chat.stop_button).to_be_visible()
    chat.wait_done(chat.replies.first)
    assert_streamed(chat)
    expect(chat.prompts).to_have_text([EDITED])
    expect(chat.replies).to_have_count(1)
    expect(chat.version(chat.replies.first)).to_have_text("2 / 2")
    expect(chat.version(prompt)).to_have_text("2 / 2")
    page.mouse.move(0, 0)
    save_screenshot(page, "branches")  # the README's picture of the switcher comes from here

    # The regenerated reply's first version is the edit's reply.
    chat.previous_version(chat.replies.first).click()
    expect(chat.version(chat.replies.first)).to_have_text("1 / 2")
    assert chat.replies.first.get_by_test_id("assistant-text").inner_text() == new_reply
    chat.next_version(chat.replies.first).click()
    expect(chat.version(chat.replies.first)).to_have_text("2 / 2")


def test_view_in_burr_opens_the_branch_run_where_its_parent_is_shown(
    chat: ChatPage, page: Page
) -> None:
    chat.ask(FIRST)
    app_id = chat.app_id
    prompt = chat.items.nth(0)
    # Escape closes the editor and changes nothing.
    editor = chat.open_editor(prompt)
    expect(editor).to_have_value(FIRST)
    save_screenshot(page, "edit-prompt")
    editor.press("Escape")
    expect(prompt.get_by_role("textbox")).to_have_count(0)
    expect(chat.prompts).to_have_text([FIRST])
    expect(prompt.get_by_role("button", name="Edit message")).to_be_focused()

    chat.wait_done(chat.edit(prompt, EDITED))
    expect(chat.version(prompt)).to_have_text("2 / 2")

    link = chat.burr_link(prompt)
    href = link.get_attribute("href")
    assert href and href.startswith(f"/burr/project/{PROJECT}/"), href
    branch_app_id = href.rsplit("/", 1)[1]
    assert branch_app_id != app_id
    assert branch_app_id.split("~", 1)[0] == app_id

    with page.context.expect_page() as opened:
        link.click()
    burr = opened.value
    # Burr's run view shows where the branch was forked from: a link to the parent run.
    parent = burr.locator(f"a[href$='/{app_id}']", has_text=app_id)
    expect(parent.first).to_be_visible(timeout=60_000)
    expect(burr.get_by_text("parent", exact=True).first).to_be_visible()

    # Version 1 / 2 links the original run, which has no parent.
    chat.previous_version(prompt).click()
    expect(chat.version(prompt)).to_have_text("1 / 2")
    expect(chat.burr_link(prompt)).to_have_attribute(
        "href", f"/burr/project/{PROJECT}/{PROJECT}/{app_id}"
    )
