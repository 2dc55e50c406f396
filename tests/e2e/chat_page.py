"""A page object for the chat UI: what a user does, in the UI's own words (roles, labels)."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

CONVERSATION_URL = re.compile(r"/c/([A-Za-z0-9_-]{1,64})$")

# Records every distinct text of the newest reply while it is still streaming, from the DOM
# (read back with ``ChatPage.streamed_texts``).
RECORD_STREAMING_TEXTS = """
() => {
  window.__seen = [];
  const observer = new MutationObserver(() => {
    const replies = document.querySelectorAll('[data-testid="message-assistant"]');
    const last = replies[replies.length - 1];
    if (!last || last.dataset.status !== 'streaming') return;
    const text = last.querySelector('[data-testid="assistant-text"]')?.textContent ?? '';
    if (text && window.__seen[window.__seen.length - 1] !== text) window.__seen.push(text);
  });
  observer.observe(document.body,
    { subtree: true, childList: true, characterData: true, attributes: true });
}
"""


class ChatPage:
    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url

    # --- places -------------------------------------------------------------------------
    def open(self, path: str = "/") -> ChatPage:
        self.page.goto(self.base_url + path)
        return self

    @property
    def input(self) -> Locator:
        return self.page.get_by_role("textbox", name="Message", exact=True)

    @property
    def send_button(self) -> Locator:
        return self.page.get_by_role("button", name="Send message")

    @property
    def stop_button(self) -> Locator:
        return self.page.get_by_role("button", name="Stop generating")

    @property
    def user_messages(self) -> Locator:
        return self.page.get_by_test_id("message-user")

    @property
    def prompts(self) -> Locator:
        """The text of each user message (without its buttons and version switcher)."""
        return self.page.get_by_test_id("user-text")

    @property
    def replies(self) -> Locator:
        return self.page.get_by_test_id("message-assistant")

    @property
    def items(self) -> Locator:
        """The transcript's messages in order: the n-th is the history's item n."""
        return self.page.locator("[data-testid='message-user'], [data-testid='message-assistant']")

    @property
    def sidebar(self) -> Locator:
        return self.page.get_by_role("navigation", name="Conversations")

    def conversation_link(self, title: str) -> Locator:
        return self.sidebar.get_by_role("link", name=title)

    @property
    def app_id(self) -> str:
        match = CONVERSATION_URL.search(self.page.url)
        assert match, f"not on a conversation page: {self.page.url}"
        return match.group(1)

    # --- actions ------------------------------------------------------------------------
    def send(self, prompt: str) -> Locator:
        """Types a prompt and presses Enter; returns the reply it starts."""
        expect(self.input).to_be_enabled()
        count = self.replies.count()
        self.input.fill(prompt)
        self.input.press("Enter")
        reply = self.replies.nth(count)
        expect(reply).to_be_attached()
        return reply

    def wait_done(self, reply: Locator, status: str = "complete") -> Locator:
        expect(reply).to_have_attribute("data-status", status, timeout=60_000)
        return reply

    def ask(self, prompt: str) -> Locator:
        return self.wait_done(self.send(prompt))

    def new_chat(self) -> None:
        self.page.get_by_role("button", name="New chat").click()
        expect(self.page).to_have_url(self.base_url + "/")

    def record_streaming(self) -> None:
        """From now on, remember each text the newest reply shows while it streams."""
        self.page.evaluate(RECORD_STREAMING_TEXTS)

    def streamed_texts(self) -> list[str]:
        return self.page.evaluate("window.__seen")

    # --- branches -----------------------------------------------------------------------
    def edit(self, prompt_message: Locator, prompt: str) -> Locator:
        """Edits a sent prompt inline and saves it with Enter; returns the reply it starts
        (the transcript's last: an edit replaces everything after the prompt)."""
        editor = self.open_editor(prompt_message)
        editor.fill(prompt)
        editor.press("Enter")
        expect(prompt_message.get_by_role("textbox")).to_have_count(0)
        return self.replies.last

    def open_editor(self, prompt_message: Locator) -> Locator:
        """Opens a sent prompt's inline editor; returns its text box (focused)."""
        prompt_message.get_by_role("button", name="Edit message").click()
        editor = prompt_message.get_by_role("textbox", name="Edited message")
        expect(editor).to_be_focused()
        return editor

    def regenerate(self, reply: Locator) -> None:
        reply.get_by_role("button", name="Regenerate reply").click()

    @staticmethod
    def version(message: Locator) -> Locator:
        """The ``i / n`` of a message where versions meet."""
        return message.get_by_test_id("branch-position")

    @staticmethod
    def previous_version(message: Locator) -> Locator:
        return message.get_by_role("button", name="Previous version")

    @staticmethod
    def next_version(message: Locator) -> Locator:
        return message.get_by_role("button", name="Next version")

    @staticmethod
    def burr_link(message: Locator) -> Locator:
        return message.get_by_role("link", name="View in Burr")
