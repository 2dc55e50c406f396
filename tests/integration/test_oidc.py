"""``CHATBOT_AUTH=oidc`` with API clients: tokens of a real OpenID Provider (npm's
``oidc-provider``, started on loopback) through the ``openai`` SDK, the AI SDK's client
and ``websockets``; refused tokens in each protocol's own shape. The browser's sign-in is
tests/e2e/test_oidc_sign_in.py."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from joserfc.jwk import RSAKey
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.integration.test_ai_sdk import NODE, run_client
from tests.support.keys import bearer
from tests.support.oidc_provider import (
    OpenIdProvider,
    free_port,
    running_provider,
    server_settings,
)
from tests.support.server_process import ServerProcess, StartServer

PROJECT = "p"
UI_PROJECT = "demo_streaming_chatbot"


@pytest.fixture(scope="module")
def signed(
    serve_module: StartServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[OpenIdProvider, ServerProcess]]:
    port = free_port()
    log = tmp_path_factory.mktemp("oidc") / "provider.log"
    with running_provider(NODE, port, log) as provider:
        server = serve_module(
            "--port", str(port), CHATBOT_BURR_UI_ENABLED="true", **server_settings(provider, port)
        )
        yield provider, server


def history(server: ServerProcess, token: str, app: str, project: str = PROJECT) -> list[dict]:
    answer = httpx.get(f"{server.api}/history/{project}/{app}", headers=bearer(token), timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def sdk(server: ServerProcess, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=token, max_retries=0)


def test_the_providers_tokens_sign_in_api_clients_each_to_their_own(
    signed: tuple[OpenIdProvider, ServerProcess],
) -> None:
    provider, server = signed
    alice, bob = provider.token_for("alice"), provider.token_for("bob")
    for token, prompt in ((alice, "Alice asks?"), (bob, "Bob asks?")):
        reply = sdk(server, token).chat.completions.with_raw_response.create(
            model="burr-chatbot",
            messages=[{"role": "user", "content": prompt}],
            extra_headers={"X-Conversation-Id": "first-chat"},
        )
        assert reply.headers["x-conversation-id"] == "first-chat"
    assert history(server, alice, "first-chat", UI_PROJECT)[0]["content"] == "Alice asks?"
    assert history(server, bob, "first-chat", UI_PROJECT)[0]["content"] == "Bob asks?"
    info = httpx.get(f"{server.api}/info", headers=bearer(alice)).json()
    assert info["user"] == {"id": "alice", "admin": False}
    assert info["sign_in_url"] == "/auth/login"


def test_a_group_claim_makes_an_admin(signed: tuple[OpenIdProvider, ServerProcess]) -> None:
    provider, server = signed
    metrics = f"{server.base_url}/metrics"
    assert httpx.get(metrics, headers=bearer(provider.token_for("alice"))).status_code == 403
    assert httpx.get(metrics, headers=bearer(provider.token_for("admin-carol"))).status_code == 200
    projects = f"{server.base_url}/burr/api/v0/projects"
    assert httpx.get(projects, headers=bearer(provider.token_for("bob"))).status_code == 403


def test_the_sign_in_cookie_is_secure_when_the_request_came_over_https(
    signed: tuple[OpenIdProvider, ServerProcess],
) -> None:
    """Starting a sign-in keeps its state in the session cookie: marked Secure when the
    request came over HTTPS (here through a trusted proxy on loopback), and not over plain
    HTTP, where a browser would refuse to store a Secure cookie."""
    _, server = signed
    cookies = {}
    for scheme in ("https", "http"):
        answer = httpx.get(
            f"{server.base_url}/auth/login", headers={"X-Forwarded-Proto": scheme}, timeout=30
        )
        assert answer.status_code in (302, 303, 307), answer.text
        (cookie,) = answer.headers.get_list("set-cookie")
        cookies[scheme] = [part.strip().lower() for part in cookie.split(";")]
    assert cookies["https"][0].startswith("chatbot_signin=")
    assert "secure" in cookies["https"] and "httponly" in cookies["https"]
    assert "secure" not in cookies["http"] and "httponly" in cookies["http"]


def refused_tokens(provider: OpenIdProvider) -> dict[str, str]:
    now = int(time.time())
    stranger = RSAKey.generate_key(2048, parameters={"kid": provider.key.kid})
    return {
        "expired": provider.sign(provider.claims("alice", exp=now - 120, iat=now - 600)),
        "not yet valid": provider.sign(provider.claims("alice", nbf=now + 600)),
        "another key": provider.sign(provider.claims("alice"), key=stranger),
        "wrong audience": provider.sign(provider.claims("alice", aud="urn:someone:else")),
        "wrong issuer": provider.sign(provider.claims("alice", iss="http://127.0.0.1:9")),
    }


def test_refused_tokens_are_401_in_each_protocols_shape(
    signed: tuple[OpenIdProvider, ServerProcess],
) -> None:
    provider, server = signed
    for why, token in refused_tokens(provider).items():
        ours = httpx.get(f"{server.api}/conversations/{PROJECT}", headers=bearer(token))
        assert ours.status_code == 401, why
        assert ours.json()["error"]["code"] == "unauthorized", why
        assert "bearer token was refused" in ours.json()["error"]["message"], why
        with pytest.raises(openai.AuthenticationError) as refused:
            sdk(server, token).models.list()
        assert refused.value.code == "invalid_api_key", why
        socket = f"{server.api.replace('http://', 'ws://', 1)}/ws/{PROJECT}/chat"
        with pytest.raises(InvalidStatus) as closed:
            connect(socket, proxy=None, additional_headers=bearer(token))
        assert closed.value.response.status_code == 403, why
    # A token signed with an algorithm the provider does not use ("none", HMAC) neither.
    forged = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9."
    assert httpx.get(f"{server.api}/info", headers=bearer(forged)).json()["user"] is None


def test_a_socket_and_the_ai_sdk_with_a_token(
    signed: tuple[OpenIdProvider, ServerProcess],
) -> None:
    provider, server = signed
    token = provider.token_for("bob")
    socket = f"{server.api.replace('http://', 'ws://', 1)}/ws/{PROJECT}/socket-chat"
    with connect(socket, proxy=None) as ws:  # the token as the first message
        ws.send(json.dumps({"type": "auth", "key": token}))
        ws.send(json.dumps({"type": "prompt", "prompt": "Bob's socket?"}))
        while (frame := json.loads(ws.recv()))["type"] not in ("end", "error"):
            pass
    assert frame["type"] == "end"
    assert history(server, token, "socket-chat")[0]["content"] == "Bob's socket?"

    api = f"{server.base_url}/api/chat"
    result = run_client(
        "oneTurn",
        {"api": api, "chatId": "sdk-chat", "prompt": "Bob's SDK?", "headers": bearer(token)},
    )
    stored = history(server, token, "sdk-chat", UI_PROJECT)
    assert [item["content"] for item in stored] == ["Bob's SDK?", result["text"]]
    expired = refused_tokens(provider)["expired"]
    refused = run_client(
        "refused", {"api": api, "chatId": "sdk-chat", "prompt": "Hi?", "headers": bearer(expired)}
    )
    assert "bearer token was refused" in refused["error"]


def test_without_its_settings_oidc_fails_clearly(home: Path) -> None:
    from tests.support.server_process import run_server_expecting_exit, server_env

    env = server_env(home, CHATBOT_AUTH="oidc", CHATBOT_OIDC_ISSUER="http://127.0.0.1:9")
    result = run_server_expecting_exit(home, env)
    assert result.returncode == 2
    assert "CHATBOT_AUTH=oidc needs" in result.stderr
