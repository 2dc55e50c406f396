"""The OpenAI-compatible API, driven by the official ``openai`` SDK against a real server.

Every client here is ``openai.OpenAI`` or ``openai.AsyncOpenAI`` pointed at ``/v1``; the
server proxies the offline model, or the fake upstream where a test needs to script it.
"""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import openai
import pytest

from tests.support.fake_openai import STREAM_PROMPT_TOKENS, FakeOpenAI, Script
from tests.support.server_process import ServerProcess, StartServer
from tests.support.snapshot import settled_snapshot

MODEL = "burr-chatbot"
PROJECT = "demo_streaming_chatbot"  # the chat UI's project, where /v1 conversations live
KEY = "sk-test-chatbot-key"


@pytest.fixture(scope="module")
def server(serve_module: StartServer) -> ServerProcess:
    """One offline server for the tests that only read their own conversations."""
    return serve_module()


def sdk(server: ServerProcess, **options) -> openai.OpenAI:
    base_url = f"{server.base_url}/v1"
    return openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, **options)


def async_sdk(server: ServerProcess) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0)


def history(server: ServerProcess, app_id: str) -> list[dict]:
    response = httpx.get(f"{server.api}/history/{PROJECT}/{app_id}")
    assert response.status_code == 200, response.text
    return response.json()


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


def tracking_files(server: ServerProcess, app_id: str) -> dict[str, int]:
    """The conversation's Burr tracking files and their sizes, once pending writes landed."""
    files = settled_snapshot(Path(server.env["HOME"]))["tracking"]
    prefix = f".burr/{PROJECT}/{app_id}/"
    return {name: size for name, size in files.items() if name.startswith(prefix)}


def conversation_ids(server: ServerProcess) -> set[str]:
    page = httpx.get(f"{server.api}/conversations/{PROJECT}", params={"limit": 200}).json()
    return {item["app_id"] for item in page["items"]}


# --- models -----------------------------------------------------------------------------
def test_the_graph_is_listed_as_one_model(server: ServerProcess) -> None:
    client = sdk(server)
    assert [m.id for m in client.models.list()] == [MODEL]
    model = client.models.retrieve(MODEL)
    assert (model.id, model.object) == (MODEL, "model")
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("gpt-4o")
    assert caught.value.code == "model_not_found"


# --- replies ----------------------------------------------------------------------------
def test_a_streamed_reply_comes_in_many_chunks_with_role_finish_and_mode(
    server: ServerProcess,
) -> None:
    with sdk(server).chat.completions.with_streaming_response.create(
        model=MODEL, messages=[user("Write a poem about rivers")], stream=True
    ) as response:
        app_id = response.headers["X-Conversation-Id"]
        assert response.headers["X-Chatbot-Mode"] == "generate_poem"
        chunks = list(response.parse())
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].model_extra["chatbot"] == {"conversation_id": app_id, "mode": "generate_poem"}
    texts = [c.choices[0].delta.content for c in chunks[1:-1]]
    assert len(texts) > 10 and all(texts)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["chatbot"]["mode"] == "generate_poem"
    assert len({c.id for c in chunks}) == 1
    stored = history(server, app_id)
    assert stored == [
        {"role": "user", "content": "Write a poem about rivers", "type": "text"},
        {"role": "assistant", "content": "".join(texts), "type": "text"},
    ]


def test_chunks_are_sent_while_the_upstream_is_still_writing(
    upstream_server: ServerProcess, fake_openai: FakeOpenAI
) -> None:
    gate = threading.Event()
    tokens = ["one", " two", " three", " four"]
    fake_openai.on_stream(Script(tokens=tokens, gate_after=2, gate=gate))
    stream = sdk(upstream_server).chat.completions.create(
        model=MODEL, messages=[user("Count, please?")], stream=True
    )
    try:
        received = ""
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received += chunk.choices[0].delta.content
                if not gate.is_set() and len(received) >= len("one two"):
                    # The upstream holds the rest until the gate opens, so these two tokens
                    # came through while it was still writing. Count text, not chunks: two
                    # tokens the server read at once leave as one chunk.
                    assert received == "one two"
                    assert (fake_openai.streams_held, fake_openai.streams_completed) == (1, 0)
                    gate.set()
        assert gate.is_set(), "the reply ended without its first tokens coming alone"
        assert received == "".join(tokens)
    finally:
        gate.set()
        stream.close()


