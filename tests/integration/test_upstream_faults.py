"""Upstream faults against a real server: absorbed before the first text, reported after it.

The rules (README, "Failure behaviour"): an upstream call that fails before anything
reached the user is retried (bounded backoff, ``Retry-After`` honoured, a deadline per
turn), so the client sees nothing but a later first delta. A fault after the first text
ends the turn with an ``error`` frame; the history keeps the user's message, the text the
user saw (marked ``interrupted``) and an ``error`` item; the next prompt works as usual.
"""

from __future__ import annotations

import socket
from dataclasses import replace

import httpx
import pytest

from tests.support.fake_openai import FakeOpenAI, Recorded, Script, fault_scripts
from tests.support.metrics import scrape
from tests.support.server_process import ServerProcess, StartServer
from tests.support.sse_client import Frame, post_prompt

TOKENS = ["one", " two", " three", " four", " five", " six"]
READ_TIMEOUT_S = 0.5
RETRY_BASE_S = 0.05
RETRY_AFTER_S = 0.4
REPLY_DEADLINE_S = 2.0
# Each kind as the fake plays it: stalls outlast the read timeout, a trickle stays inside
# it but takes longer than the reply deadline; after-content faults strike after 2 tokens.
FAULTS = fault_scripts(
    retry_after=str(RETRY_AFTER_S),
    stall_s=3.0,
    trickle_tokens=20,
    trickle_delay_s=0.25,
)


@pytest.fixture
def faulty_server(fake_openai: FakeOpenAI, serve: StartServer) -> ServerProcess:
    return serve(
        upstream=fake_openai,
        CHATBOT_UPSTREAM_READ_TIMEOUT_S=str(READ_TIMEOUT_S),
        CHATBOT_UPSTREAM_MAX_RETRIES="2",
        CHATBOT_UPSTREAM_RETRY_BASE_S=str(RETRY_BASE_S),
        CHATBOT_UPSTREAM_RETRY_MAX_BACKOFF_S="2",
        CHATBOT_UPSTREAM_RETRY_DEADLINE_S="30",
        CHATBOT_UPSTREAM_REPLY_DEADLINE_S=str(REPLY_DEADLINE_S),
    )


def history_of(client: httpx.Client, server: ServerProcess, app_id: str) -> list[dict]:
    return client.get(f"{server.api}/history/faults/{app_id}").json()


def retries(metrics: dict[str, float], call: str, reason: str) -> float:
    return metrics.get(f'chatbot_upstream_retries_total{{call="{call}",reason="{reason}"}}', 0)


def spacing(requests: list[Recorded]) -> list[float]:
    return [later.at - earlier.at for earlier, later in zip(requests, requests[1:], strict=False)]


def assert_completed(frames: list[Frame], text: str) -> None:
    """One ``chat_history``, the reply's text exactly once, one ``end`` and no ``error``."""
    types = [frame.type for frame in frames]
    assert types[0] == "chat_history", types
    assert types[-1] == "end", frames[-1]
    assert types.count("end") == 1 and "error" not in types, types
    assert set(types[1:-1]) == {"delta"}, types
    assert "".join(str(frame.value) for frame in frames if frame.type == "delta") == text
    assert frames[-1].value["item"]["content"] == text


def assert_next_turn_works(
    client: httpx.Client, server: ServerProcess, fake: FakeOpenAI, app_id: str
) -> list[dict]:
    """A clean turn after the faulty one: it ends, and its reply joins the history."""
    before = history_of(client, server, app_id)
    fake.on_classify(Script(answer="answer_question"))
    fake.on_stream(Script(tokens=["all", " good"]))
    _, frames = post_prompt(client, server.api, "faults", app_id, "And now?")
    assert_completed(frames, "all good")
    history = history_of(client, server, app_id)
    assert history == [
        *before,
        {"role": "user", "content": "And now?", "type": "text"},
        {"role": "assistant", "content": "all good", "type": "text"},
    ]
    # Neither turn is kept alive (by a reference cycle through an error's traceback).
    assert fake.wait_for(lambda: scrape(client, server.base_url)["chatbot_live_turn_objects"] == 0)
    return history


