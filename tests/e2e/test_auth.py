"""A server with an API key: the UI asks for it once, keeps it, and asks again if refused."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.chat_page import ChatPage
from tests.e2e.conftest import API_KEY
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.e2e


def test_asks_for_the_key_keeps_it_and_asks_again_when_refused(
    page: Page, e2e_auth_server: ServerProcess
) -> None:
    chat = ChatPage(page, e2e_auth_server.base_url).open()
    dialog = page.get_by_role("dialog", name="API key required")
    expect(dialog).to_be_visible()
    key_box = dialog.get_by_label("API key", exact=True)
    expect(key_box).to_be_focused()

    key_box.fill("not-the-key")
    key_box.press("Enter")
    expect(dialog).to_contain_text("refused")
    key_box.fill(API_KEY)
    dialog.get_by_role("button", name="Save key").click()
    expect(dialog).to_have_count(0)

    reply = chat.ask("What is a key?")
    expect(reply.get_by_test_id("mode-badge")).to_have_text("question")
    assert page.evaluate("localStorage.getItem('chatbot.apiKey')") == API_KEY
    # The key was also traded for the session cookie, so Burr's own API calls get through.
    project = page.evaluate(
        "fetch('/api/v0/streaming_chatbot/info').then(r => r.json()).then(i => i.project_id)"
    )
    burr_apps = page.request.get(f"{e2e_auth_server.base_url}/burr/api/v0/{project}/__none__/apps")
    assert burr_apps.status == 200

    # A reload asks nothing and shows the conversation.
    page.reload()
    expect(chat.user_messages).to_have_text(["What is a key?"])
    expect(dialog).to_have_count(0)

    # A key that stops working (rotated on the server, say) is asked for again.
    page.evaluate("localStorage.setItem('chatbot.apiKey', 'rotated-away')")
    page.context.clear_cookies()
    page.reload()
    expect(dialog).to_contain_text("refused")
    dialog.get_by_label("API key", exact=True).fill(API_KEY)
    dialog.get_by_role("button", name="Save key").click()
    expect(chat.user_messages).to_have_text(["What is a key?"])

    # "Forget API key" clears it from this browser (and the session cookie): asked again.
    chat.sidebar.get_by_role("button", name="Forget API key").click()
    expect(dialog).to_be_visible()
    assert page.evaluate("localStorage.getItem('chatbot.apiKey')") is None
    assert page.context.cookies() == []
