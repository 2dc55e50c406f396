"""A page object for the chat UI: what a user does, in the UI's own words (roles, labels)."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

CONVERSATION_URL = re.compile(r"/c/([A-Za-z0-9_-]{1,64})$")


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
    def replies(self) -> Locator:
        return self.page.get_by_test_id("message-assistant")

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