def assert_failed_turn_then_recovery(
    client: httpx.Client,
    server: ServerProcess,
    fake: FakeOpenAI,
    app_id: str,
    code: str,
    *,
    deltas_before_error: str | None = "",
) -> str:
    """The turn ends with one ``error`` frame; ``None`` means "some text, whatever came"."""
    _, frames = post_prompt(client, server.api, "faults", app_id, "What is a fault?")
    types = [f.type for f in frames]
    assert types[0] == "chat_history"
    error = frames[-1]
    assert error.type == "error", types
    assert types.count("error") == 1 and "end" not in types, types
    assert error.value["code"] == code
    assert isinstance(error.value["message"], str) and len(error.value["message"]) > 10
    assert isinstance(error.value["retryable"], bool)
    seen_text = "".join(f.value for f in frames if f.type == "delta")
    if deltas_before_error is None:
        assert seen_text
    else:
        assert seen_text == deltas_before_error

    # What the user saw before the failure is kept (marked interrupted), then the error.
    seen = (
        [{"role": "assistant", "content": seen_text, "type": "text", "interrupted": True}]
        if seen_text
        else []
    )
    assert history_of(client, server, app_id) == [
        {"role": "user", "content": "What is a fault?", "type": "text"},
        *seen,
        {"role": "assistant", "content": error.value["message"], "type": "error"},
    ]

    assert_next_turn_works(client, server, fake, app_id)
    # The model is not shown the error item as if it had said it, but does see the text
    # the user read before the failure.
    messages = fake.streamed_requests()[-1].body["messages"]
    assert all(m["content"] != error.value["message"] for m in messages)
    if seen_text:
        assert {"role": "assistant", "content": seen_text} in messages
    # An expected failure is one log line, not Burr's report echoing the user's words.
    assert "What is a fault?" not in server.log()
    return seen_text


# --- faults before the first text: retried, the client never knows ----------------------


@pytest.mark.parametrize(
    ("fault", "reason", "least_spacing_s"),
    [
        (FAULTS["rate_limited"], "upstream_rate_limited", RETRY_AFTER_S),
        (Script(status=429, headers={"retry-after-ms": "400"}), "upstream_rate_limited", 0.4),
        (FAULTS["unavailable"], "upstream_unavailable", RETRY_BASE_S),
        (Script(status=500), "upstream_unavailable", RETRY_BASE_S),
        (Script(status=408), "upstream_timeout", RETRY_BASE_S),
        (Script(status=409), "upstream_unavailable", RETRY_BASE_S),
        (FAULTS["reset"], "upstream_unreachable", RETRY_BASE_S),
        (Script(headers_delay=3.0), "upstream_timeout", READ_TIMEOUT_S),
        (FAULTS["cut_before_content"], "upstream_stream_cut", RETRY_BASE_S),
        (FAULTS["malformed_before_content"], "upstream_malformed", RETRY_BASE_S),
        (Script(error_event_after=0), "upstream_error", RETRY_BASE_S),
        (FAULTS["stall_before_content"], "upstream_timeout", READ_TIMEOUT_S),
        (Script(bad_chunk_size_after=0, stall_s=30.0), "upstream_timeout", READ_TIMEOUT_S),
    ],
    ids=[
        "429-retry-after",
        "429-retry-after-ms",
        "503",
        "500",
        "408",
        "409",
        "reset-before-first-byte",
        "stall-before-headers",
        "cut-after-role-chunk",
        "malformed-before-content",
        "error-event-before-content",
        "stall-before-content",
        "bad-chunk-size-before-content",
    ],
)
def test_a_fault_before_the_first_text_is_retried_unseen(
    faulty_server: ServerProcess,
    fake_openai: FakeOpenAI,
    client: httpx.Client,
    fault: Script,
    reason: str,
    least_spacing_s: float,
) -> None:
    fake_openai.on_stream(fault, Script(tokens=TOKENS))
    _, frames = post_prompt(client, faulty_server.api, "faults", "early", "What is a fault?")

    assert_completed(frames, "".join(TOKENS))
    assert history_of(client, faulty_server, "early") == [
        {"role": "user", "content": "What is a fault?", "type": "text"},
        {"role": "assistant", "content": "".join(TOKENS), "type": "text"},
    ]
    streams = fake_openai.streamed_requests()
    assert len(streams) == 2
    assert streams[0].body == streams[1].body  # the same request, sent again
    assert spacing(streams)[0] >= least_spacing_s  # backoff, Retry-After, or the stall
    metrics = scrape(client, faulty_server.base_url)
    assert retries(metrics, "reply", reason) == 1
    assert metrics["chatbot_turns_saved_by_retry_total"] == 1
    assert metrics['chatbot_turns_total{outcome="completed"}'] == 1

    assert_next_turn_works(client, faulty_server, fake_openai, "early")
    assert len(fake_openai.streamed_requests()) == 3  # the next turn needed no retry
    assert scrape(client, faulty_server.base_url)["chatbot_turns_saved_by_retry_total"] == 1


