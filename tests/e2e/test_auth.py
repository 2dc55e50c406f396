"""A server with sign-in: the UI asks for a key once, keeps it, asks again if refused, and
shows whose it is."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.chat_page import ChatPage
from tests.e2e.conftest import API_KEY
from tests.support.keys import bearer, create_key
from tests.support.server_process import ServerProcess, StartServer

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


def test_a_users_key_shows_who_is_signed_in_and_only_their_chats(
    page: Page, serve: StartServer
) -> None:
    server = serve(CHATBOT_AUTH="keys")
    alice, bob = create_key(server, "alice"), create_key(server, "bob")
    theirs = httpx.post(
        f"{server.api}/reply/demo_streaming_chatbot/bobs-chat",
        json={"prompt": "Bob's secret?"},
        headers=bearer(bob),
        timeout=60,
    )
    assert theirs.status_code == 200, theirs.text

    chat = ChatPage(page, server.base_url).open()
    dialog = page.get_by_role("dialog", name="API key required")
    dialog.get_by_label("API key", exact=True).fill(alice)
    dialog.get_by_role("button", name="Save key").click()
    expect(dialog).to_have_count(0)
    expect(chat.sidebar.get_by_test_id("signed-in")).to_have_text("Signed in as alice")
    chat.ask("What is mine?")
    page.reload()
    expect(chat.user_messages).to_have_text(["What is mine?"])
    expect(chat.sidebar.get_by_test_id("signed-in")).to_have_text("Signed in as alice")
    expect(chat.sidebar).not_to_contain_text("Bob's secret?")
    # Bob's conversation is not Alice's to open, even by its address.
    chat.open("/c/bobs-chat")
    expect(page.get_by_role("heading", name="Conversation not found")).to_be_visible()
    expect(page.get_by_text("Bob's secret?")).to_have_count(0)
