"""API key, CORS, security headers and per-process limits, against real server processes."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from tests.support.fake_openai import FakeOpenAI, Script
from tests.support.server_process import (
    ServerProcess,
    StartServer,
    run_server_expecting_exit,
    server_env,
)
from tests.support.sse_client import iter_frames, post_prompt

KEY = "s3cret-key"
BEARER = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def keyed_server(serve: StartServer) -> ServerProcess:
    return serve(CHATBOT_API_KEY=KEY, CHATBOT_BURR_UI_ENABLED="true")


PROTECTED = [
    ("POST", "/api/v0/streaming_chatbot/response/p/a", {"prompt": "hi?"}),
    ("POST", "/api/v0/streaming_chatbot/reply/p/a", {"prompt": "hi?"}),
    ("GET", "/api/v0/streaming_chatbot/history/p/a", None),
    ("POST", "/api/v0/streaming_chatbot/create/p/a", None),
    ("GET", "/api/v0/streaming_chatbot/conversations/p", None),
    ("DELETE", "/api/v0/streaming_chatbot/conversations/p/a", None),
    ("POST", "/burr/api/v0/streaming_chatbot/create/p/a", None),
    ("GET", "/burr/api/v0/projects", None),
    ("GET", "/metrics", None),
]


def test_every_api_route_needs_the_key(keyed_server, client: httpx.Client) -> None:
    for method, path, body in PROTECTED:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
            response = client.request(
                method, keyed_server.base_url + path, json=body, headers=headers
            )
            assert response.status_code == 401, (method, path, headers)
            assert response.json()["error"]["code"] == "unauthorized"
            assert response.headers["www-authenticate"] == "Bearer"
    assert not (Path(keyed_server.env["HOME"]) / ".burr" / "p").exists()


def test_the_key_opens_every_route(keyed_server, client: httpx.Client) -> None:
    api = keyed_server.api
    assert client.post(f"{api}/create/p/a", headers=BEARER).status_code == 200
    with client.stream("POST", f"{api}/response/p/a", json={"prompt": "hi?"}, headers=BEARER) as r:
        assert r.status_code == 200
        assert list(iter_frames(r))[-1].type == "end"
    assert len(client.get(f"{api}/history/p/a", headers=BEARER).json()) == 2
    assert (
        client.get(f"{keyed_server.base_url}/burr/api/v0/projects", headers=BEARER).status_code
        == 200
    )
    assert client.get(f"{keyed_server.base_url}/metrics", headers=BEARER).status_code == 200


def test_open_endpoints_and_info(keyed_server, client: httpx.Client) -> None:
    assert client.get(f"{keyed_server.base_url}/healthz").status_code == 200
    info = client.get(f"{keyed_server.api}/info").json()
    assert info["auth_required"] is True
    assert client.get(f"{keyed_server.base_url}/").status_code == 200  # the UI page itself


def test_session_cookie_authorises_the_browser_including_burr_ui(keyed_server) -> None:
    with httpx.Client(base_url=keyed_server.base_url) as browser:
        assert browser.post("/api/v0/streaming_chatbot/session").status_code == 401
        started = browser.post("/api/v0/streaming_chatbot/session", headers=BEARER)
        assert started.status_code == 204
        cookie = started.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert KEY not in cookie
        assert browser.get("/api/v0/streaming_chatbot/conversations/p").status_code == 200
        assert browser.get("/burr/api/v0/projects").status_code == 200
        browser.delete("/api/v0/streaming_chatbot/session")
        assert browser.get("/burr/api/v0/projects").status_code == 401


def test_without_a_key_the_server_binds_loopback_and_says_so(serve: StartServer) -> None:
    server = serve()  # serve passes --host 127.0.0.1 like the default
    server.stop()
    assert "open to this machine only" in server.log()
    # And the default really is loopback: --help shows it, the parser applies it.
    from server.cli import _parser

    assert _parser().parse_args(["serve"]).host == "127.0.0.1"


def test_cors_is_off_by_default_and_configurable(serve: StartServer, client: httpx.Client) -> None:
    preflight = {
        "Origin": "http://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    server = serve()
    try:
        response = client.options(f"{server.api}/response/p/a", headers=preflight)
        assert "access-control-allow-origin" not in response.headers
    finally:
        server.stop()
    server = serve(CHATBOT_CORS_ORIGINS='["http://app.example"]')
    try:
        allowed = client.options(f"{server.api}/response/p/a", headers=preflight)
        assert allowed.headers["access-control-allow-origin"] == "http://app.example"
        other = client.options(
            f"{server.api}/response/p/a", headers={**preflight, "Origin": "http://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers
    finally:
        server.stop()


def test_security_headers(offline_server, client: httpx.Client) -> None:
    page = client.get(f"{offline_server.base_url}/")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    for response in (page, client.get(f"{offline_server.api}/conversations/p")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"


def test_concurrent_stream_limit_answers_503_with_retry_after(
    fake_openai: FakeOpenAI, serve: StartServer, client: httpx.Client
) -> None:
    server = serve(upstream=fake_openai, CHATBOT_MAX_CONCURRENT_STREAMS="1")
    gate = threading.Event()
    fake_openai.on_stream(Script(tokens=["a", "b"], gate_after=1, gate=gate))
    try:
        with client.stream("POST", f"{server.api}/response/p/one", json={"prompt": "1?"}) as first:
            frames = iter_frames(first)
            next(frames), next(frames)
            refused = client.post(f"{server.api}/response/p/two", json={"prompt": "2?"})
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "overloaded"
            assert int(refused.headers["retry-after"]) >= 1
            gate.set()
            assert list(frames)[-1].type == "end"
        assert client.get(f"{server.api}/history/p/two").status_code == 404  # nothing stored
        _, frames = post_prompt(client, server.api, "p", "two", "2?")
        assert frames[-1].type == "end"
    finally:
        gate.set()
        server.stop()


def test_rate_limit_when_turned_on(serve: StartServer, client: httpx.Client) -> None:
    server = serve(CHATBOT_RATE_LIMIT_PER_MINUTE="2", CHATBOT_RATE_LIMIT_BURST="2")
    try:
        for index in range(2):
            _, frames = post_prompt(client, server.api, "p", f"r{index}", "hi?")
            assert frames[-1].type == "end"
        limited = client.post(f"{server.api}/response/p/r3", json={"prompt": "hi?"})
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limited"
        assert int(limited.headers["retry-after"]) >= 1
        assert client.get(f"{server.api}/history/p/r3").status_code == 404
        # Reading is not rate limited.
        assert client.get(f"{server.api}/history/p/r0").status_code == 200
    finally:
        server.stop()


def test_rate_limit_is_off_by_default(offline_server, client: httpx.Client) -> None:
    for index in range(15):
        response = client.post(f"{offline_server.api}/create/p/x{index}")
        assert response.status_code == 200
    statuses = {
        post_prompt(client, offline_server.api, "p", f"x{index}", "hmm")[0].status_code
        for index in range(12)
    }
    assert statuses == {200}


def test_invalid_configuration_fails_clearly(home: Path) -> None:
    result = run_server_expecting_exit(home, server_env(home, CHATBOT_MAX_CONCURRENT_STREAMS="0"))
    assert result.returncode == 2
    assert "invalid configuration: CHATBOT_MAX_CONCURRENT_STREAMS" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("auth", "said"),
    [
        ("passwords", "unknown source passwords: use one or more of keys, none, oidc, proxy"),
        ("none,keys", "'none' cannot be combined with another source"),
        (" , ", "unknown source (none given)"),
    ],
)
def test_an_unknown_sign_in_source_fails_clearly(home: Path, auth: str, said: str) -> None:
    result = run_server_expecting_exit(home, server_env(home, CHATBOT_AUTH=auth))
    assert result.returncode == 2
    assert f"invalid configuration: CHATBOT_AUTH: Value error, {said}" in result.stderr
    assert "Traceback" not in result.stderr