def test_a_reply_without_stream_is_one_completion_with_usage(server: ServerProcess) -> None:
    raw = sdk(server).chat.completions.with_raw_response.create(
        model=MODEL, messages=[user("Write a Python function for fibonacci")]
    )
    completion = raw.parse()
    assert raw.headers["X-Chatbot-Mode"] == "generate_code"
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content.startswith("```python")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.completion_tokens > len(completion.choices[0].message.content.split())
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    assert completion.model_extra["chatbot"]["mode"] == "generate_code"
    app_id = raw.headers["X-Conversation-Id"]
    assert history(server, app_id)[-1]["type"] == "code"


async def test_the_async_client_streams_and_completes(server: ServerProcess) -> None:
    client = async_sdk(server)
    stream = await client.chat.completions.create(
        model=MODEL, messages=[user("Why is the sky blue?")], stream=True
    )
    pieces = [c.choices[0].delta.content async for c in stream if c.choices]
    assert len([p for p in pieces if p]) > 5
    completion = await client.chat.completions.create(
        model=MODEL, messages=[user("Why is the sea blue?")]
    )
    assert "offline model" in completion.choices[0].message.content
    await client.close()


def test_include_usage_sends_a_usage_chunk_with_no_choices_last(server: ServerProcess) -> None:
    chunks = list(
        sdk(server).chat.completions.create(
            model=MODEL,
            messages=[user("Write a haiku about snow")],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    *replies, last = chunks
    assert last.choices == [] and last.usage is not None
    assert all(c.usage is None for c in replies)
    text = "".join(c.choices[0].delta.content or "" for c in replies)
    # The offline model counts words: the reply's, plus the classifier's one-word label.
    assert last.usage.completion_tokens == len(text.split()) + 1
    assert last.usage.prompt_tokens > 0


def test_usage_adds_what_the_upstream_reported_for_classifier_and_reply(
    upstream_server: ServerProcess, fake_openai: FakeOpenAI
) -> None:
    tokens = ["a", " b", " c"]
    fake_openai.on_stream(Script(tokens=tokens))
    chunks = list(
        sdk(upstream_server).chat.completions.create(
            model=MODEL,
            messages=[user("What is usage?")],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].usage.model_dump(include={"prompt_tokens", "completion_tokens"}) == {
        "prompt_tokens": 1 + STREAM_PROMPT_TOKENS,
        "completion_tokens": 1 + len(tokens),
    }
    (streamed,) = fake_openai.streamed_requests()
    assert streamed.body["stream_options"] == {"include_usage": True}


def test_instructions_and_sampling_reach_the_reply_call_only(
    upstream_server: ServerProcess, fake_openai: FakeOpenAI
) -> None:
    fake_openai.on_stream(Script(tokens=["Oui."]))
    sdk(upstream_server).chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": "Answer in French."}, user("Is it so?")],
        temperature=0.3,
        max_tokens=40,
        stop=["\n\n"],
        seed=3,
        user="someone",
    )
    (classifier,) = fake_openai.classifier_requests()
    (reply,) = fake_openai.streamed_requests()
    assert "French" not in str(classifier.body["messages"])
    assert not {"temperature", "max_tokens", "stop"} & set(classifier.body)
    assert reply.body["messages"][0]["role"] == "system"
    assert reply.body["messages"][0]["content"].endswith("Answer in French.")
    assert (reply.body["temperature"], reply.body["max_tokens"], reply.body["stop"]) == (
        0.3,
        40,
        ["\n\n"],
    )
    assert "seed" not in reply.body and "user" not in reply.body


def test_max_tokens_cuts_the_reply_with_finish_reason_length(server: ServerProcess) -> None:
    completion = sdk(server).chat.completions.create(
        model=MODEL, messages=[user("Write a poem about the moon")], max_completion_tokens=5
    )
    assert completion.choices[0].finish_reason == "length"
    assert len(completion.choices[0].message.content.split()) == 5


# --- which conversation -------------------------------------------------------------------
def test_three_turns_by_resent_messages_stay_in_one_conversation(server: ServerProcess) -> None:
    client = sdk(server)
    messages = [{"role": "system", "content": "Be brief."}]
    app_ids = []
    for prompt in ("What is a river?", "Write a poem about it", "Why do rivers bend?"):
        messages.append(user(prompt))
        raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=messages)
        app_ids.append(raw.headers["X-Conversation-Id"])
        messages.append(assistant(raw.parse().choices[0].message.content))
    assert len(set(app_ids)) == 1
    stored = history(server, app_ids[0])
    assert [(item["role"], item["content"]) for item in stored] == [
        (m["role"], m["content"]) for m in messages[1:]
    ]


async def test_three_turns_by_header_stay_in_one_conversation(server: ServerProcess) -> None:
    client = async_sdk(server)
    prompts = ["What is a lake?", "And a pond?", "Write a poem about both"]
    for prompt in prompts:  # only the new message each time: the server holds the rest
        stream = await client.chat.completions.create(
            model=MODEL,
            messages=[user(prompt)],
            stream=True,
            extra_headers={"X-Conversation-Id": "lakes-by-header"},
        )
        async for _ in stream:
            pass
    stored = history(server, "lakes-by-header")
    assert [item["content"] for item in stored if item["role"] == "user"] == prompts
    assert [item["role"] for item in stored] == ["user", "assistant"] * 3
    assert "lakes-by-header" in conversation_ids(server)
    await client.close()


def test_the_conversation_id_can_come_in_the_body_or_from_open_webui(server: ServerProcess) -> None:
    client = sdk(server)
    client.chat.completions.create(
        model=MODEL, messages=[user("Hello?")], metadata={"conversation_id": "by-metadata"}
    )
    client.chat.completions.create(
        model=MODEL,
        messages=[user("Hello?")],
        extra_headers={"X-OpenWebUI-Chat-Id": "6d3f1c8e-2b9a-4a57-9f0e-3c2d1b0a9e8f"},
    )
    assert len(history(server, "by-metadata")) == 2
    assert len(history(server, "6d3f1c8e-2b9a-4a57-9f0e-3c2d1b0a9e8f")) == 2


def test_a_history_the_named_conversation_never_held_goes_on_in_a_new_one(
    server: ServerProcess,
) -> None:
    client = sdk(server)
    named = {"X-Conversation-Id": "to-be-forked"}
    first = client.chat.completions.create(
        model=MODEL, messages=[user("What is a fork?")], extra_headers=named
    )
    original = history(server, "to-be-forked")
    original_tracking = tracking_files(server, "to-be-forked")
    assert any(name.endswith("log.jsonl") for name in original_tracking)
    # The client edited the assistant's reply (Open WebUI's edit) and goes on from there.
    edited = [user("What is a fork?"), assistant("A tool with tines."), user("And a spoon?")]
    assert first.choices[0].message.content != "A tool with tines."
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=edited, extra_headers=named
    )
    fork_id = raw.headers["X-Conversation-Id"]
    assert fork_id != "to-be-forked"
    assert raw.parse().model_extra["chatbot"]["conversation_id"] == fork_id
    assert history(server, "to-be-forked") == original  # untouched, in Burr's log too
    assert tracking_files(server, "to-be-forked") == original_tracking
    fork = history(server, fork_id)
    assert [(i["role"], i["content"]) for i in fork[:3]] == [
        (m["role"], m["content"]) for m in edited
    ]
    assert len(fork) == 4
    # Naming the original again with the fork's messages goes on in the fork.
    follow = [*edited, assistant(fork[3]["content"]), user("And a knife?")]
    again = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=follow, extra_headers=named
    )
    assert again.headers["X-Conversation-Id"] == fork_id
    assert len(history(server, fork_id)) == 6


