"""The chat UI in a real browser against a real ``chatbot serve`` (offline model)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.chat_page import RECORD_STREAMING_TEXTS, ChatPage
from tests.e2e.conftest import PHONE, PageProblems, save_screenshot
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.e2e


@pytest.fixture
def chat(page: Page, e2e_offline_server: ServerProcess) -> ChatPage:
    return ChatPage(page, e2e_offline_server.base_url).open()


def test_reply_grows_while_streaming_and_ends_as_a_poem(chat: ChatPage, page: Page) -> None:
    expect(page.get_by_test_id("empty-state")).to_be_visible()
    save_screenshot(page, "01-empty")
    page.evaluate(RECORD_STREAMING_TEXTS)

    reply = chat.send("Write a poem about the sea at night")
    expect(page).to_have_url(re.compile(r"/c/[A-Za-z0-9_-]+$"))
    # While streaming: the stop button replaces send and the prompt box is disabled.
    expect(chat.stop_button).to_be_visible()
    expect(chat.input).to_be_disabled()
    expect(reply.get_by_test_id("assistant-text")).not_to_be_empty()
    save_screenshot(page, "02-streaming")

    chat.wait_done(reply)
    seen = page.evaluate("window.__seen")
    final = reply.get_by_test_id("assistant-text").inner_text()
    # Several distinct renders happened while the reply was streaming, before its end frame;
    # the first one was the start of the reply and the reply grew from there. (Later renders
    # are not compared as strings: Markdown may re-render earlier text, e.g. when an
    # emphasis closes.)
    assert len(seen) >= 3, seen
    assert final.replace("\n", "").startswith(seen[0].replace("\n", "").strip()), (seen[0], final)
    assert len(final) > len(seen[0])
    assert max(len(text) for text in seen) > len(seen[0])

    expect(reply.get_by_test_id("mode-badge")).to_have_text("poem")
    expect(reply).to_have_attribute("data-mode", "generate_poem")
    # Verses keep their line breaks.
    assert reply.locator(".markdown.poem br").count() >= 2
    expect(chat.input).to_be_enabled()
    expect(chat.input).to_be_focused()
    save_screenshot(page, "04-poem")


def test_a_prompt_is_a_post_to_the_ai_sdk_route(chat: ChatPage, page: Page) -> None:
    sent: list[tuple[str, str, str | None]] = []
    page.on("request", lambda r: sent.append((r.method, r.url, r.post_data)))
    chat.ask("What is a transport?")
    posts = [(url, body) for method, url, body in sent if method == "POST" and "/api/" in url]
    # useChat's DefaultChatTransport, at the route the server speaks its protocol on.
    assert [url for url, _ in posts] == [chat.base_url + "/api/chat"], posts
    body = json.loads(posts[0][1] or "{}")
    assert body["id"] == chat.app_id
    assert body["trigger"] == "submit-message"
    assert body["messages"][-1]["role"] == "user"
    assert body["messages"][-1]["parts"] == [{"type": "text", "text": "What is a transport?"}]
    # Nothing of the Burr-UI frames' routes: the UI no longer reads that dialect.
    assert not [
        url for _, url, _ in sent if re.search(r"/streaming_chatbot/(response|stream)/", url)
    ]


AXE = Path(__file__).resolve().parents[2] / "ui" / "node_modules" / "axe-core" / "axe.min.js"


def axe_violations(page: Page) -> list[str]:
    """axe-core's WCAG A/AA violations on the page as it is (run through the DevTools
    protocol, which the page's Content-Security-Policy does not apply to)."""
    page.evaluate(AXE.read_text())
    result = page.evaluate(
        "axe.run(document, {runOnly: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']})"
    )
    return [f"{v['id']}: {[n['target'] for n in v['nodes']]}" for v in result["violations"]]


def test_axe_finds_no_violation(chat: ChatPage, page: Page) -> None:
    expect(page.get_by_test_id("empty-state")).to_be_visible()
    assert axe_violations(page) == []
    chat.ask("Write a poem about the sea")
    reply = chat.ask("Write Python code that checks for a palindrome")
    expect(reply.get_by_test_id("mode-badge")).to_have_text("code")
    assert axe_violations(page) == []
    page.set_viewport_size(PHONE)
    page.get_by_role("button", name="Open conversations").click()
    expect(chat.sidebar).to_be_visible()
    assert axe_violations(page) == []


def test_code_reply_is_highlighted_and_copyable(chat: ChatPage, page: Page) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    chat.ask("What is a palindrome?")
    reply = chat.ask("Write Python code that checks for a palindrome")
    expect(reply.get_by_test_id("mode-badge")).to_have_text("code")
    code = reply.locator(".code-block pre code")
    expect(code).to_have_count(1)
    expect(code).to_have_class(re.compile(r"\bhljs\b"))
    assert code.locator("[class^='hljs-']").count() > 0, "no highlighted tokens"
    save_screenshot(page, "03-code")

    reply.get_by_role("button", name=re.compile(r"^Copy .*code$")).click()
    expect(reply.get_by_role("button", name=re.compile(r"code$")).first).to_contain_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.strip() == code.inner_text().strip()


def test_reload_keeps_the_history(chat: ChatPage, page: Page) -> None:
    first = chat.ask("What is a state machine?")
    first_text = first.get_by_test_id("assistant-text").inner_text()
    chat.ask("Write a poem about a kettle")
    url = page.url

    page.reload()
    expect(page).to_have_url(url)
    expect(chat.user_messages).to_have_text(
        ["What is a state machine?", "Write a poem about a kettle"]
    )
    expect(chat.replies).to_have_count(2)
    expect(chat.replies.first.get_by_test_id("assistant-text")).to_have_text(first_text)
    # The conversation is in the sidebar under its title, marked as the current page.
    expect(chat.sidebar.locator("a[aria-current=page]")).to_have_count(1)


