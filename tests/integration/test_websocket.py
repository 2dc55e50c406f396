"""The WebSocket channel against a real ``chatbot serve``, through the ``websockets`` client.

Several turns on one socket, a stop, bad messages, a prompt while a reply streams, closing
as a disconnect, and the three ways to present the API key.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.support.fake_openai import FakeOpenAI, Script
from tests.support.server_process import ServerProcess, StartServer
from tests.support.sse_client import post_prompt

KEY = "socket-s3cret"
TOKENS = [f"t{i} " for i in range(12)]


def socket_url(server: ServerProcess, app: str, project: str = "ws") -> str:
    return f"{server.api.replace('http://', 'ws://', 1)}/ws/{project}/{app}"


def open_socket(server: ServerProcess, app: str, **kwargs) -> ClientConnection:
    # proxy=None: a proxy from the environment must never see loopback test traffic.
    return connect(socket_url(server, app, kwargs.pop("project", "ws")), proxy=None, **kwargs)


def receive(ws: ClientConnection) -> dict:
    return json.loads(ws.recv())


def send(ws: ClientConnection, message: object) -> None:
    ws.send(message if isinstance(message, str | bytes) else json.dumps(message))


def read_turn(ws: ClientConnection) -> list[dict]:
    """Every frame of one turn: ``chat_history`` to its ``end`` or its own ``error``."""
    frames = []
    while True:
        frame = receive(ws)
        frames.append(frame)
        if frame["type"] == "end" or (frame["type"] == "error" and "reply_to" not in frame):
            return frames


def text_of(frames: list[dict]) -> str:
    return "".join(f["value"] for f in frames if f["type"] == "delta")


def folded(frames: list[dict]) -> list[dict]:
    """The frames with each run of deltas joined into one delta of their text.

    How many deltas carry a reply is not part of the contract: tokens that reach the
    server in one upstream read leave as one delta, and a loaded machine merges some.
    The text, the order of the other frames and where the deltas fall among them are.
    """
    out: list[dict] = []
    for frame in frames:
        if frame["type"] == "delta" and out and out[-1]["type"] == "delta":
            out[-1] = {**out[-1], "value": out[-1]["value"] + frame["value"]}
        else:
            out.append(frame)
    return out


def receive_text(ws, text: str) -> list[dict]:
    """Messages up to the delta that completes ``text`` (the reply's beginning).

    Count text, never delta messages: the server joins tokens that arrive from the
    upstream in one network read, so a stream held after n tokens may have sent them in
    fewer than n deltas, and waiting for the n-th would wait for the hold.
    """
    got = [receive(ws)]
    while len(text_of(got)) < len(text):
        got.append(receive(ws))
    assert text_of(got) == text
    return got


def history(client: httpx.Client, server: ServerProcess, app: str, project: str = "ws"):
    response = client.get(f"{server.api}/history/{project}/{app}")
    return response.json() if response.status_code == 200 else response.status_code


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # never leave the fake upstream waiting


def test_three_turns_on_one_socket(
    upstream_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    replies = [["One", " reply."], ["Two", " replies", "."], ["Three."]]
    fake_openai.on_stream(*[Script(tokens=tokens) for tokens in replies])
    prompts = ["First?", "Second?", "Third?"]
    with open_socket(upstream_server, "three") as ws:
        turns = []
        for prompt in prompts:
            send(ws, {"type": "prompt", "prompt": prompt})
            turns.append(read_turn(ws))
    for index, (frames, tokens) in enumerate(zip(turns, replies, strict=True)):
        assert frames[0]["type"] == "chat_history"
        assert len(frames[0]["value"]) == 2 * index  # the turns before this one
        assert [f["type"] for f in folded(frames)[1:]] == ["delta", "end"]
        assert text_of(frames) == "".join(tokens)
        assert frames[-1]["value"]["item"]["content"] == "".join(tokens)
        assert frames[-1]["value"]["mode"] == "answer_question"
    stored = history(client, upstream_server, "three")
    assert [item["content"] for item in stored] == [
        text
        for prompt, tokens in zip(prompts, replies, strict=True)
        for text in (prompt, "".join(tokens))
    ]
    assert turns[2][0]["value"] == stored[:4]


def test_the_frames_are_those_of_the_sse_route(
    upstream_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    def comparable(frames: list[dict]) -> list[dict]:
        # Timings differ from run to run, and so does how the reply's text is split into
        # deltas (see ``folded``); everything else is the same bytes' meaning.
        return [
            {**f, "value": {**f["value"], "timings": None}} if f["type"] == "end" else f
            for f in folded(frames)
        ]

    fake_openai.on_stream(Script(tokens=TOKENS), Script(tokens=TOKENS))
    _, sse = post_prompt(client, upstream_server.api, "ws", "by-sse", "Same?")
    with open_socket(upstream_server, "by-socket") as ws:
        send(ws, {"type": "prompt", "prompt": "Same?"})
        socket = read_turn(ws)
    by_sse = comparable([{"type": f.type, "value": f.value} for f in sse])
    assert [f["type"] for f in by_sse] == ["chat_history", "delta", "end"]
    assert by_sse[1]["value"] == "".join(TOKENS)
    assert comparable(socket) == by_sse


def test_stop_ends_the_reply_keeps_the_partial_and_the_socket_goes_on(
    upstream_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client, gate
) -> None:
    fake_openai.on_stream(Script(tokens=TOKENS, gate_after=4, gate=gate))
    with open_socket(upstream_server, "stopped") as ws:
        send(ws, {"type": "prompt", "prompt": "Long?"})
        seen = receive_text(ws, "".join(TOKENS[:4]))  # then the gate holds
        send(ws, {"type": "stop"})
        rest = read_turn(ws)
        assert rest[-1] == {
            "type": "error",
            "value": {
                "code": "reply_stopped",
                "message": rest[-1]["value"]["message"],
                "retryable": True,
            },
        }
        assert text_of(seen + rest) == "".join(TOKENS[:4])
        assert fake_openai.wait_for(lambda: fake_openai.streams_cancelled == 1)
        assert history(client, upstream_server, "stopped")[-1] == {
            "role": "assistant",
            "content": "".join(TOKENS[:4]),
            "type": "text",
            "interrupted": True,
        }
        # Nothing is running any more: a second stop says so, and the next prompt works.
        send(ws, {"type": "stop"})
        refused = receive(ws)
        assert (refused["value"]["code"], refused["reply_to"]) == ("nothing_to_stop", "stop")
        send(ws, {"type": "prompt", "prompt": "Short?"})
        assert read_turn(ws)[-1]["type"] == "end"
    assert len(history(client, upstream_server, "stopped")) == 4


def test_stop_with_nothing_to_stop(upstream_server: ServerProcess) -> None:
    with open_socket(upstream_server, "never-used") as ws:
        send(ws, {"type": "stop"})
        refused = receive(ws)
    assert refused["value"]["code"] == "conversation_not_found"
    assert refused["reply_to"] == "stop"


BAD_MESSAGES = [
    ("{not json", "invalid_json", None),
    (b"\xff\xfe binary", "invalid_json", None),
    ("[1, 2]", "invalid_message", None),
    ('{"prompt": "no type"}', "invalid_message", None),
    ('{"type": "shout", "prompt": "hi"}', "unknown_type", None),
    ('{"type": "prompt"}', "invalid_message", "prompt"),
    ('{"type": "prompt", "prompt": 42}', "invalid_message", "prompt"),
    ('{"type": "prompt", "prompt": "   "}', "empty_prompt", "prompt"),
    ('{"type": "prompt", "prompt": "' + "x" * 16_001 + '"}', "prompt_too_long", "prompt"),
]


def test_bad_messages_are_answered_and_the_socket_stays_usable(
    upstream_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    with open_socket(upstream_server, "bad") as ws:
        for message, code, reply_to in BAD_MESSAGES:
            send(ws, message)
            answer = receive(ws)
            assert answer["type"] == "error", message
            assert answer["value"]["code"] == code, message
            assert answer["value"]["message"], message
            assert answer["reply_to"] == reply_to, message
        # Nothing was started or stored by any of them.
        assert history(client, upstream_server, "bad") == 404
        assert fake_openai.requests == []
        send(ws, {"type": "prompt", "prompt": "Still there?"})
        frames = read_turn(ws)
    assert text_of(frames) == "Hello from the fake upstream."
    assert len(history(client, upstream_server, "bad")) == 2


def test_a_prompt_while_a_reply_streams_is_refused_and_the_reply_goes_on(
    upstream_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client, gate
) -> None:
    fake_openai.on_stream(Script(tokens=TOKENS, gate_after=3, gate=gate))
    with open_socket(upstream_server, "busy") as ws:
        send(ws, {"type": "prompt", "prompt": "First?"})
        seen = receive_text(ws, "".join(TOKENS[:3]))  # then the gate holds
        send(ws, {"type": "prompt", "prompt": "Second, too early?"})
        refused = receive(ws)
        gate.set()
        rest = read_turn(ws)
    assert refused["type"] == "error"
    assert (refused["value"]["code"], refused["reply_to"]) == ("reply_in_progress", "prompt")
    assert refused["value"]["retryable"] is True
    assert rest[-1]["type"] == "end"
    assert text_of(seen + rest) == "".join(TOKENS)
    assert len(fake_openai.streamed_requests()) == 1
    assert [item["content"] for item in history(client, upstream_server, "busy")] == [
        "First?",
        "".join(TOKENS),
    ]


def test_closing_the_socket_is_a_disconnect_not_a_stop(
    upstream_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client, gate
) -> None:
    # The upstream holds the reply until the socket is closed: it cannot end before.
    fake_openai.on_stream(Script(tokens=TOKENS, token_delay=0.02, gate_after=2, gate=gate))
    with open_socket(upstream_server, "left") as ws:
        send(ws, {"type": "prompt", "prompt": "Go?"})
        seen = receive_text(ws, "".join(TOKENS[:2]))  # then the gate holds
        assert seen[0]["type"] == "chat_history"
    assert fake_openai.streams_completed == 0
    gate.set()
    assert fake_openai.wait_for(lambda: fake_openai.streams_completed == 1)
    assert fake_openai.streams_cancelled == 0
    assert fake_openai.wait_for(lambda: len(history(client, upstream_server, "left")) == 2)
    assert history(client, upstream_server, "left")[-1] == {
        "role": "assistant",
        "content": "".join(TOKENS),
        "type": "text",
    }


def test_with_on_disconnect_cancel_closing_the_socket_ends_the_reply(
    fake_openai: FakeOpenAI, serve: StartServer, client: httpx.Client, gate
) -> None:
    server = serve(upstream=fake_openai, CHATBOT_ON_DISCONNECT="cancel")
    try:
        fake_openai.on_stream(Script(tokens=TOKENS, gate_after=2, gate=gate))
        with open_socket(server, "cancelled") as ws:
            send(ws, {"type": "prompt", "prompt": "Go?"})
            seen = receive_text(ws, "".join(TOKENS[:2]))  # then the gate holds
            assert seen[0]["type"] == "chat_history"
        assert fake_openai.wait_for(lambda: fake_openai.streams_cancelled == 1)
        assert fake_openai.wait_for(lambda: len(history(client, server, "cancelled")) == 2)
        assert history(client, server, "cancelled")[-1] == {
            "role": "assistant",
            "content": "".join(TOKENS[:2]),
            "type": "text",
            "interrupted": True,
        }
    finally:
        server.stop()


@pytest.mark.parametrize("app", ["has.dot", "x" * 65, "new%0Aline"])
def test_bad_ids_close_the_socket_with_a_policy_violation(
    upstream_server: ServerProcess, app: str
) -> None:
    with open_socket(upstream_server, app) as ws:
        answer = receive(ws)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv()
    assert answer["value"]["code"] == "invalid_id"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


def test_pages_of_another_origin_may_not_open_the_socket(
    upstream_server: ServerProcess,
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        open_socket(upstream_server, "origin", origin="http://evil.example")
    assert refused.value.response.status_code == 403
    # The UI's own origin may.
    with open_socket(upstream_server, "origin", origin=upstream_server.base_url) as ws:
        send(ws, {"type": "stop"})
        assert receive(ws)["value"]["code"] == "conversation_not_found"


# --- the API key ------------------------------------------------------------------------------
@pytest.fixture
def keyed_server(serve: StartServer) -> ServerProcess:
    return serve(CHATBOT_API_KEY=KEY)


def one_turn(ws: ClientConnection) -> list[dict]:
    send(ws, {"type": "prompt", "prompt": "Write a poem about keys"})
    return read_turn(ws)


def test_the_key_in_the_authorization_header(keyed_server: ServerProcess) -> None:
    with open_socket(
        keyed_server, "by-header", additional_headers={"Authorization": f"Bearer {KEY}"}
    ) as ws:
        assert one_turn(ws)[-1]["type"] == "end"


def test_the_session_cookie(keyed_server: ServerProcess, client: httpx.Client) -> None:
    started = client.post(f"{keyed_server.api}/session", headers={"Authorization": f"Bearer {KEY}"})
    assert started.status_code == 204
    cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    with open_socket(keyed_server, "by-cookie", additional_headers={"Cookie": cookie}) as ws:
        assert one_turn(ws)[-1]["type"] == "end"


def test_the_key_as_the_first_message(keyed_server: ServerProcess) -> None:
    with open_socket(keyed_server, "by-message") as ws:
        send(ws, {"type": "auth", "key": KEY})
        assert one_turn(ws)[-1]["type"] == "end"
        assert one_turn(ws)[-1]["type"] == "end"


@pytest.mark.parametrize(
    "first",
    [
        {"type": "auth", "key": "wrong-key"},
        {"type": "prompt", "prompt": "No key at all?"},
        "{not json",
    ],
)
def test_without_the_right_key_the_socket_is_closed(
    keyed_server: ServerProcess, client: httpx.Client, first: object
) -> None:
    with open_socket(
        keyed_server, "refused", additional_headers={"Authorization": "Bearer not-the-key"}
    ) as ws:
        send(ws, first)
        answer = receive(ws)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv()
    assert answer["value"]["code"] == "unauthorized"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    # Nothing was started.
    headers = {"Authorization": f"Bearer {KEY}"}
    assert client.get(f"{keyed_server.api}/history/ws/refused", headers=headers).status_code == 404


def test_other_sockets_under_the_api_need_the_key_in_the_handshake(
    keyed_server: ServerProcess,
) -> None:
    url = f"{keyed_server.base_url.replace('http://', 'ws://')}/api/v0/streaming_chatbot/other"
    with pytest.raises(InvalidStatus) as refused:
        connect(url, proxy=None)
    assert refused.value.response.status_code == 403
