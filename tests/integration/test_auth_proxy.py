"""``CHATBOT_AUTH=proxy``: a trusted auth proxy names the user in a header, believed only
from the proxy's addresses; from anywhere else the header is refused, never believed."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.support.keys import bearer, create_key
from tests.support.server_process import (
    ServerProcess,
    StartServer,
    run_server_expecting_exit,
    server_env,
)

PROJECT = "p"
USER = "X-Forwarded-Email"
GROUPS = "X-Forwarded-Groups"


def proxy_env(trusted: str, *sources: str) -> dict[str, str]:
    return {
        "CHATBOT_AUTH": ",".join(("proxy", *sources)),
        "CHATBOT_PROXY_USER_HEADER": USER,
        "CHATBOT_PROXY_ADMIN_HEADER": GROUPS,
        "CHATBOT_PROXY_ADMIN_VALUES": "chat-admins",
        "CHATBOT_TRUSTED_PROXIES": trusted,
    }


def as_user(email: str, *groups: str) -> dict[str, str]:
    return {USER: email, **({GROUPS: ",".join(groups)} if groups else {})}


@pytest.fixture(scope="module")
def behind_proxy(serve_module: StartServer) -> ServerProcess:
    """The tests' requests come from loopback, where this server's proxy is."""
    return serve_module(**proxy_env("127.0.0.1/32, ::1"))


def test_the_proxys_header_names_the_user_and_keeps_users_apart(
    behind_proxy: ServerProcess,
) -> None:
    api = behind_proxy.api
    alice, bob = as_user("alice@example.com"), as_user("bob@example.com")
    made = httpx.post(f"{api}/reply/{PROJECT}/first-chat", json={"prompt": "Hi?"}, headers=alice)
    assert made.status_code == 200, made.text
    assert httpx.get(f"{api}/history/{PROJECT}/first-chat", headers=alice).status_code == 200
    assert httpx.get(f"{api}/history/{PROJECT}/first-chat", headers=bob).status_code == 404
    info = httpx.get(f"{api}/info", headers=alice).json()
    assert info["user"] == {"id": "alice@example.com", "admin": False}
    # The OpenAI SDK through the same proxy: the header is the identity.
    sdk = openai.OpenAI(
        base_url=f"{behind_proxy.base_url}/v1",
        api_key="unused",
        max_retries=0,
        default_headers=bob,
    )
    reply = sdk.chat.completions.with_raw_response.create(
        model="burr-chatbot",
        messages=[{"role": "user", "content": "Bob here?"}],
        extra_headers={"X-Conversation-Id": "first-chat"},
    )
    assert reply.headers["x-conversation-id"] == "first-chat"
    bobs = httpx.get(f"{api}/history/demo_streaming_chatbot/first-chat", headers=bob).json()
    assert bobs[0]["content"] == "Bob here?"


def test_a_group_the_proxy_names_makes_an_admin(behind_proxy: ServerProcess) -> None:
    metrics = f"{behind_proxy.base_url}/metrics"
    assert httpx.get(metrics, headers=as_user("carol@example.com", "staff")).status_code == 403
    admin = as_user("dana@example.com", "staff", "chat-admins")
    assert httpx.get(metrics, headers=admin).status_code == 200
    assert httpx.get(metrics).status_code == 401


def test_without_the_header_a_request_has_no_user(behind_proxy: ServerProcess) -> None:
    refused = httpx.get(f"{behind_proxy.api}/conversations/{PROJECT}")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"


@pytest.fixture(scope="module")
def elsewhere(serve_module: StartServer) -> ServerProcess:
    """A server whose proxy is on another network: the tests' loopback requests are not
    the proxy's, whatever they claim. Per-user keys work beside it."""
    return serve_module(**proxy_env("10.0.0.0/8", "keys"))


