"""Replies that outlive their connection: a disconnect is not a stop, any client can
reattach (``GET /stream``, ``Last-Event-ID``) and an explicit stop keeps the partial reply."""

from __future__ import annotations

import random
import threading

import httpx
import pytest

from tests.support.fake_openai import FakeOpenAI, Script
from tests.support.metrics import scrape
from tests.support.server_process import ServerProcess, StartServer
from tests.support.sse_client import Frame, iter_frames, post_prompt, read_text

TOKENS = [f"w{i} " for i in range(40)]


@pytest.fixture
def server(fake_openai: FakeOpenAI, serve: StartServer) -> ServerProcess:
    return serve(upstream=fake_openai, CHATBOT_REPLY_RETENTION_S="1")


def read_some(client: httpx.Client, url: str, frames_wanted: int, **kwargs) -> list[Frame]:
    """Read ``frames_wanted`` frames, then drop the connection."""
    got: list[Frame] = []
    with client.stream(kwargs.pop("method", "GET"), url, timeout=30, **kwargs) as response:
        assert response.status_code == 200, response.read()
        for frame in iter_frames(response):
            got.append(frame)
            if len(got) == frames_wanted:
                break
    return got


def resume(client: httpx.Client, server: ServerProcess, app: str, last_id: str | None) -> list:
    headers = {"Last-Event-ID": last_id} if last_id else {}
    with client.stream(
        "GET", f"{server.api}/stream/resume/{app}", headers=headers, timeout=30
    ) as response:
        assert response.status_code == 200
        return list(iter_frames(response))


def deltas(frames: list[Frame]) -> str:
    return "".join(str(f.value) for f in frames if f.type == "delta")


def history(client: httpx.Client, server: ServerProcess, app: str) -> list[dict]:
    return client.get(f"{server.api}/history/resume/{app}").json()


def test_a_client_that_leaves_does_not_stop_the_reply(
    server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    fake_openai.on_stream(Script(tokens=TOKENS, token_delay=0.01))
    got = read_some(
        client,
        f"{server.api}/response/resume/gone",
        3,
        method="POST",
        json={"prompt": "Why?"},
    )
    assert [f.type for f in got] == ["chat_history", "delta", "delta"]
    assert fake_openai.wait_for(lambda: fake_openai.streams_completed == 1)
    assert fake_openai.streams_cancelled == 0
    assert fake_openai.wait_for(lambda: len(history(client, server, "gone")) == 2)
    assert history(client, server, "gone")[-1] == {
        "role": "assistant",
        "content": "".join(TOKENS),
        "type": "text",
    }


def test_reattaching_without_an_id_replays_history_and_every_delta(
    server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    post_prompt(client, server.api, "resume", "replay", "First?")
    fake_openai.on_stream(Script(tokens=TOKENS, token_delay=0.01))
    read_some(
        client, f"{server.api}/response/resume/replay", 5, method="POST", json={"prompt": "Second?"}
    )
    frames = resume(client, server, "replay", None)
    assert frames[0].type == "chat_history"
    assert [item["content"] for item in frames[0].value][0] == "First?"
    # The running turn's own prompt and its step, which the history does not have yet.
    assert (frames[1].type, frames[1].value) == ("prompt", "Second?")
    assert (frames[2].type, frames[2].value) == ("step", "answer_question")
    assert deltas(frames) == "".join(TOKENS)
    assert frames[-1].type == "end"
    assert all(f.id for f in frames[1:])


def test_resuming_after_any_frame_gives_exactly_what_was_missed(
    server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    rng = random.Random(7)
    for run in range(12):
        app = f"cut{run}"
        fake_openai.on_stream(Script(tokens=TOKENS, token_delay=0.005))
        # Start it, and follow it through the resumable route up to a random frame.
        read_some(
            client,
            f"{server.api}/response/resume/{app}",
            1,
            method="POST",
            json={"prompt": "Go on?"},
        )
        first = read_some(client, f"{server.api}/stream/resume/{app}", rng.randint(1, 30))
        rest = resume(client, server, app, first[-1].id)
        assert rest[-1].type == "end"
        text = deltas(first) + deltas(rest)
        assert fake_openai.wait_for(lambda a=app: len(history(client, server, a)) == 2)
        assert text == history(client, server, app)[-1]["content"] == "".join(TOKENS)
        ids = [f.id for f in first + rest]
        assert len(ids) == len(set(ids)), "no frame is sent twice"


def test_no_reply_running_answers_204(server: ServerProcess, client: httpx.Client) -> None:
    assert client.get(f"{server.api}/stream/resume/none").status_code == 204


def test_stop_keeps_the_partial_reply_and_ends_every_reader(
    server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    gate = threading.Event()
    fake_openai.on_stream(Script(tokens=TOKENS, token_delay=0.001, gate_after=5, gate=gate))
    with client.stream(
        "POST", f"{server.api}/response/resume/stopme", json={"prompt": "Long?"}, timeout=30
    ) as response:
        frames = iter_frames(response)
        seen = read_text(frames, "".join(TOKENS[:5]))  # then the gate holds
        stopped = client.post(f"{server.api}/stop/resume/stopme")
        rest = list(frames)
    gate.set()
    assert stopped.status_code == 200, stopped.text
    body = stopped.json()
    assert body["item"] == {
        "role": "assistant",
        "content": "".join(TOKENS[:5]),
        "type": "text",
        "interrupted": True,
    }
    assert body["mode"] == "answer_question"
    assert rest[-1].type == "error" and rest[-1].value["code"] == "reply_stopped"
    assert deltas(seen + rest) == "".join(TOKENS[:5])
    assert fake_openai.wait_for(lambda: fake_openai.streams_cancelled == 1)
    assert history(client, server, "stopme")[-1] == body["item"]
    # Nothing left to stop; a conversation that does not exist is a 404.
    assert client.post(f"{server.api}/stop/resume/stopme").status_code == 409
    assert client.post(f"{server.api}/stop/resume/nope").status_code == 404


def test_finished_replies_are_forgotten_after_the_retention_window(
    server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    fake_openai.token_delay = 0.001
    for index in range(100):
        read_some(
            client,
            f"{server.api}/response/resume/many{index}",
            2,
            method="POST",
            json={"prompt": "Hm?"},
        )
    assert fake_openai.wait_for(lambda: fake_openai.streams_completed == 100, timeout=60)
    assert fake_openai.wait_for(
        lambda: (
            (m := scrape(client, server.base_url))["chatbot_replies_kept"] == 0
            and m["chatbot_active_turns"] == 0
            and m["chatbot_live_turn_objects"] == 0
        ),
        timeout=30,
    ), scrape(client, server.base_url)
    assert client.get(f"{server.api}/stream/resume/many0").status_code == 204
