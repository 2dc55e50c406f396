"""The streaming contract against a real ``chatbot serve`` process on loopback."""

from __future__ import annotations

import json
import threading

import httpx

from tests.support.fake_openai import FakeOpenAI, Script
from tests.support.server_process import ServerProcess
from tests.support.sse_client import iter_frames, post_prompt

CONTRACT_ITEM_KEYS = {"role", "content", "type"}


def test_frames_come_in_contract_order_with_contract_shapes(
    offline_server: ServerProcess, client: httpx.Client
) -> None:
    with client.stream(
        "POST",
        f"{offline_server.api}/response/proj/conv1",
        json={"prompt": "Write a poem about the moon"},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    blocks = [block for block in raw.split("\n\n") if block]
    assert all(block.startswith("data: ") for block in blocks)
    frames = [json.loads(block[len("data: ") :]) for block in blocks]
    types = [frame["type"] for frame in frames]
    assert types[0] == "chat_history" and frames[0]["value"] == []
    assert types[-1] == "end"
    assert set(types[1:-1]) == {"delta"} and len(types) > 10
    assert "[DONE]" not in raw
    end = frames[-1]["value"]
    assert end["mode"] == "generate_poem"
    assert set(end["item"]) == CONTRACT_ITEM_KEYS
    assert end["item"]["role"] == "assistant" and end["item"]["type"] == "text"
    assert "".join(f["value"] for f in frames[1:-1]) == end["item"]["content"]
    assert end["timings"]["first_delta_ms"] > 0
    assert end["timings"]["total_ms"] >= end["timings"]["first_delta_ms"]


def test_first_delta_reaches_the_client_while_upstream_is_still_generating(
    upstream_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    """The upstream holds its stream after one token until the client has seen a delta.

    A server that buffered anything (the reply, or frames) would never show that delta,
    and this test would time out instead of passing.
    """
    gate = threading.Event()
    fake_openai.on_stream(Script(tokens=["first", " second", " third"], gate_after=1, gate=gate))
    with client.stream(
        "POST", f"{upstream_server.api}/response/proj/gated", json={"prompt": "hi?"}, timeout=30
    ) as response:
        frames = iter_frames(response)
        assert next(frames).type == "chat_history"
        first = next(frames)
        assert (first.type, first.value) == ("delta", "first")
        assert fake_openai.streams_completed == 0 and not gate.is_set()
        gate.set()
        rest = list(frames)
    assert "".join(f.value for f in rest if f.type == "delta") == " second third"
    assert rest[-1].type == "end"


def test_deltas_arrive_over_time(offline_server: ServerProcess, client: httpx.Client) -> None:
    _, frames = post_prompt(client, offline_server.api, "proj", "paced", "What is a graph?")
    deltas = [f for f in frames if f.type == "delta"]
    end = frames[-1]
    assert end.type == "end"
    # Arrival times spread over the reply instead of landing together at the end.
    assert len({round(f.at, 3) for f in deltas}) > len(deltas) // 2
    assert deltas[0].at < end.at


def test_history_after_several_turns(offline_server: ServerProcess, client: httpx.Client) -> None:
    prompts = ["What is Burr?", "Write a poem about state", "write python code for fibonacci"]
    ends = []
    for index, prompt in enumerate(prompts):
        history_before = client.get(f"{offline_server.api}/history/proj/multi")
        _, frames = post_prompt(client, offline_server.api, "proj", "multi", prompt)
        if index:
            assert frames[0].value == history_before.json()
        ends.append(frames[-1].value)
    history = client.get(f"{offline_server.api}/history/proj/multi").json()
    assert [item["role"] for item in history] == ["user", "assistant"] * 3
    assert [item["content"] for item in history[::2]] == prompts
    assert history[1::2] == [end["item"] for end in ends]
    assert [end["mode"] for end in ends] == ["answer_question", "generate_poem", "generate_code"]
    assert history[-1]["type"] == "code"


def test_model_receives_the_earlier_turns_as_context(
    upstream_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    fake_openai.on_stream(Script(tokens=["Burr is a state machine library."]))
    fake_openai.on_stream(Script(tokens=["It streams."]))
    post_prompt(client, upstream_server.api, "proj", "ctx", "What is Burr?")
    post_prompt(client, upstream_server.api, "proj", "ctx", "Does it stream?")
    second = fake_openai.streamed_requests()[-1].body["messages"]
    assert second[0]["role"] == "system"
    assert second[1:] == [
        {"role": "user", "content": "What is Burr?"},
        {"role": "assistant", "content": "Burr is a state machine library."},
        {"role": "user", "content": "Does it stream?"},
    ]


def test_openai_path_classifier_picks_the_action_and_tokens_pass_through(
    upstream_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    tokens = ["```python\n", "print(", "'hi'", ")\n", "```"]
    fake_openai.on_classify(Script(answer="The mode is: **Generate_Code**."))
    fake_openai.on_stream(Script(tokens=tokens))
    _, frames = post_prompt(client, upstream_server.api, "proj", "oa", "print hi")
    end = frames[-1]
    assert end.type == "end"
    assert end.value["mode"] == "generate_code"
    assert end.value["item"]["type"] == "code"
    assert "".join(f.value for f in frames if f.type == "delta") == "".join(tokens)

    classify, stream = fake_openai.requests
    assert not classify.stream and classify.body["model"] == "fake-classifier-1"
    assert classify.body["messages"][-1] == {"role": "user", "content": "print hi"}
    assert stream.stream and stream.body["model"] == "fake-chat-1"
    assert classify.headers["authorization"] == "Bearer test-key"


def test_openai_path_each_classifier_answer_routes(
    upstream_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    expected = {
        "generate_poem": "generate_poem",
        "answer_question": "answer_question",
        "I cannot tell.": "prompt_for_more",
    }
    for answer, mode in expected.items():
        fake_openai.on_classify(Script(answer=answer))
        _, frames = post_prompt(client, upstream_server.api, "proj", "routes", "anything")
        assert frames[-1].value["mode"] == mode


def test_a_second_prompt_while_streaming_is_refused_with_409(
    upstream_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    gate = threading.Event()
    fake_openai.on_stream(Script(tokens=["one", " two"], gate_after=1, gate=gate))
    url = f"{upstream_server.api}/response/proj/busy"
    with client.stream("POST", url, json={"prompt": "first?"}) as first:
        frames = iter_frames(first)
        next(frames), next(frames)  # history, first delta: the turn is in progress
        second = client.post(url, json={"prompt": "second?"})
        assert second.status_code == 409
        assert second.json()["error"]["code"] == "conversation_busy"
        gate.set()
        assert list(frames)[-1].type == "end"
    history = client.get(f"{upstream_server.api}/history/proj/busy").json()
    assert [i["content"] for i in history if i["role"] == "user"] == ["first?"]
    _, frames = post_prompt(client, upstream_server.api, "proj", "busy", "third?")
    assert frames[-1].type == "end"


def test_non_streaming_reply_route(offline_server: ServerProcess, client: httpx.Client) -> None:
    response = client.post(
        f"{offline_server.api}/reply/proj/plain", json={"prompt": "Write a poem about tea"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["mode"] == "generate_poem"
    assert body["item"]["role"] == "assistant" and "tea" in body["item"]["content"]
    history = client.get(f"{offline_server.api}/history/proj/plain").json()
    assert history[-1] == body["item"]


def test_create_then_empty_history_and_unknown_is_404(
    offline_server: ServerProcess, client: httpx.Client
) -> None:
    created = client.post(f"{offline_server.api}/create/proj/fresh")
    assert created.status_code == 200 and created.json() == "fresh"
    assert client.get(f"{offline_server.api}/history/proj/fresh").json() == []
    missing = client.get(f"{offline_server.api}/history/proj/never-made")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "conversation_not_found"
