"""Soak: 200 turns against an upstream that injects every fault kind at random.

Each upstream request, the classification's and the reply's, suffers a fault with 30 %
probability (seeded, so a failure replays). What must hold for every turn: it ends
cleanly (one ``end`` or one ``error``, last); a fault before the reply's first text is
absorbed by a retry; only a fault after it fails the turn, keeping the text the user saw.
Afterwards no turn is left alive and the retry counters match the faults the fake sent.
"""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from tests.support.fake_openai import (
    AFTER_CONTENT,
    BEFORE_CONTENT,
    FakeOpenAI,
    Recorded,
    classify_fault_scripts,
    fault_scripts,
)
from tests.support.metrics import scrape
from tests.support.server_process import ServerProcess, StartServer
from tests.support.sse_client import Frame, post_prompt

TURNS = 200
CONVERSATIONS = 10
PROBABILITY = 0.3
SEED = 20240613
READ_TIMEOUT_S = 0.5
REPLY_DEADLINE_S = 1.5
# How a fault after the first text ends the turn.
AFTER_CONTENT_CODES = {
    "cut_after_content": "upstream_stream_cut",
    "malformed_after_content": "upstream_malformed",
    "stall_after_content": "upstream_timeout",
    "trickle": "upstream_timeout",
}


@pytest.fixture
def soak_server(fake_openai: FakeOpenAI, serve: StartServer) -> ServerProcess:
    """Tiny backoffs, and enough retries that a run of faults before content is absorbed."""
    return serve(
        upstream=fake_openai,
        CHATBOT_UPSTREAM_READ_TIMEOUT_S=str(READ_TIMEOUT_S),
        CHATBOT_UPSTREAM_MAX_RETRIES="8",
        CHATBOT_UPSTREAM_RETRY_BASE_S="0.001",
        CHATBOT_UPSTREAM_RETRY_MAX_BACKOFF_S="0.01",
        CHATBOT_UPSTREAM_RETRY_DEADLINE_S="60",
        CHATBOT_UPSTREAM_REPLY_DEADLINE_S=str(REPLY_DEADLINE_S),
        CHATBOT_TRACKING_ENABLED="false",
    )


def check_turn(frames: list[Frame], requests: list[Recorded], full_reply: str) -> list[dict]:
    """Check one turn against the faults the fake sent it; return the items it stored."""
    types = [frame.type for frame in frames]
    assert types[0] == "chat_history", types
    assert types[-1] in ("end", "error"), types
    assert types.count("end") + types.count("error") == 1, types
    assert set(types[1:-1]) <= {"delta"}, types
    seen = "".join(str(frame.value) for frame in frames if frame.type == "delta")

    classifications = [r for r in requests if not r.stream]
    replies = [r for r in requests if r.stream]
    # Every fault before content was retried, and only those were.
    assert all(r.fault in BEFORE_CONTENT for r in classifications[:-1]), classifications
    assert classifications[-1].fault is None, "a classification fault reached the user"
    assert replies, "the classification never succeeded"
    assert all(r.fault in BEFORE_CONTENT for r in replies[:-1]), [r.fault for r in replies]
    last = replies[-1].fault

    if last is None:
        assert types[-1] == "end", frames[-1]
        assert seen == full_reply == frames[-1].value["item"]["content"]
        return [{"role": "assistant", "content": full_reply, "type": "text"}]
    assert last in AFTER_CONTENT, last
    assert types[-1] == "error", frames[-1]
    assert frames[-1].value["code"] == AFTER_CONTENT_CODES[last]
    assert seen, "a fault after content left the user nothing"
    return [
        {"role": "assistant", "content": seen, "type": "text", "interrupted": True},
        {"role": "assistant", "content": frames[-1].value["message"], "type": "error"},
    ]


def test_two_hundred_turns_with_random_faults_all_end_cleanly(
    soak_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    stream_faults = fault_scripts(stall_s=1.0, trickle_tokens=12, trickle_delay_s=0.25)
    fake_openai.token_delay = 0.001
    fake_openai.inject_faults(
        PROBABILITY,
        seed=SEED,
        stream_faults=stream_faults,
        classify_faults=classify_fault_scripts(stream_faults),
    )
    full_reply = "".join(fake_openai.tokens)
    expected: dict[str, list[dict]] = {f"soak{n}": [] for n in range(CONVERSATIONS)}
    outcomes: Counter[str] = Counter()
    saved = 0

    for index in range(TURNS):
        app_id = f"soak{index % CONVERSATIONS}"
        prompt = f"Question number {index}?"
        first = len(fake_openai.requests)
        _, frames = post_prompt(client, soak_server.api, "soak", app_id, prompt)
        requests = fake_openai.requests[first:]
        stored = check_turn(frames, requests, full_reply)
        expected[app_id] += [{"role": "user", "content": prompt, "type": "text"}, *stored]
        outcomes[frames[-1].type] += 1
        if frames[-1].type == "end" and any(r.fault for r in requests):
            saved += 1

    for app_id, items in expected.items():
        assert client.get(f"{soak_server.api}/history/soak/{app_id}").json() == items

    faults = Counter(r.fault for r in fake_openai.requests if r.fault)
    # The run exercised every kind, and absorbed many faults.
    assert set(faults) == BEFORE_CONTENT | AFTER_CONTENT, faults
    assert outcomes["end"] + outcomes["error"] == TURNS
    assert outcomes["error"] == sum(faults[kind] for kind in AFTER_CONTENT)
    assert saved > 20

    # Every retry is counted, by reason, and every turn it saved.
    metrics = scrape(client, soak_server.base_url)
    retried = sum(
        value
        for name, value in metrics.items()
        if name.startswith("chatbot_upstream_retries_total{")
    )
    assert retried == sum(faults[kind] for kind in BEFORE_CONTENT)
    assert metrics["chatbot_turns_saved_by_retry_total"] == saved
    assert metrics['chatbot_turns_total{outcome="completed"}'] == outcomes["end"]
    assert metrics['chatbot_turns_total{outcome="failed"}'] == outcomes["error"]
    # No turn is left running or alive.
    assert fake_openai.wait_for(
        lambda: (m := scrape(client, soak_server.base_url))["chatbot_live_turn_objects"] == 0
        and m["chatbot_active_turns"] == 0
    )
