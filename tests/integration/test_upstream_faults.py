"""Every upstream fault ends the stream with an error frame and leaves the conversation usable.

The rule (README, "failure behaviour"): a failed turn keeps the user's message and adds
an ``error`` item saying what went wrong; the next prompt works as usual.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.fake_openai import FakeOpenAI, Script
from tests.support.metrics import scrape
from tests.support.server_process import ServerProcess, server_env, start_server
from tests.support.sse_client import post_prompt

TOKENS = ["one", " two", " three", " four", " five", " six"]


@pytest.fixture
def faulty_server(home: Path, fake_openai: FakeOpenAI) -> Iterator[ServerProcess]:
    env = server_env(
        home,
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=fake_openai.base_url,
        CHATBOT_UPSTREAM_READ_TIMEOUT_S="0.5",
        CHATBOT_CLASSIFIER_MAX_RETRIES="2",
    )
    server = start_server(home, env=env)
    try:
        yield server
    finally:
        server.stop()


def assert_failed_turn_then_recovery(
    client: httpx.Client,
    server: ServerProcess,
    fake: FakeOpenAI,
    app_id: str,
    code: str,
    *,
    deltas_before_error: str = "",
) -> None:
    _, frames = post_prompt(client, server.api, "faults", app_id, "What is a fault?")
    assert frames[0].type == "chat_history"
    error = frames[-1]
    assert error.type == "error", [f.type for f in frames]
    assert error.value["code"] == code
    assert isinstance(error.value["message"], str) and len(error.value["message"]) > 10
    assert isinstance(error.value["retryable"], bool)
    assert "end" not in [f.type for f in frames]
    assert "".join(f.value for f in frames if f.type == "delta") == deltas_before_error

    # What the user saw before the failure is kept (marked interrupted), then the error.
    seen = (
        [{"role": "assistant", "content": deltas_before_error, "type": "text", "interrupted": True}]
        if deltas_before_error
        else []
    )
    history = client.get(f"{server.api}/history/faults/{app_id}").json()
    assert history == [
        {"role": "user", "content": "What is a fault?", "type": "text"},
        *seen,
        {"role": "assistant", "content": error.value["message"], "type": "error"},
    ]

    fake.on_classify(Script(answer="answer_question"))
    fake.on_stream(Script(tokens=["all", " good"]))
    _, frames = post_prompt(client, server.api, "faults", app_id, "And now?")
    assert frames[-1].type == "end", frames[-1]
    assert frames[-1].value["item"]["content"] == "all good"
    history = client.get(f"{server.api}/history/faults/{app_id}").json()
    assert len(history) == 4 + len(seen)
    # The model is not shown the error item as if it had said it, but does see the text
    # the user read before the failure.
    messages = fake.streamed_requests()[-1].body["messages"]
    assert all(m["content"] != error.value["message"] for m in messages)
    if deltas_before_error:
        assert {"role": "assistant", "content": deltas_before_error} in messages
    # An expected failure is one log line, not Burr's report echoing the user's words.
    assert "What is a fault?" not in server.log()
    # Neither turn is kept alive (by a reference cycle through the error's traceback).
    assert fake.wait_for(lambda: scrape(client, server.base_url)["chatbot_live_turn_objects"] == 0)


@pytest.mark.parametrize(
    ("status", "code", "classifier_calls"),
    [
        (401, "upstream_auth", 1),
        (403, "upstream_auth", 1),
        (400, "upstream_rejected", 1),
        (500, "upstream_unavailable", 3),
        (503, "upstream_unavailable", 3),
    ],
)
def test_classifier_http_errors(
    faulty_server: ServerProcess,
    fake_openai: FakeOpenAI,
    client: httpx.Client,
    status: int,
    code: str,
    classifier_calls: int,
) -> None:
    fake_openai.on_classify(*[Script(status=status)] * classifier_calls)
    assert_failed_turn_then_recovery(client, faulty_server, fake_openai, f"c{status}", code)
    # Only retryable failures are retried, and boundedly.
    assert len(fake_openai.classifier_requests()) == classifier_calls + 1


def test_classifier_429_honours_retry_after_then_succeeds(
    faulty_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    fake_openai.on_classify(Script(status=429, headers={"Retry-After": "0.2"}))
    fake_openai.on_stream(Script(tokens=TOKENS))
    _, frames = post_prompt(client, faulty_server.api, "faults", "rl-ok", "Why?")
    assert frames[-1].type == "end"
    assert len(fake_openai.classifier_requests()) == 2


def test_classifier_429_persisting_gives_rate_limited(
    faulty_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    fake_openai.on_classify(*[Script(status=429, headers={"Retry-After": "0"})] * 3)
    assert_failed_turn_then_recovery(
        client, faulty_server, fake_openai, "rl-fail", "upstream_rate_limited"
    )


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (401, "upstream_auth"),
        (429, "upstream_rate_limited"),
        (500, "upstream_unavailable"),
        (502, "upstream_unavailable"),
    ],
)
def test_streaming_call_http_errors_are_never_retried(
    faulty_server: ServerProcess,
    fake_openai: FakeOpenAI,
    client: httpx.Client,
    status: int,
    code: str,
) -> None:
    fake_openai.on_stream(Script(status=status, headers={"Retry-After": "0"}))
    assert_failed_turn_then_recovery(client, faulty_server, fake_openai, f"s{status}", code)
    assert len(fake_openai.streamed_requests()) == 2  # the failed one, then the recovery


def test_classifier_read_timeout(
    faulty_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    fake_openai.on_classify(*[Script(headers_delay=1.5)] * 3)
    assert_failed_turn_then_recovery(client, faulty_server, fake_openai, "cto", "upstream_timeout")


def test_stream_read_timeout_before_first_token(
    faulty_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    fake_openai.on_stream(Script(headers_delay=1.5))
    assert_failed_turn_then_recovery(client, faulty_server, fake_openai, "sto", "upstream_timeout")


def test_stream_stalls_mid_reply(
    faulty_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    fake_openai.on_stream(Script(tokens=["quick", " then", " stuck"], token_delay=1.5))
    assert_failed_turn_then_recovery(
        client, faulty_server, fake_openai, "stall", "upstream_timeout", deltas_before_error="quick"
    )


def test_stream_cut_off_mid_reply(
    faulty_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    fake_openai.on_stream(Script(tokens=TOKENS, cut_after=3))
    assert_failed_turn_then_recovery(
        client,
        faulty_server,
        fake_openai,
        "cut",
        "upstream_stream_cut",
        deltas_before_error="one two three",
    )


def test_malformed_chunk_mid_reply(
    faulty_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    fake_openai.on_stream(Script(tokens=TOKENS, malformed_after=2))
    assert_failed_turn_then_recovery(
        client,
        faulty_server,
        fake_openai,
        "bad",
        "upstream_malformed",
        deltas_before_error="one two",
    )


def test_error_event_mid_reply(
    faulty_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    fake_openai.on_stream(Script(tokens=TOKENS, error_event_after=2))
    assert_failed_turn_then_recovery(
        client, faulty_server, fake_openai, "evt", "upstream_error", deltas_before_error="one two"
    )


def test_connection_refused_then_upstream_comes_back(home: Path, client: httpx.Client) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free, and nothing listens on it yet
    env = server_env(
        home,
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1",
        CHATBOT_CLASSIFIER_MAX_RETRIES="1",
    )
    server = start_server(home, env=env)
    fake = FakeOpenAI()
    try:
        _, frames = post_prompt(client, server.api, "faults", "refused", "What is a fault?")
        assert frames[-1].type == "error"
        assert frames[-1].value["code"] == "upstream_unreachable"
        history = client.get(f"{server.api}/history/faults/refused").json()
        assert [item["type"] for item in history] == ["text", "error"]
        fake.start(port=port)
        fake.on_stream(Script(tokens=["back"]))
        _, frames = post_prompt(client, server.api, "faults", "refused", "And now?")
        assert frames[-1].type == "end" and frames[-1].value["item"]["content"] == "back"
    finally:
        fake.stop()
        server.stop()
