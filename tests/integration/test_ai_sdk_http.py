"""``POST /api/chat`` on the wire: exact parts and headers, bad bodies, stop, busy, branches.

What the AI SDK's client makes of the stream is tested with the client itself
(test_ai_sdk.py); this module pins what the server sends and refuses.
"""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from tests.support.fake_openai import FakeOpenAI, Script
from tests.support.server_process import ServerProcess, StartServer

PROJECT = "demo_streaming_chatbot"
TOKENS = ["Rivers", " run", " to", " the", " sea", "."]
# Every field the AI SDK's schema defines for the parts we send (and nothing else).
ALLOWED_FIELDS = {
    "start": {"type", "messageId", "messageMetadata"},
    "data-route": {"type", "id", "data", "transient"},
    "text-start": {"type", "id", "providerMetadata"},
    "text-delta": {"type", "id", "delta", "providerMetadata"},
    "text-end": {"type", "id", "providerMetadata"},
    "message-metadata": {"type", "messageMetadata"},
    "error": {"type", "errorText"},
    "finish": {"type", "messageMetadata"},
    "abort": {"type"},
}


@pytest.fixture
def server(fake_openai: FakeOpenAI, serve: StartServer) -> ServerProcess:
    return serve(upstream=fake_openai)


def user(text: str, message_id: str = "u1") -> dict:
    return {"id": message_id, "role": "user", "parts": [{"type": "text", "text": text}]}


def assistant(text: str, message_id: str = "a1") -> dict:
    return {"id": message_id, "role": "assistant", "parts": [{"type": "text", "text": text}]}


def chat_body(chat_id: str, *messages: dict, **extra: object) -> dict:
    return {"id": chat_id, "messages": list(messages), "trigger": "submit-message", **extra}


def read_parts(response: httpx.Response) -> list[dict | str]:
    """The stream's ``data:`` payloads in order (``[DONE]`` as the string)."""
    parts: list[dict | str] = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            data = line[len("data: ") :]
            parts.append(data if data == "[DONE]" else json.loads(data))
        else:
            assert line == "", f"an SSE line that is not data: {line!r}"
    return parts


def post_chat(
    client: httpx.Client, url: str, body: dict
) -> tuple[httpx.Response, list[dict | str]]:
    with client.stream("POST", url, json=body, timeout=60) as response:
        if response.status_code != 200:
            response.read()
            return response, []
        return response, read_parts(response)


def types(parts: list[dict | str]) -> list[str]:
    return [p if isinstance(p, str) else p["type"] for p in parts]


def history(client: httpx.Client, server: ServerProcess, chat_id: str) -> httpx.Response:
    return client.get(f"{server.api}/history/{PROJECT}/{chat_id}")