def contents(items: list[dict]) -> list[str]:
    return [item["content"] for item in items]


def versions_at(server: ServerProcess, app_id: str, index: int) -> list[str]:
    """``GET /branches``: the previews of the versions of item ``index``, oldest first."""
    response = httpx.get(f"{server.api}/branches/{PROJECT}/{app_id}", params={"index": index})
    assert response.status_code == 200, response.text
    return [version["preview"] for version in response.json()["versions"]]


def test_re_asking_a_turn_of_a_named_conversation_branches_it(
    upstream_server: ServerProcess, fake_openai: FakeOpenAI
) -> None:
    replies = ["A tool.", "Water.", "Water, again.", "Still water.", "Big water."]
    fake_openai.on_stream(*(Script(tokens=[reply]) for reply in replies))
    client = sdk(upstream_server)
    named = {"X-Conversation-Id": "v1-branches"}

    def ask(messages: list[dict]) -> str:
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=messages, extra_headers=named
        )
        assert raw.headers["X-Conversation-Id"] == "v1-branches"  # never a new conversation
        return raw.parse().choices[0].message.content

    original = [user("What is a fork?")]
    original.append(assistant(ask(original)))
    original.append(user("What is a river?"))
    original.append(assistant(ask(original)))
    assert contents(original) == contents(history(upstream_server, "v1-branches"))

    # Regenerating the last reply, as chat front ends do: the messages up to its prompt.
    assert ask(original[:3]) == "Water, again."
    shown = history(upstream_server, "v1-branches")
    assert contents(shown) == [*contents(original[:3]), "Water, again."]
    assert (shown[3]["branch"]["version"], shown[3]["branch"]["versions"]) == (1, 2)
    assert versions_at(upstream_server, "v1-branches", 3) == ["Water.", "Water, again."]
    asked = [m["content"] for m in fake_openai.streamed_requests()[-1].body["messages"]]
    assert "Water." not in asked

    # Editing the second prompt: the same earlier messages, another prompt.
    assert ask([*original[:2], user("What is a lake?")]) == "Still water."
    assert contents(history(upstream_server, "v1-branches")) == [
        "What is a fork?",
        "A tool.",
        "What is a lake?",
        "Still water.",
    ]
    assert versions_at(upstream_server, "v1-branches", 2) == ["What is a river?", "What is a lake?"]

    # A client that still holds the original version goes on in it: it is shown again.
    assert ask([*original, user("And a sea?")]) == "Big water."
    assert contents(history(upstream_server, "v1-branches")) == [
        *contents(original),
        "And a sea?",
        "Big water.",
    ]
    assert conversation_ids(upstream_server) == {"v1-branches"}


