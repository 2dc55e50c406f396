"""With CHATBOT_ON_DISCONNECT=cancel, a client that leaves mid-reply ends it: upstream
cancelled, partial reply kept, nothing leaks. (By default a reply outlives its client:
tests/integration/test_resume.py.)"""

from __future__ import annotations

import httpx
import pytest

from tests.support.fake_openai import FakeOpenAI, Script
from tests.support.metrics import scrape
from tests.support.server_process import ServerProcess, StartServer
from tests.support.sse_client import iter_frames, post_prompt

SLOW_TOKENS = [f" t{i}" for i in range(200)]
ROUNDS = 300


@pytest.fixture
def server(fake_openai: FakeOpenAI, serve: StartServer) -> ServerProcess:
    return serve(upstream=fake_openai, CHATBOT_ON_DISCONNECT="cancel")


def _idle_report(before: dict[str, float], after: dict[str, float]) -> str:
    keys = ("chatbot_active_turns", "chatbot_asyncio_tasks", "chatbot_live_turn_objects")
    return " ".join(f"{k}: {before.get(k)} -> {after.get(k)}" for k in keys)


def leave_after_first_delta(client: httpx.Client, server: ServerProcess, app_id: str) -> str:
    with client.stream(
        "POST", f"{server.api}/response/drop/{app_id}", json={"prompt": "Tell me why?"}
    ) as response:
        frames = iter_frames(response)
        assert next(frames).type == "chat_history"
        first = next(frames)
        assert first.type == "delta"
        return first.value  # leaving the block closes the connection mid-reply


def test_disconnect_keeps_the_partial_reply_and_frees_the_conversation(
    server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    fake_openai.on_stream(Script(tokens=SLOW_TOKENS, token_delay=0.02))
    leave_after_first_delta(client, server, "kept")
    assert fake_openai.wait_for(lambda: fake_openai.streams_cancelled == 1)

    def stored() -> list[dict]:
        return client.get(f"{server.api}/history/drop/kept").json()

    assert fake_openai.wait_for(lambda: len(stored()) == 2)
    user, partial = stored()
    assert user == {"role": "user", "content": "Tell me why?", "type": "text"}
    assert partial["role"] == "assistant" and partial["interrupted"] is True
    assert partial["content"].startswith(" t0") and len(partial["content"]) < len(
        "".join(SLOW_TOKENS)
    )

    fake_openai.on_stream(Script(tokens=["fine"]))
    _, frames = post_prompt(client, server.api, "drop", "kept", "Still there?")
    assert frames[-1].type == "end"
    assert frames[0].value == [user, partial]  # the next turn starts from what was kept


def test_hundreds_of_disconnects_leave_nothing_behind(
    server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    fake_openai.token_delay = 0.02
    fake_openai.tokens = SLOW_TOKENS
    for index in range(5):  # warm up pools, caches and lazy imports
        leave_after_first_delta(client, server, f"warm{index}")
    assert fake_openai.wait_for(lambda: fake_openai.active_streams == 0)
    assert fake_openai.wait_for(
        lambda: scrape(client, server.base_url)["chatbot_active_turns"] == 0
    )
    idle = scrape(client, server.base_url)
    idle_connections = fake_openai.open_connections
    cancelled_before = fake_openai.streams_cancelled

    for index in range(ROUNDS):
        leave_after_first_delta(client, server, f"c{index}")

    # The upstream saw every one of those requests cancelled, none run to its end.
    assert fake_openai.wait_for(
        lambda: fake_openai.streams_cancelled - cancelled_before == ROUNDS, timeout=30
    )
    assert fake_openai.active_streams == 0
    assert fake_openai.streams_completed == 0
    # The server is back to idle: no turn, task, Turn object or upstream connection left.
    assert fake_openai.wait_for(
        lambda: (
            (m := scrape(client, server.base_url))["chatbot_active_turns"] == 0
            and m["chatbot_asyncio_tasks"] <= idle["chatbot_asyncio_tasks"]
            # Freed by reference counting alone: none may wait for the cycle collector.
            and m["chatbot_live_turn_objects"] == 0
        ),
        timeout=30,
    ), _idle_report(idle, scrape(client, server.base_url))
    assert fake_openai.wait_for(lambda: fake_openai.open_connections <= idle_connections)
    metrics = scrape(client, server.base_url)
    assert metrics['chatbot_turns_total{outcome="interrupted"}'] >= ROUNDS

    # Every conversation kept its partial reply and is free for the next prompt.
    for app_id in ("c0", f"c{ROUNDS // 2}", f"c{ROUNDS - 1}"):
        history = client.get(f"{server.api}/history/drop/{app_id}").json()
        assert [item.get("interrupted") for item in history] == [None, True]
        fake_openai.on_stream(Script(tokens=["ok"], token_delay=0))
        _, frames = post_prompt(client, server.api, "drop", app_id, "Again?")
        assert frames[-1].type == "end"


def test_disconnect_before_the_first_byte_frees_the_conversation(
    server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    """The client leaves while the classifier is still thinking."""
    fake_openai.on_classify(Script(headers_delay=0.5))
    with pytest.raises(httpx.ReadTimeout):
        client.post(
            f"{server.api}/response/drop/early", json={"prompt": "Why?"}, timeout=httpx.Timeout(0.2)
        )
    fake_openai.on_stream(Script(tokens=["later"]))
    assert fake_openai.wait_for(
        lambda: post_prompt(client, server.api, "drop", "early", "Why now?")[0].status_code == 200
    )
    history = client.get(f"{server.api}/history/drop/early").json()
    assert [item["content"] for item in history if item["role"] == "user"][-1] == "Why now?"
