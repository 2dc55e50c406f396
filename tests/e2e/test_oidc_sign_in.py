"""Signing in at a real OpenID Provider (npm's ``oidc-provider`` on loopback) in Chromium:
its own login and consent forms, the chat, a reload, signing out at both ends."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.chat_page import ChatPage
from tests.integration.test_ai_sdk import NODE
from tests.support.oidc_provider import free_port, running_provider, server_settings
from tests.support.server_process import StartServer

pytestmark = pytest.mark.e2e


def sign_in_at_the_provider(page: Page, login: str) -> None:
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("any password will do")
    page.locator("button[type=submit]").click()
    page.get_by_role("button", name=re.compile("continue", re.I)).click()  # consent


def test_sign_in_chat_reload_and_sign_out(
    page: Page, serve: StartServer, built_ui: Path, tmp_path: Path
) -> None:
    port = free_port()
    with running_provider(NODE, port, tmp_path / "provider.log") as provider:
        server = serve("--port", str(port), **server_settings(provider, port))
        chat = ChatPage(page, server.base_url)

        # A signed-out visitor is sent to the provider, and back to the page they asked for.
        chat.open("/")
        expect(page).to_have_url(re.compile(re.escape(provider.issuer)))
        sign_in_at_the_provider(page, "alice")
        expect(page).to_have_url(f"{server.base_url}/")
        signed_in = chat.sidebar.get_by_test_id("signed-in")
        expect(signed_in).to_have_text("Signed in as alice")

        chat.ask("What is a sign-in?")
        page.reload()
        expect(chat.user_messages).to_have_text(["What is a sign-in?"])
        expect(signed_in).to_have_text("Signed in as alice")
        cookie = next(c for c in page.context.cookies() if c["name"] == "chatbot_signin")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

        # Signing out ends the session here and at the provider: the next visit asks again.
        chat.sidebar.get_by_role("button", name="Sign out").click()
        page.get_by_role("button", name=re.compile("sign me out", re.I)).click()
        expect(page.locator("input[name=login]")).to_be_visible()
        # (The sign-in that began keeps its state in the cookie, but no user.)
        assert page.request.get(f"{server.api}/info").json()["user"] is None

        # Another user signs in: none of Alice's conversations are theirs.
        sign_in_at_the_provider(page, "bob")
        expect(signed_in).to_have_text("Signed in as bob")
        expect(chat.sidebar).not_to_contain_text("What is a sign-in?")