def test_a_turn_inside_the_messages_a_conversation_started_from_goes_on_elsewhere(
    server: ServerProcess,
) -> None:
    """No state was stored inside a conversation's seed: re-asking a turn there cannot
    branch, and goes on by the other rules (a new conversation), not in an error."""
    client = sdk(server)
    seed = [user("What is a delta?"), assistant("Where a river meets the sea.")]
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[*seed, user("And an estuary?")]
    )
    seeded = raw.headers["X-Conversation-Id"]
    stored = history(server, seeded)
    again = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[*seed, user("And a lagoon?")],  # an edit of the first stored turn
        extra_headers={"X-Conversation-Id": seeded},
    )
    assert again.headers["X-Conversation-Id"] not in (seeded, "")
    assert history(server, seeded) == stored
    assert contents(history(server, again.headers["X-Conversation-Id"]))[:3] == [
        *contents(seed),
        "And a lagoon?",
    ]


def test_a_conversation_started_here_is_in_the_ui_project_and_in_burrs_ui(
    serve: StartServer, client: httpx.Client
) -> None:
    burr = serve(CHATBOT_BURR_UI_ENABLED="true")
    try:
        raw = sdk(burr).chat.completions.with_raw_response.create(
            model=MODEL, messages=[user("What is Burr?")]
        )
        app_id = raw.headers["X-Conversation-Id"]
        assert app_id in conversation_ids(burr)
        steps = client.get(f"{burr.base_url}/burr/api/v0/{PROJECT}/{app_id}/__none__/apps")
        actions = [step["step_start_log"]["action"] for step in steps.json()["steps"]]
        assert actions == ["prompt", "check_safety", "decide_mode", "answer_question"]
    finally:
        burr.stop()