def test_a_fault_that_persists_fails_after_the_bounded_retries(
    faulty_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    fake_openai.on_stream(*[Script(status=503)] * 3)
    assert_failed_turn_then_recovery(
        client, faulty_server, fake_openai, "dead", "upstream_unavailable"
    )
    streams = fake_openai.streamed_requests()
    assert len(streams) == 3 + 1  # the first try, two retries; then the next turn's
    # Exponential backoff: the second wait starts from twice the first's base.
    first_wait, second_wait, _ = spacing(streams)
    assert first_wait >= RETRY_BASE_S and second_wait >= 2 * RETRY_BASE_S
    metrics = scrape(client, faulty_server.base_url)
    assert retries(metrics, "reply", "upstream_unavailable") == 2
    assert metrics["chatbot_turns_saved_by_retry_total"] == 0


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "upstream_rejected"),
        (401, "upstream_auth"),
        (403, "upstream_auth"),
        (404, "upstream_rejected"),
        (422, "upstream_rejected"),
    ],
)
def test_a_refusal_is_never_retried(
    faulty_server: ServerProcess,
    fake_openai: FakeOpenAI,
    client: httpx.Client,
    status: int,
    code: str,
) -> None:
    fake_openai.on_stream(Script(status=status, headers={"Retry-After": "0"}))
    assert_failed_turn_then_recovery(client, faulty_server, fake_openai, f"s{status}", code)
    assert len(fake_openai.streamed_requests()) == 2  # the refused one, then the next turn's