def test_switching_conversations_shows_each_ones_history(chat: ChatPage, page: Page) -> None:
    chat.ask("What is alpha?")
    alpha_url = page.url
    chat.new_chat()
    expect(page.get_by_test_id("empty-state")).to_be_visible()
    chat.ask("Write a poem about beta")
    beta_url = page.url
    assert alpha_url != beta_url

    chat.conversation_link("What is alpha?").click()
    expect(page).to_have_url(alpha_url)
    expect(chat.user_messages).to_have_text(["What is alpha?"])

    chat.conversation_link("Write a poem about beta").click()
    expect(page).to_have_url(beta_url)
    expect(chat.user_messages).to_have_text(["Write a poem about beta"])

    # Browser history walks back through the same conversations.
    page.go_back()
    expect(page).to_have_url(alpha_url)
    expect(chat.user_messages).to_have_text(["What is alpha?"])
    page.go_forward()
    expect(chat.user_messages).to_have_text(["Write a poem about beta"])


def test_html_in_a_prompt_is_shown_as_text_and_runs_nothing(
    chat: ChatPage, page: Page, problems: PageProblems
) -> None:
    payload = "<img src=x onerror=alert(1)>"
    chat.ask(payload)
    expect(chat.user_messages.first).to_have_text(payload)
    assert page.locator("img").count() == 0
    page.reload()
    expect(chat.user_messages.first).to_have_text(payload)
    assert page.locator("img").count() == 0
    assert problems.dialogs == []


def test_burr_link_points_at_this_conversations_run(
    page: Page, e2e_burr_server: ServerProcess
) -> None:
    chat = ChatPage(page, e2e_burr_server.base_url).open()
    chat.ask("What is Burr?")
    link = page.get_by_test_id("burr-link")
    project = _project_id(e2e_burr_server)
    expected = f"/burr/project/{project}/{project}/{chat.app_id}"
    expect(link).to_have_attribute("href", expected)
    expect(link).to_have_attribute("target", "_blank")
    # Same origin: Burr's tracking UI answers there, and its API knows this conversation.
    assert page.request.get(e2e_burr_server.base_url + expected).status == 200
    apps = page.request.get(
        f"{e2e_burr_server.base_url}/burr/api/v0/{_project_id(e2e_burr_server)}/__none__/apps"
    )
    assert chat.app_id in apps.text()


def test_no_burr_link_when_the_server_has_no_burr_ui(chat: ChatPage, page: Page) -> None:
    chat.ask("What is missing?")
    expect(page.get_by_test_id("burr-link")).to_have_count(0)
    expect(chat.sidebar.get_by_role("link", name="Burr tracking UI")).to_have_count(0)


def test_delete_removes_the_conversation(
    chat: ChatPage, page: Page, e2e_offline_server: ServerProcess
) -> None:
    chat.ask("What is to be deleted?")
    app_id = chat.app_id
    chat.sidebar.get_by_role("button", name=re.compile("^Delete conversation")).click()
    chat.sidebar.get_by_role("button", name="Delete", exact=True).click()
    expect(page).to_have_url(e2e_offline_server.base_url + "/")
    expect(page.get_by_test_id("conversation-item")).to_have_count(0)
    history = httpx.get(
        f"{e2e_offline_server.api}/history/{_project_id(e2e_offline_server)}/{app_id}"
    )
    assert history.status_code == 404
    # Its old address says so instead of showing an empty chat.
    chat.open(f"/c/{app_id}")
    expect(page.get_by_test_id("conversation-missing")).to_be_visible()


def test_keyboard_only(chat: ChatPage, page: Page) -> None:
    # Tab reaches the prompt box; Shift+Enter adds a line, Enter sends.
    page.locator("body").focus()
    for _ in range(30):
        page.keyboard.press("Tab")
        if chat.input.evaluate("el => el === document.activeElement"):
            break
    expect(chat.input).to_be_focused()
    page.keyboard.type("What is line one?")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("And line two?")
    page.keyboard.press("Enter")
    expect(chat.user_messages.first).to_have_text("What is line one?\nAnd line two?")
    chat.wait_done(chat.replies.first)
    expect(chat.input).to_be_focused()
    # The new-chat button and the conversation are reachable from the keyboard too.
    page.get_by_role("button", name="New chat").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("empty-state")).to_be_visible()
    chat.conversation_link("What is line one? And line two?").focus()
    page.keyboard.press("Enter")
    expect(chat.user_messages).to_have_count(1)


def test_phone_width_collapses_the_sidebar(chat: ChatPage, page: Page) -> None:
    chat.ask("Write a poem about a small screen")
    page.set_viewport_size(PHONE)
    expect(chat.sidebar).not_to_be_visible()
    expect(chat.input).to_be_visible()
    save_screenshot(page, "06-phone")

    page.get_by_role("button", name="Open conversations").click()
    expect(chat.sidebar).to_be_visible()
    save_screenshot(page, "07-phone-sidebar")
    page.keyboard.press("Escape")
    expect(chat.sidebar).not_to_be_visible()
    page.get_by_role("button", name="Open conversations").click()
    chat.new_chat()
    expect(chat.sidebar).not_to_be_visible()


def _project_id(server: ServerProcess) -> str:
    return httpx.get(f"{server.api}/info", timeout=10).json()["project_id"]