# --- errors -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "error", "param"),
    [
        ({"model": "gpt-4o"}, openai.NotFoundError, "model"),
        ({"messages": []}, openai.BadRequestError, "messages"),
        ({"n": 2}, openai.BadRequestError, "n"),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
            openai.BadRequestError,
            "tools",
        ),
        ({"response_format": {"type": "json_object"}}, openai.BadRequestError, "response_format"),
        ({"temperature": 3}, openai.BadRequestError, "temperature"),
        (
            {"messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://example.invalid/a.png"}}
            ]}]},
            openai.BadRequestError,
            "messages[0].content[0].type",
        ),
    ],
)
def test_bad_requests_raise_the_sdks_exception_and_change_nothing(
    server: ServerProcess, fields: dict, error: type[openai.APIStatusError], param: str
) -> None:
    home = Path(server.env["HOME"])
    before = settled_snapshot(home)
    request = {"model": MODEL, "messages": [user("Hello?")], **fields}
    with pytest.raises(error) as caught:
        sdk(server).chat.completions.create(**request, extra_headers={"X-Conversation-Id": "bad"})
    assert caught.value.body["param"] == param
    assert set(caught.value.body) == {"message", "type", "param", "code"}
    assert settled_snapshot(home) == before


def test_other_v1_errors_are_in_openais_shape_too(server: ServerProcess) -> None:
    unknown = httpx.get(f"{server.base_url}/v1/engines")
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "invalid_request_error"
    wrong_method = httpx.delete(f"{server.base_url}/v1/chat/completions")
    assert wrong_method.status_code == 405 and "param" in wrong_method.json()["error"]
    not_json = httpx.post(
        f"{server.base_url}/v1/chat/completions",
        content=b"{oops",
        headers={"Content-Type": "application/json"},
    )
    assert not_json.status_code == 400 and not_json.json()["error"]["code"] == "invalid_json"
    huge = sdk(server)
    with pytest.raises(openai.APIStatusError) as caught:
        huge.chat.completions.create(model=MODEL, messages=[user("x" * 300_000)])
    assert caught.value.status_code == 413 and caught.value.body["code"] == "payload_too_large"
    # The rest of the API keeps its own shape.
    ours = httpx.get(f"{server.api}/history/{PROJECT}/nope")
    assert set(ours.json()["error"]) == {"code", "message"}