def test_the_non_streaming_route_gets_the_same_retries(
    faulty_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    fake_openai.on_stream(
        FAULTS["cut_before_content"], FAULTS["unavailable"], Script(tokens=TOKENS)
    )
    response = client.post(f"{faulty_server.api}/reply/faults/whole", json={"prompt": "Why?"})
    assert response.status_code == 200, response.text
    assert response.json()["item"]["content"] == "".join(TOKENS)
    assert len(fake_openai.streamed_requests()) == 3


# --- faults after the first text: the turn fails, what the user saw is kept --------------


@pytest.mark.parametrize(
    ("fault", "code", "seen"),
    [
        (FAULTS["cut_after_content"], "upstream_stream_cut", "one two"),
        (FAULTS["malformed_after_content"], "upstream_malformed", "one two"),
        (FAULTS["stall_after_content"], "upstream_timeout", "one two"),
        (Script(error_event_after=2), "upstream_error", "one two"),
        # aiohttp's parser waits on such a line forever, and its read timeout never fires
        # (the connection held open, or even closed): the stream's watchdog ends it.
        (Script(bad_chunk_size_after=2, stall_s=30.0), "upstream_timeout", "one two"),
    ],
    ids=["cut", "malformed", "stall", "error-event", "bad-chunk-size"],
)
def test_a_fault_after_the_first_text_ends_the_turn_and_keeps_the_text(
    faulty_server: ServerProcess,
    fake_openai: FakeOpenAI,
    client: httpx.Client,
    fault: Script,
    code: str,
    seen: str,
) -> None:
    fake_openai.on_stream(replace(fault, tokens=TOKENS))
    assert_failed_turn_then_recovery(
        client, faulty_server, fake_openai, "late", code, deltas_before_error=seen
    )
    assert len(fake_openai.streamed_requests()) == 2  # never retried; then the next turn's
    metrics = scrape(client, faulty_server.base_url)
    assert not any(name.startswith("chatbot_upstream_retries_total{") for name in metrics)


def test_a_slow_trickle_ends_at_the_reply_deadline(
    faulty_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    """Every token comes inside the read timeout, but the whole reply would outlast the
    reply deadline: the turn ends there with what the user saw kept."""
    trickle = FAULTS["trickle"]
    assert trickle.token_delay is not None and trickle.tokens is not None
    assert trickle.token_delay < READ_TIMEOUT_S
    assert trickle.token_delay * len(trickle.tokens) > 2 * REPLY_DEADLINE_S
    fake_openai.on_stream(trickle)
    seen = assert_failed_turn_then_recovery(
        client, faulty_server, fake_openai, "trickle", "upstream_timeout", deltas_before_error=None
    )
    everything = "".join(trickle.tokens)
    assert everything.startswith(seen) and seen != everything
    assert len(fake_openai.streamed_requests()) == 2


# --- the classifier: the same policy --------------------------------------------------------


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
    fake_openai.on_classify(FAULTS["rate_limited"], FAULTS["reset"])
    fake_openai.on_stream(Script(tokens=TOKENS))
    _, frames = post_prompt(client, faulty_server.api, "faults", "rl-ok", "Why?")
    assert_completed(frames, "".join(TOKENS))
    classifications = fake_openai.classifier_requests()
    assert len(classifications) == 3
    assert spacing(classifications)[0] >= RETRY_AFTER_S
    metrics = scrape(client, faulty_server.base_url)
    assert retries(metrics, "classifier", "upstream_rate_limited") == 1
    assert retries(metrics, "classifier", "upstream_unreachable") == 1
    assert metrics["chatbot_turns_saved_by_retry_total"] == 1


def test_classifier_429_persisting_gives_rate_limited(
    faulty_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    fake_openai.on_classify(*[Script(status=429, headers={"Retry-After": "0"})] * 3)
    assert_failed_turn_then_recovery(
        client, faulty_server, fake_openai, "rl-fail", "upstream_rate_limited"
    )


def test_classifier_read_timeout(
    faulty_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    fake_openai.on_classify(*[Script(headers_delay=1.5)] * 3)
    assert_failed_turn_then_recovery(client, faulty_server, fake_openai, "cto", "upstream_timeout")


# --- the turn's retry deadline -----------------------------------------------------------


@pytest.fixture
def deadline_server(fake_openai: FakeOpenAI, serve: StartServer) -> ServerProcess:
    """Retries limited by time, not by count: ten allowed, but all within one second."""
    return serve(
        upstream=fake_openai,
        CHATBOT_UPSTREAM_MAX_RETRIES="10",
        CHATBOT_UPSTREAM_RETRY_DEADLINE_S="1.0",
    )


def test_a_dead_upstream_fails_at_the_retry_deadline(
    deadline_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    """Waits of 0.4 s fit twice in the one-second deadline: far fewer than ten retries."""
    fake_openai.on_stream(*[Script(status=429, headers={"Retry-After": "0.4"})] * 11)
    _, frames = post_prompt(client, deadline_server.api, "faults", "dead", "What is a fault?")
    assert [f.type for f in frames] == ["chat_history", "error"]
    assert frames[-1].value["code"] == "upstream_rate_limited"
    assert history_of(client, deadline_server, "dead") == [
        {"role": "user", "content": "What is a fault?", "type": "text"},
        {"role": "assistant", "content": frames[-1].value["message"], "type": "error"},
    ]
    failed = fake_openai.streamed_requests()
    assert 2 <= len(failed) <= 3
    assert all(gap >= 0.4 for gap in spacing(failed))

    fake_openai.drop_scripts()  # the 429s the deadline left unused
    assert_next_turn_works(client, deadline_server, fake_openai, "dead")


def test_the_retry_deadline_is_shared_by_the_turns_calls(
    deadline_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    """The classifier's retry spent 0.6 s of the turn's second: the reply's failure asks
    for another 0.6 s, which no longer fits, so it is the turn's error at once."""
    fake_openai.on_classify(Script(status=429, headers={"Retry-After": "0.6"}))
    fake_openai.on_stream(Script(status=503, headers={"Retry-After": "0.6"}))
    assert_failed_turn_then_recovery(
        client, deadline_server, fake_openai, "shared", "upstream_unavailable"
    )
    assert len(fake_openai.classifier_requests()) == 2 + 1
    assert len(fake_openai.streamed_requests()) == 1 + 1


def test_connection_refused_then_upstream_comes_back(
    serve: StartServer, client: httpx.Client
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free, and nothing listens on it yet
    server = serve(
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1",
        # The setting's former name is still read.
        CHATBOT_CLASSIFIER_MAX_RETRIES="1",
        CHATBOT_UPSTREAM_RETRY_BASE_S="0.01",
    )
    fake = FakeOpenAI()
    try:
        _, frames = post_prompt(client, server.api, "faults", "refused", "What is a fault?")
        assert frames[-1].type == "error"
        assert frames[-1].value["code"] == "upstream_unreachable"
        history = client.get(f"{server.api}/history/faults/refused").json()
        assert [item["type"] for item in history] == ["text", "error"]
        metrics = scrape(client, server.base_url)
        assert retries(metrics, "classifier", "upstream_unreachable") == 1
        fake.start(port=port)
        fake.on_stream(Script(tokens=["back"]))
        _, frames = post_prompt(client, server.api, "faults", "refused", "And now?")
        assert frames[-1].type == "end" and frames[-1].value["item"]["content"] == "back"
    finally:
        fake.stop()
        server.stop()
