"""Replies that outlive their connection: a disconnect is not a stop, any client can
reattach (``GET /stream``, ``Last-Event-ID``) and an explicit stop keeps the partial reply."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.support.fake_openai import FakeOpenAI, Script
from tests.support.metrics import scrape
from tests.support.server_process import ServerProcess, StartServer
from tests.support.sse_client import Frame, iter_frames, post_prompt, read_text

TOKENS = [f"w{i} " for i in range(40)]


@pytest.fixture
def server(fake_openai: FakeOpenAI, serve: StartServer) -> ServerProcess:
    """Finished replies are kept the default while (half a minute): a
    loaded machine between a reply's end and the test's reattaching changes nothing."""
    return serve(upstream=fake_openai)


@pytest.fixture
def forgetful_server(fake_openai: FakeOpenAI, serve: StartServer) -> ServerProcess:
    """Finished replies are kept one second, for the test of the retention window."""
    return serve(upstream=fake_openai, CHATBOT_REPLY_RETENTION_S="1")


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # never leave the fake upstream waiting


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


def resume(
    client: httpx.Client,
    server: ServerProcess,
    app: str,
    last_id: str | None,
    release: threading.Event | None = None,
) -> list:
    """Reattach and read to the end; ``release`` opens the upstream's gate once attached."""
    headers = {"Last-Event-ID": last_id} if last_id else {}
    with client.stream(
        "GET", f"{server.api}/stream/resume/{app}", headers=headers, timeout=30
    ) as response:
        assert response.status_code == 200
        if release is not None:
            release.set()
        return list(iter_frames(response))


def deltas(frames: list[Frame]) -> str:
    return "".join(str(f.value) for f in frames if f.type == "delta")


def history(client: httpx.Client, server: ServerProcess, app: str) -> list[dict]:
    return client.get(f"{server.api}/history/resume/{app}").json()


def test_a_client_that_leaves_does_not_stop_the_reply(
    server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client, gate
) -> None:
    # The upstream holds the reply until the client has left: it cannot end before.
    fake_openai.on_stream(Script(tokens=TOKENS, token_delay=0.01, gate_after=2, gate=gate))
    with client.stream(
        "POST", f"{server.api}/response/resume/gone", json={"prompt": "Why?"}, timeout=30
    ) as response:
        got = read_text(iter_frames(response), "".join(TOKENS[:2]))  # then the gate holds
    assert got[0].type == "chat_history"
    assert fake_openai.streams_completed == 0
    gate.set()
    assert fake_openai.wait_for(lambda: fake_openai.streams_completed == 1)
    assert fake_openai.streams_cancelled == 0
    assert fake_openai.wait_for(lambda: len(history(client, server, "gone")) == 2)
    assert history(client, server, "gone")[-1] == {
        "role": "assistant",
        "content": "".join(TOKENS),
        "type": "text",
    }


def test_reattaching_without_an_id_replays_history_and_every_delta(
    server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client, gate
) -> None:
    post_prompt(client, server.api, "resume", "replay", "First?")
    # Held mid-way until the second reader is attached: it reattaches to a running reply.
    fake_openai.on_stream(Script(tokens=TOKENS, token_delay=0.01, gate_after=4, gate=gate))
    with client.stream(
        "POST", f"{server.api}/response/resume/replay", json={"prompt": "Second?"}, timeout=30
    ) as response:
        read_text(iter_frames(response), "".join(TOKENS[:4]))  # then the gate holds
    frames = resume(client, server, "replay", None, release=gate)
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
        # Held after 20 tokens until the reader is back, so the cut always falls inside
        # the reply whatever the machine's pace.
        gate = threading.Event()
        fake_openai.on_stream(Script(tokens=TOKENS, token_delay=0.005, gate_after=20, gate=gate))
        try:
            # Start it, and follow it through the resumable route up to a random point:
            # one of the three frames before the reply's text, or after its first tokens
            # (counted in text: tokens the server read at once are one delta).
            read_some(
                client,
                f"{server.api}/response/resume/{app}",
                1,
                method="POST",
                json={"prompt": "Go on?"},
            )
            cut = rng.randint(1, 23)
            url = f"{server.api}/stream/resume/{app}"
            if cut <= 3:
                first = read_some(client, url, cut)
            else:
                with client.stream("GET", url, timeout=30) as response:
                    first = read_text(iter_frames(response), "".join(TOKENS[: cut - 3]))
            rest = resume(client, server, app, first[-1].id, release=gate)
        finally:
            gate.set()
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
    forgetful_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    server = forgetful_server
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
