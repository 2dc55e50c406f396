"""Per-user quotas, counted across two server processes on one database: prompts a
minute, replies at once, tokens a day; refused in each protocol's own shape."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import httpx
import openai
import pytest
from websockets.sync.client import connect

from tests.integration.test_ai_sdk import run_client
from tests.integration.test_users import Team, keyed_team
from tests.support.fake_openai import FakeOpenAI, Script
from tests.support.keys import bearer, create_key
from tests.support.server_process import ServerProcess, StartServer
from tests.support.sse_client import iter_frames, read_text

PROJECT = "p"


def second_process(serve: StartServer, first: ServerProcess) -> ServerProcess:
    """Another server on the first one's database (the same HOME and settings)."""
    return serve(env=first.env)


def prompt(server: ServerProcess, key: str, app: str) -> httpx.Response:
    return httpx.post(
        f"{server.api}/reply/{PROJECT}/{app}",
        json={"prompt": "Hello?"},
        headers=bearer(key),
        timeout=60,
    )


def refused_for_quota(response: httpx.Response) -> dict:
    assert response.status_code == 429, response.text
    assert int(response.headers["retry-after"]) >= 1
    error = response.json()["error"]
    assert error["code"] == "quota_exceeded"
    return error


def within_one_minute() -> None:
    """Start at the beginning of a calendar minute: the per-minute count is kept per
    minute, and a test that crossed into the next one would find it reset."""
    second = dt.datetime.now(dt.UTC).second
    if second > 45:
        time.sleep(61 - second)


def test_prompts_a_minute_are_counted_across_processes_per_user(serve: StartServer) -> None:
    first = serve(CHATBOT_AUTH="keys", CHATBOT_USER_PROMPTS_PER_MINUTE="3")
    second = second_process(serve, first)
    team = keyed_team(first)
    within_one_minute()
    assert prompt(first, team.alice, "a").status_code == 200
    assert prompt(second, team.alice, "b").status_code == 200
    assert prompt(first, team.alice, "c").status_code == 200
    for server in (first, second):
        error = refused_for_quota(prompt(server, team.alice, "d"))
        assert "3 prompts this minute" in error["message"]
    # Nothing of the refused prompt was stored, and Bob has his own count.
    assert (
        httpx.get(
            f"{first.api}/history/{PROJECT}/d", headers=bearer(team.alice), timeout=30
        ).status_code
        == 404
    )
    assert prompt(second, team.bob, "a").status_code == 200

    # The same refusal in the other protocols: OpenAI's (its SDK's RateLimitError)…
    sdk = openai.OpenAI(base_url=f"{second.base_url}/v1", api_key=team.alice, max_retries=0)
    with pytest.raises(openai.RateLimitError) as limited:
        sdk.chat.completions.create(
            model="burr-chatbot", messages=[{"role": "user", "content": "Hi?"}]
        )
    assert limited.value.code == "rate_limit_exceeded"
    assert int(limited.value.response.headers["retry-after"]) >= 1
    # …the WebSocket's error frame, which says the prompt may work later…
    socket_url = f"{first.api.replace('http://', 'ws://', 1)}/ws/{PROJECT}/w"
    with connect(socket_url, proxy=None, additional_headers=bearer(team.alice)) as ws:
        ws.send(json.dumps({"type": "prompt", "prompt": "Hi?"}))
        frame = json.loads(ws.recv())
    assert frame["type"] == "error" and frame["value"]["code"] == "quota_exceeded"
    assert frame["value"]["retryable"] is True
    # …and the AI SDK's chat, which ends in the error.
    result = run_client(
        "refused",
        {
            "api": f"{first.base_url}/api/chat",
            "chatId": "sdk",
            "prompt": "Hi?",
            "headers": bearer(team.alice),
        },
    )
    assert "quota_exceeded" in result["error"]


@pytest.fixture
def concurrent_team(fake_openai: FakeOpenAI, serve: StartServer) -> tuple[Team, ServerProcess]:
    first = serve(upstream=fake_openai, CHATBOT_AUTH="keys", CHATBOT_USER_CONCURRENT_REPLIES="1")
    return keyed_team(first), second_process(serve, first)


def test_replies_at_once_are_counted_across_processes(
    concurrent_team: tuple[Team, ServerProcess], fake_openai: FakeOpenAI
) -> None:
    team, second = concurrent_team
    gate = threading.Event()
    fake_openai.on_stream(Script(tokens=["Slow", " words."], gate_after=1, gate=gate))
    try:
        with team.respond(team.alice, "held", "Take your time?") as held:
            frames = iter_frames(held)
            read_text(frames, "Slow")
            # Alice's one reply at a time is being written, by the first process.
            error = refused_for_quota(prompt(second, team.alice, "other"))
            assert "1 replies being written" in error["message"]
            assert prompt(second, team.bob, "other").status_code == 200
            gate.set()
            assert list(frames)[-1].type == "end"
    finally:
        gate.set()
    assert prompt(second, team.alice, "other").status_code == 200


def test_tokens_a_day_are_counted_from_the_upstreams_usage(
    fake_openai: FakeOpenAI, serve: StartServer
) -> None:
    first = serve(upstream=fake_openai, CHATBOT_AUTH="keys", CHATBOT_USER_TOKENS_PER_DAY="15")
    second = second_process(serve, first)
    alice, bob = create_key(first, "alice"), create_key(first, "bob")
    # The fake reports 11 + 3 tokens for this reply and 2 for the classifier's: 16.
    fake_openai.on_stream(Script(tokens=["A", " long", " answer."]))
    assert prompt(first, alice, "a").status_code == 200
    error = refused_for_quota(prompt(second, alice, "b"))
    assert "15 tokens for today" in error["message"]
    # Until the next UTC midnight, at most a day.
    retry = int(prompt(first, alice, "b").headers["retry-after"])
    assert 1 <= retry <= 86_400
    assert prompt(second, bob, "a").status_code == 200