def test_a_reply_is_one_message_in_the_protocols_parts(
    server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    fake_openai.on_stream(Script(tokens=TOKENS))
    response, parts = post_chat(
        client, f"{server.base_url}/api/chat", chat_body("wire", user("Where do rivers go?"))
    )
    assert response.status_code == 200
    assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert response.headers["content-type"].startswith("text/event-stream")
    # Tokens that reach the server in one upstream read leave as one delta (a loaded
    # machine merges some), so the order is checked with each run of deltas folded to one.
    kinds = types(parts)
    folded = [k for i, k in enumerate(kinds) if k != "text-delta" or kinds[i - 1] != k]
    assert folded == [
        "start",
        "data-route",
        "text-start",
        "text-delta",
        "text-end",
        "message-metadata",
        "finish",
        "[DONE]",
    ]
    for part in parts[:-1]:
        assert isinstance(part, dict)
        assert set(part) <= ALLOWED_FIELDS[part["type"]], part
    # The prompt rides on the start, for a client that reattached without it (a reload).
    assert parts[0]["messageMetadata"] == {"prompt": "Where do rivers go?"}
    assert parts[1]["data"] == {"mode": "answer_question"}
    text_ids = {p["id"] for p in parts if isinstance(p, dict) and p["type"].startswith("text-")}
    assert len(text_ids) == 1
    deltas = "".join(p["delta"] for p in parts if isinstance(p, dict) and "delta" in p)
    assert deltas == "".join(TOKENS)
    metadata = parts[-3]["messageMetadata"]
    assert (metadata["outcome"], metadata["mode"]) == ("completed", "answer_question")
    assert metadata["timings"]["total_ms"] > 0
    assert history(client, server, "wire").json()[-1]["content"] == deltas


BAD_BODIES = [
    (chat_body("a/b", user("Hi?")), 422, "invalid_request"),
    (chat_body("x" * 65, user("Hi?")), 422, "invalid_request"),
    (chat_body("bad"), 422, "invalid_request"),
    ({"id": "bad", "trigger": "submit-message"}, 422, "invalid_request"),
    (chat_body("bad", user("Hi?"), trigger="resume-stream"), 422, "invalid_request"),
    (
        chat_body("bad", {"id": "u", "role": "user", "parts": [{"type": "text"}]}),
        422,
        "invalid_request",
    ),
    (chat_body("bad", {"id": "u", "role": "robot", "parts": []}), 422, "invalid_request"),
    (chat_body("bad", user("Hi?"), assistant("Hello.")), 422, "last_message_not_from_user"),
    (chat_body("bad", user("   ")), 422, "empty_prompt"),
    # Every message has a part (the schema's minItems), every user message text.
    (chat_body("bad", {"id": "u", "role": "user", "parts": []}), 422, "invalid_request"),
    (
        chat_body("bad", {"id": "a", "role": "assistant", "parts": []}, user("Hi?")),
        422,
        "invalid_request",
    ),
    (chat_body("bad", user(" \n"), assistant("Hello."), user("Hi?", "u2")), 422, "empty_prompt"),
    (
        chat_body(
            "bad",
            {
                "id": "u",
                "role": "user",
                "parts": [
                    {"type": "file", "mediaType": "image/png", "url": "data:image/png;base64,"},
                    {"type": "text", "text": "What is this?"},
                ],
            },
        ),
        422,
        "unsupported_part",
    ),
    (chat_body("bad", user("x" * 16_001)), 422, "prompt_too_long"),
    # A file is refused in any user message, not only the last: the chatbot reads text.
    (
        chat_body(
            "bad",
            {"id": "f", "role": "user", "parts": [{"type": "file", "url": "data:,"}]},
            assistant("Hello."),
            user("Hi?", "u2"),
        ),
        422,
        "unsupported_part",
    ),
    # A regenerate of a turn the server never stored (and not the one being sent).
    (
        chat_body(
            "bad", user("A?"), assistant("B."), user("C?", "u2"), trigger="regenerate-message"
        ),
        409,
        "turn_not_found",
    ),
]


def test_bad_bodies_are_refused_and_change_nothing(
    server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    # One server for every case: each leaves nothing behind for the next to trip on.
    for body, status, code in BAD_BODIES:
        response = client.post(f"{server.base_url}/api/chat", json=body)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), body
    assert history(client, server, "bad").status_code == 404
    assert fake_openai.requests == []


def test_a_body_that_is_not_json_is_refused(server: ServerProcess, client: httpx.Client) -> None:
    url = f"{server.base_url}/api/chat"
    response = client.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_json")
    response = client.post(url, content=b"id=x", headers={"content-type": "text/plain"})
    assert (response.status_code, response.json()["error"]["code"]) == (
        415,
        "unsupported_media_type",
    )


def test_fields_the_app_adds_to_the_body_are_accepted(
    server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    """The transport's ``body`` option and UI-only message fields come along; not read."""
    message = {**user("Hi?"), "metadata": {"createdAt": 1}}
    message["parts"].insert(0, {"type": "step-start"})
    response, parts = post_chat(
        client,
        f"{server.base_url}/api/chat",
        chat_body("extras", message, messageId=None, temperature=0.2),
    )
    assert response.status_code == 200, response.text
    assert types(parts)[-2:] == ["finish", "[DONE]"]


def test_the_stop_route_ends_the_message_with_abort(
    server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    gate = threading.Event()
    fake_openai.on_stream(Script(tokens=TOKENS, gate_after=2, gate=gate))
    try:
        with client.stream(
            "POST", f"{server.base_url}/api/chat", json=chat_body("stop", user("Go?")), timeout=30
        ) as response:
            lines = response.iter_lines()
            # Up to the hold, counted in text: two tokens the server read at once are one
            # text-delta, so waiting for a second part could wait for the gate.
            text = ""
            while len(text) < len("Rivers run"):
                line = next(lines)
                if line.startswith("data: {"):
                    text += json.loads(line[6:]).get("delta", "")
            assert text == "Rivers run"
            stopped = client.post(f"{server.api}/stop/{PROJECT}/stop")
            rest = [
                json.loads(line[6:]) if line != "data: [DONE]" else "[DONE]"
                for line in lines
                if line
            ]
    finally:
        gate.set()
    assert stopped.status_code == 200, stopped.text
    assert types(rest) == ["text-end", "message-metadata", "abort", "[DONE]"]
    assert rest[1]["messageMetadata"] == {"outcome": "stopped", "mode": "answer_question"}
    assert history(client, server, "stop").json()[-1] == {
        "role": "assistant",
        "content": "Rivers run",
        "type": "text",
        "interrupted": True,
    }


def test_a_second_message_while_a_reply_runs_is_409_and_resume_reattaches(
    server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    gate = threading.Event()
    fake_openai.on_stream(Script(tokens=TOKENS, gate_after=3, gate=gate))
    url = f"{server.base_url}/api/chat"
    assert client.get(f"{url}/busy/stream").status_code == 204
    try:
        with client.stream("POST", url, json=chat_body("busy", user("One?")), timeout=30) as first:
            lines = first.iter_lines()
            next(lines)  # the reply has started
            second = client.post(url, json=chat_body("busy", user("Two?", "u2")))
            with client.stream("GET", f"{url}/busy/stream", timeout=30) as resumed:
                assert resumed.headers["x-vercel-ai-ui-message-stream"] == "v1"
                gate.set()
                replay = read_parts(resumed)
    finally:
        gate.set()
    assert (second.status_code, second.json()["error"]["code"]) == (409, "conversation_busy")
    assert types(replay)[:3] == ["start", "data-route", "text-start"]
    assert types(replay)[-2:] == ["finish", "[DONE]"]
    assert "".join(p["delta"] for p in replay if isinstance(p, dict) and "delta" in p) == "".join(
        TOKENS
    )
    # Finished: the client has it all, so there is nothing to resume.
    assert client.get(f"{url}/busy/stream").status_code == 204
    assert client.get(f"{url}/a.b/stream").status_code == 422


def contents(items: list[dict]) -> list[str]:
    return [item["content"] for item in items]


def versions(items: list[dict]) -> dict[int, tuple[int, int]]:
    """The items that have versions: index -> (shown version, number of versions)."""
    return {
        index: (item["branch"]["version"], item["branch"]["versions"])
        for index, item in enumerate(items)
        if "branch" in item
    }


def test_regenerating_or_editing_any_turn_branches_the_conversation(
    server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    url = f"{server.api}/chat"
    replies = ["One.", "Two.", "Two, again.", "One, again."]
    fake_openai.on_stream(*(Script(tokens=[reply]) for reply in replies))
    assert post_chat(client, url, chat_body("regen", user("First?")))[0].status_code == 200
    turn_two = [user("First?"), assistant("One."), user("Second?", "u2")]
    assert post_chat(client, url, chat_body("regen", *turn_two))[0].status_code == 200
    before = history(client, server, "regen").json()
    assert contents(before) == ["First?", "One.", "Second?", "Two."]

    # Editing the last prompt branches at it; the model never sees the prompt it replaces.
    edited = [*turn_two[:2], user("Second, edited?", "u2")]
    response, parts = post_chat(client, url, chat_body("regen", *edited, messageId="u2"))
    assert response.status_code == 200 and types(parts)[-2] == "finish"
    after_edit = history(client, server, "regen").json()
    assert contents(after_edit) == ["First?", "One.", "Second, edited?", "Two, again."]
    assert versions(after_edit) == {2: (1, 2)}
    asked = fake_openai.streamed_requests()[-1].body["messages"]
    assert [m["content"] for m in asked[1:]] == ["First?", "One.", "Second, edited?"]

    # Regenerating the first reply (an earlier turn) branches there: the turn after it
    # stays in the branch it leaves, and the model sees only the first prompt.
    response, parts = post_chat(
        client,
        url,
        chat_body("regen", user("First?"), trigger="regenerate-message", messageId="a1"),
    )
    assert response.status_code == 200 and types(parts)[-2] == "finish"
    regenerated = history(client, server, "regen").json()
    assert contents(regenerated) == ["First?", "One, again."]
    assert versions(regenerated) == {1: (1, 2)}
    asked = fake_openai.streamed_requests()[-1].body["messages"]
    assert [m["content"] for m in asked[1:]] == ["First?"]

    # The versions before are intact: back to the first reply shows the edited branch
    # (the one last shown there), and from it the original second turn.
    listed = client.get(f"{server.api}/branches/{PROJECT}/regen", params={"index": 1}).json()
    assert [v["preview"] for v in listed["versions"]] == ["One.", "One, again."]
    assert listed["shown"] == 1
    back = client.post(f"{server.api}/branches/{PROJECT}/regen", json={"index": 1, "version": 0})
    assert back.status_code == 200, back.text
    assert contents(back.json()) == contents(after_edit)
    first = client.post(f"{server.api}/branches/{PROJECT}/regen", json={"index": 2, "version": 0})
    assert [
        {key: value for key, value in item.items() if key != "branch"} for item in first.json()
    ] == before
    assert history(client, server, "regen").json() == first.json()

    # A regenerate whose prompt was never stored (its first request failed) just runs.
    response, _ = post_chat(
        client, url, chat_body("fresh", user("Lost?"), trigger="regenerate-message")
    )
    assert response.status_code == 200
    assert contents(history(client, server, "fresh").json())[0] == "Lost?"
    assert "branch" not in history(client, server, "fresh").json()[0]


def test_the_chat_routes_need_the_api_key_when_one_is_set(
    fake_openai: FakeOpenAI, serve: StartServer, client: httpx.Client
) -> None:
    process = serve(upstream=fake_openai, CHATBOT_API_KEY="s3cret")
    try:
        url = f"{process.base_url}/api/chat"
        body = chat_body("auth", user("Hi?"))
        assert client.post(url, json=body).status_code == 401
        assert client.get(f"{url}/auth/stream").status_code == 401
        with httpx.Client(headers={"Authorization": "Bearer s3cret"}) as authorized:
            response, parts = post_chat(authorized, url, body)
        assert response.status_code == 200 and types(parts)[-1] == "[DONE]"
    finally:
        process.stop()