def test_the_api_key_is_the_sdks_bearer_token(serve: StartServer) -> None:
    protected = serve(CHATBOT_API_KEY=KEY)
    try:
        base = f"{protected.base_url}/v1"
        wrong = openai.OpenAI(base_url=base, api_key="sk-wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as caught:
            wrong.models.list()
        assert caught.value.code == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            wrong.chat.completions.create(model=MODEL, messages=[user("Hi?")])
        right = openai.OpenAI(base_url=base, api_key=KEY, max_retries=0)
        assert right.chat.completions.create(model=MODEL, messages=[user("Hi?")]).choices
    finally:
        protected.stop()


def test_a_busy_conversation_is_a_conflict(
    upstream_server: ServerProcess, fake_openai: FakeOpenAI
) -> None:
    gate = threading.Event()
    fake_openai.on_stream(Script(tokens=["slow", " reply"], gate_after=1, gate=gate))
    client = sdk(upstream_server)
    named = {"X-Conversation-Id": "busy-one"}
    stream = client.chat.completions.create(
        model=MODEL, messages=[user("First?")], stream=True, extra_headers=named
    )
    try:
        next(iter(stream))
        with pytest.raises(openai.ConflictError) as caught:
            client.chat.completions.create(
                model=MODEL, messages=[user("Second?")], extra_headers=named
            )
        assert caught.value.code == "conversation_busy"
    finally:
        gate.set()
        stream.close()


def test_an_upstream_fault_mid_stream_raises_in_the_iterator(
    upstream_server: ServerProcess, fake_openai: FakeOpenAI
) -> None:
    fake_openai.on_stream(Script(tokens=["one", " two", " three", " four"], cut_after=2))
    client = sdk(upstream_server, timeout=30)
    stream = client.chat.completions.create(
        model=MODEL, messages=[user("Will it fail?")], stream=True,
        extra_headers={"X-Conversation-Id": "cut-mid-stream"},
    )
    seen = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                seen.append(chunk.choices[0].delta.content)
    # Text, not chunks: two tokens the server read at once leave as one chunk.
    assert "".join(seen) == "one two"
    assert caught.value.body["code"] == "upstream_stream_cut"
    stored = history(upstream_server, "cut-mid-stream")
    assert stored[1] == {
        "role": "assistant", "content": "one two", "type": "text", "interrupted": True
    }
    assert stored[2]["type"] == "error"


def test_a_failure_before_any_text_is_an_http_error_and_is_stored(
    upstream_server: ServerProcess, fake_openai: FakeOpenAI
) -> None:
    fake_openai.on_classify(*[Script(status=401)])  # not retried: our key is wrong upstream
    with pytest.raises(openai.APIStatusError) as caught:
        sdk(upstream_server).chat.completions.create(
            model=MODEL, messages=[user("Hello?")], stream=True
        )
    assert caught.value.status_code == 502
    assert caught.value.body["code"] == "upstream_auth"
    app_id = caught.value.response.headers["X-Conversation-Id"]
    assert [item["type"] for item in history(upstream_server, app_id)] == ["text", "error"]
    # The client's retry (same messages) goes on in the same conversation.
    retry = sdk(upstream_server).chat.completions.with_raw_response.create(
        model=MODEL, messages=[user("Hello?")], extra_headers={"X-Conversation-Id": app_id}
    )
    assert retry.headers["X-Conversation-Id"] == app_id


def test_a_client_that_leaves_does_not_stop_the_reply(server: ServerProcess) -> None:
    stream = sdk(server).chat.completions.create(
        model=MODEL,
        messages=[user("Write a poem about leaving")],
        stream=True,
        extra_headers={"X-Conversation-Id": "left-early"},
    )
    next(iter(stream))
    stream.close()
    # As on the other route: the reply is written and stored all the same.
    completed = httpx.get(f"{server.api}/stream/{PROJECT}/left-early", timeout=30)
    assert completed.status_code in (200, 204)
    stored = history(server, "left-early")
    assert [item["role"] for item in stored] == ["user", "assistant"]
    assert "interrupted" not in stored[1]


def test_limits_answer_429_and_503_with_retry_after(
    fake_openai: FakeOpenAI, serve: StartServer
) -> None:
    limited = serve(
        upstream=fake_openai,
        CHATBOT_MAX_CONCURRENT_STREAMS="1",
        CHATBOT_RATE_LIMIT_PER_MINUTE="2",
        CHATBOT_RATE_LIMIT_BURST="2",
    )
    gate = threading.Event()
    fake_openai.on_stream(Script(tokens=["held", " open"], gate_after=1, gate=gate))
    client = sdk(limited)
    stream = client.chat.completions.create(model=MODEL, messages=[user("One?")], stream=True)
    try:
        next(iter(stream))
        with pytest.raises(openai.InternalServerError) as overloaded:
            client.chat.completions.create(model=MODEL, messages=[user("Two?")])
        assert overloaded.value.status_code == 503
        assert overloaded.value.body["code"] == "overloaded"
        assert overloaded.value.response.headers["Retry-After"]
        gate.set()
        list(stream)
        with pytest.raises(openai.RateLimitError) as limited_error:
            client.chat.completions.create(model=MODEL, messages=[user("Three?")])
        assert limited_error.value.body["type"] == "rate_limit_error"
        assert int(limited_error.value.response.headers["Retry-After"]) >= 1
    finally:
        gate.set()
        stream.close()
        limited.stop()