@pytest.mark.parametrize(
    "claims",
    [
        as_user("alice@example.com"),
        as_user("root@example.com", "chat-admins"),
        # Claiming to come from the proxy's network changes nothing: the peer is judged.
        {**as_user("alice@example.com"), "X-Forwarded-For": "10.1.2.3"},
    ],
)
def test_a_spoofed_header_is_refused_even_with_a_valid_key(
    elsewhere: ServerProcess, claims: dict[str, str]
) -> None:
    key = create_key(elsewhere, "mallory")
    for path in (f"{elsewhere.api}/conversations/{PROJECT}", f"{elsewhere.base_url}/metrics"):
        refused = httpx.get(path, headers={**claims, **bearer(key)})
        assert refused.status_code == 401, path
        assert "accepted from the auth proxy only" in refused.json()["error"]["message"]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(
            base_url=f"{elsewhere.base_url}/v1", api_key=key, max_retries=0, default_headers=claims
        ).models.list()
    socket = f"{elsewhere.api.replace('http://', 'ws://', 1)}/ws/{PROJECT}/chat"
    with pytest.raises(InvalidStatus) as closed:
        connect(socket, proxy=None, additional_headers=claims)
    assert closed.value.response.status_code == 403
    # The key alone is Mallory's, and nothing was made for "alice".
    mine = httpx.get(f"{elsewhere.api}/conversations/{PROJECT}", headers=bearer(key))
    assert mine.status_code == 200 and mine.json()["total"] == 0


def test_the_key_alone_works_beside_the_proxy(elsewhere: ServerProcess) -> None:
    key = create_key(elsewhere, "erin")
    with connect(
        f"{elsewhere.api.replace('http://', 'ws://', 1)}/ws/{PROJECT}/chat",
        proxy=None,
        additional_headers=bearer(key),
    ) as ws:
        ws.send(json.dumps({"type": "prompt", "prompt": "Hi?"}))
        assert json.loads(ws.recv())["type"] == "chat_history"


def test_proxy_without_its_settings_fails_clearly(home: Path) -> None:
    env = server_env(home, CHATBOT_AUTH="proxy", CHATBOT_PROXY_USER_HEADER=USER)
    result = run_server_expecting_exit(home, env)
    assert result.returncode == 2
    assert "CHATBOT_AUTH=proxy needs" in result.stderr
    env = server_env(home, **proxy_env("not-a-network"))
    result = run_server_expecting_exit(home, env)
    assert "CHATBOT_TRUSTED_PROXIES" in result.stderr and "not an address" in result.stderr


def test_forwarded_for_still_names_the_client_for_the_per_address_limit(
    serve: StartServer,
) -> None:
    # Loopback is a trusted forwarder (FORWARDED_ALLOW_IPS' default), as uvicorn has it.
    server = serve(CHATBOT_RATE_LIMIT_PER_MINUTE="1", CHATBOT_RATE_LIMIT_BURST="1")

    def prompt_from(client: str) -> int:
        url = f"{server.api}/reply/{PROJECT}/from-{client.replace('.', '-')}"
        headers = {"X-Forwarded-For": client}
        return httpx.post(url, json={"prompt": "Hi?"}, headers=headers, timeout=60).status_code

    assert prompt_from("10.0.0.1") == 200
    assert prompt_from("10.0.0.1") == 429
    assert prompt_from("10.0.0.2") == 200


def test_a_header_twice_or_naming_the_local_user_is_refused(behind_proxy: ServerProcess) -> None:
    url = f"{behind_proxy.api}/conversations/{PROJECT}"
    twice = [(USER, "alice@example.com"), (USER, "root@example.com")]
    for headers in (twice, [(USER, "alice@example.com"), (GROUPS, "staff"), (GROUPS, "x")]):
        refused = httpx.get(url, headers=headers)
        assert refused.status_code == 401
        assert "more than once" in refused.json()["error"]["message"]
    # "local" is the server's own user, owner of what was stored before users: no proxy
    # may name it.
    local = httpx.get(url, headers=as_user("local"))
    assert local.status_code == 401
    assert "reserved" in local.json()["error"]["message"]
