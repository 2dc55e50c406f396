"""Resume and stop through a process other than the one writing the reply.

Each test runs on three deployments: two servers on one SQLite file, ``--workers 2`` on
SQLite, and two servers on one PostgreSQL database. Process 0 runs the turn; every
resume and stop goes through process 1, which has no reply of the conversation in
memory and asks through the database (``chatbot.relay``).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.deployments import Deployment
from tests.support.fake_openai import FakeOpenAI, Script
from tests.support.metrics import scrape
from tests.support.postgres import postgres_server, postgres_url  # noqa: F401 (fixtures)
from tests.support.server_process import StartServer
from tests.support.sse_client import Frame, iter_frames, post_prompt, read_text
from tests.support.workers import worker_pids

TOKENS = [f"w{i} " for i in range(40)]
HOLDER, OTHER = 0, 1
# Short, so the tests can see finished replies leave memory and their rows leave the table.
RETENTION_S = "5"
_RELAY_ENV = {"CHATBOT_REPLY_RETENTION_S": RETENTION_S, "CHATBOT_TURN_LEASE_TTL_S": "10"}


def _sqlite_file(home: Path) -> Path:
    return home / ".local" / "share" / "burr-chatbot" / "chatbot.sqlite3"


_POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)


def _deploy(
    kind: str, request: pytest.FixtureRequest, serve: StartServer, home: Path, fake: FakeOpenAI
) -> Deployment:
    if kind == "sqlite-servers":
        # One HOME: the same SQLite file.
        servers = [serve(upstream=fake, **_RELAY_ENV) for _ in range(2)]
        return Deployment(kind, servers, sqlite_file=_sqlite_file(home))
    if kind == "sqlite-workers":
        server = serve("--workers", "2", upstream=fake, **_RELAY_ENV)
        made = Deployment(kind, [server], sqlite_file=_sqlite_file(home))
        made.workers = worker_pids(server, 2)
        return made
    url = request.getfixturevalue("postgres_url")
    homes = [home.parent / "machine-a", home.parent / "machine-b"]
    for machine in homes:  # a HOME each, as on two machines
        machine.mkdir()
    with ThreadPoolExecutor(2) as pool:
        started = [
            pool.submit(serve, home=h, upstream=fake, CHATBOT_DATABASE_URL=url, **_RELAY_ENV)
            for h in homes
        ]
    return Deployment(kind, [f.result() for f in started], database_url=url)


@pytest.fixture(params=["sqlite-servers", "sqlite-workers", _POSTGRES])
def deployment(
    request: pytest.FixtureRequest, home: Path, fake_openai: FakeOpenAI, serve: StartServer
) -> Iterator[Deployment]:
    made = _deploy(request.param, request, serve, home, fake_openai)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture(params=["sqlite-servers", _POSTGRES])
def two_servers(
    request: pytest.FixtureRequest, home: Path, fake_openai: FakeOpenAI, serve: StartServer
) -> Iterator[Deployment]:
    """Separate server processes (a dead worker would be replaced by uvicorn at once)."""
    made = _deploy(request.param, request, serve, home, fake_openai)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def sqlite_servers(
    request: pytest.FixtureRequest, home: Path, fake_openai: FakeOpenAI, serve: StartServer
) -> Iterator[Deployment]:
    made = _deploy("sqlite-servers", request, serve, home, fake_openai)
    try:
        yield made
    finally:
        made.close()


def _deltas(frames: list[Frame]) -> str:
    return "".join(str(f.value) for f in frames if f.type == "delta")


def _history(deployment: Deployment, app: str, n: int = OTHER) -> list[dict]:
    response = deployment.client(n).get(f"{deployment.api(n)}/history/proj/{app}")
    assert response.status_code == 200, response.text
    return response.json()


def _start(deployment: Deployment, app: str, prompt: str = "Go on?") -> None:
    """Start a reply on the holder and leave (the reply goes on: a disconnect is no stop)."""
    client = deployment.client(HOLDER)
    with client.stream(
        "POST", f"{deployment.api(HOLDER)}/response/proj/{app}", json={"prompt": prompt}
    ) as response:
        assert response.status_code == 200, response.read()
        deployment.check_reached(response, HOLDER)
        assert next(iter_frames(response)).type == "chat_history"


def _read(
    deployment: Deployment,
    app: str,
    last_id: str | None = None,
    frames_wanted: int = 0,
    text_wanted: str = "",
) -> list[Frame]:
    """``GET /stream`` through the other process: every frame, the first few, or those
    up to the end of ``text_wanted`` (``read_text``)."""
    headers = {"Last-Event-ID": last_id} if last_id else {}
    got: list[Frame] = []
    client = deployment.client(OTHER)
    url = f"{deployment.api(OTHER)}/stream/proj/{app}"
    with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200, (response.status_code, response.read())
        deployment.check_reached(response, OTHER)
        frames = iter_frames(response)
        if text_wanted:
            return read_text(frames, text_wanted)
        for frame in frames:
            got.append(frame)
            if len(got) == frames_wanted:
                break
    return got


def _wait_for_turns(fake: FakeOpenAI, deployment: Deployment, app: str, items: int) -> None:
    assert fake.wait_for(lambda: len(_history(deployment, app)) == items, timeout=30)


def test_resuming_through_another_process_gives_exactly_the_stored_reply(
    deployment: Deployment, fake_openai: FakeOpenAI
) -> None:
    rng = random.Random(14)
    for run in range(6):
        app = f"cut{run}"
        gate = threading.Event()
        fake_openai.on_stream(Script(tokens=TOKENS, token_delay=0.005, gate_after=20, gate=gate))
        _start(deployment, app)
        # Follow it through the other process up to a random point before the hold: in
        # the three frames before the reply's text, or after its first few tokens...
        cut = rng.randint(1, 22)
        if cut <= 3:
            first = _read(deployment, app, frames_wanted=cut)
        else:
            first = _read(deployment, app, text_wanted="".join(TOKENS[: cut - 3]))
        if run % 2:
            # ...and come back after the end (the reply is still kept, for a while).
            gate.set()
            _wait_for_turns(fake_openai, deployment, app, 2)
            rest = _read(deployment, app, first[-1].id)
        else:
            # ...and come back while it is still being written, from where it was cut.
            gate.set()
            rest = _read(deployment, app, first[-1].id)
        assert rest[-1].type == "end", rest[-1]
        _wait_for_turns(fake_openai, deployment, app, 2)
        stored = _history(deployment, app)[-1]["content"]
        assert _deltas(first) + _deltas(rest) == stored == "".join(TOKENS)
        ids = [f.id for f in first + rest if f.id]
        assert len(ids) == len(set(ids)), "no frame is sent twice"
        assert len({i.rpartition(".")[0] for i in ids}) == 1, "one reply, one id"


def test_reading_from_the_start_through_another_process_replays_the_whole_turn(
    deployment: Deployment, fake_openai: FakeOpenAI
) -> None:
    post_prompt(deployment.client(HOLDER), deployment.api(HOLDER), "proj", "whole", "First?")
    fake_openai.on_stream(Script(tokens=TOKENS, token_delay=0.01))
    _start(deployment, "whole", "Second?")
    frames = _read(deployment, "whole")
    assert frames[0].type == "chat_history"
    assert [item["content"] for item in frames[0].value][0] == "First?"
    assert (frames[1].type, frames[1].value) == ("prompt", "Second?")
    assert (frames[2].type, frames[2].value) == ("step", "answer_question")
    assert _deltas(frames) == "".join(TOKENS)
    assert frames[-1].type == "end"
    assert frames[-1].value["item"]["content"] == "".join(TOKENS)
    assert all(f.id for f in frames[1:])


def test_stopping_through_another_process_keeps_the_partial_reply(
    deployment: Deployment, fake_openai: FakeOpenAI
) -> None:
    gate = threading.Event()
    fake_openai.on_stream(Script(tokens=TOKENS, token_delay=0.001, gate_after=5, gate=gate))
    holder = deployment.client(HOLDER)
    try:
        with holder.stream(
            "POST", f"{deployment.api(HOLDER)}/response/proj/stopme", json={"prompt": "Long?"}
        ) as response:
            deployment.check_reached(response, HOLDER)
            frames = iter_frames(response)
            seen = read_text(frames, "".join(TOKENS[:5]))  # then the gate holds
            stopped = deployment.client(OTHER).post(f"{deployment.api(OTHER)}/stop/proj/stopme")
            rest = list(frames)
    finally:
        gate.set()
    assert stopped.status_code == 200, stopped.text
    body = stopped.json()
    partial = {"role": "assistant", "content": "".join(TOKENS[:5]), "type": "text"}
    assert body == {
        "app_id": "stopme",
        "mode": "answer_question",
        "item": {**partial, "interrupted": True},
    }
    # The holder's own reader hears why its reply ended.
    assert rest[-1].type == "error" and rest[-1].value["code"] == "reply_stopped"
    assert _deltas(seen + rest) == "".join(TOKENS[:5])
    assert fake_openai.wait_for(lambda: fake_openai.streams_cancelled == 1)
    assert _history(deployment, "stopme")[-1] == body["item"]
    # Nothing is left to stop; a conversation that does not exist is a 404.
    other = deployment.client(OTHER)
    again = other.post(f"{deployment.api(OTHER)}/stop/proj/stopme")
    assert again.status_code == 409 and again.json()["error"]["code"] == "nothing_to_stop"
    assert other.post(f"{deployment.api(OTHER)}/stop/proj/nope").status_code == 404


def test_a_reader_through_another_process_hears_the_stop_too(
    deployment: Deployment, fake_openai: FakeOpenAI
) -> None:
    gate = threading.Event()
    fake_openai.on_stream(Script(tokens=TOKENS, token_delay=0.001, gate_after=8, gate=gate))
    try:
        _start(deployment, "heard")
        client = deployment.client(OTHER)
        with client.stream("GET", f"{deployment.api(OTHER)}/stream/proj/heard") as response:
            assert response.status_code == 200
            frames = iter_frames(response)
            seen = read_text(frames, "".join(TOKENS[:8]))  # then the gate holds
            stopped = deployment.client(OTHER).post(f"{deployment.api(OTHER)}/stop/proj/heard")
            rest = list(frames)
    finally:
        gate.set()
    assert stopped.status_code == 200, stopped.text
    assert rest[-1].type == "error" and rest[-1].value["code"] == "reply_stopped"
    assert _deltas(seen + rest) == "".join(TOKENS[:8]) == stopped.json()["item"]["content"]


def test_nothing_is_relayed_unless_asked_and_nothing_stays(
    deployment: Deployment, fake_openai: FakeOpenAI
) -> None:
    other = deployment.client(OTHER)
    api = deployment.api(OTHER)
    # Nothing runs anywhere: no content, no error, and no row written to ask.
    assert other.get(f"{api}/stream/proj/none").status_code == 204
    assert other.post(f"{api}/stop/proj/none").status_code == 404
    _, frames = post_prompt(
        deployment.client(HOLDER), deployment.api(HOLDER), "proj", "plain", "Hi?"
    )
    assert frames[-1].type == "end"
    assert deployment.relay_rows() == 0, "a turn nobody watched elsewhere writes no relay row"

    # Just finished, and still kept by its process: the other one can replay it...
    replay = _read(deployment, "plain")
    assert replay[-1].type == "end" and _deltas(replay) == "".join(fake_openai.tokens)
    assert deployment.relay_rows() > 0
    assert other.post(f"{api}/stop/proj/plain").status_code == 409
    # ...until the retention window has passed; then its rows are gone too.
    assert fake_openai.wait_for(lambda: deployment.relay_rows() == 0, timeout=30)
    assert other.get(f"{api}/stream/proj/plain").status_code == 204
    for n in (HOLDER, OTHER):
        metrics = scrape(deployment.client(n), deployment.server(n).base_url)
        assert metrics["chatbot_relay_mirrors"] == 0
        assert metrics["chatbot_relay_followed"] == 0
        assert metrics["chatbot_replies_kept"] == 0


def test_many_resumes_and_disconnects_leave_nothing_behind(
    sqlite_servers: Deployment, fake_openai: FakeOpenAI
) -> None:
    deployment = sqlite_servers
    fake_openai.token_delay = 0.002
    for index in range(30):
        _start(deployment, f"soak{index}")
        _read(deployment, f"soak{index}", frames_wanted=random.Random(index).randint(1, 8))
    assert fake_openai.wait_for(lambda: fake_openai.streams_completed == 30, timeout=60)

    def settled() -> bool:
        if deployment.relay_rows():
            return False
        for n in (HOLDER, OTHER):
            metrics = scrape(deployment.client(n), deployment.server(n).base_url)
            gauges = ("chatbot_relay_mirrors", "chatbot_relay_followed", "chatbot_replies_kept")
            if any(metrics[g] for g in gauges):
                return False
        return True

    assert fake_openai.wait_for(settled, timeout=60)
    for index in range(30):
        assert _history(deployment, f"soak{index}")[-1]["content"] == "".join(fake_openai.tokens)


def test_a_reply_whose_process_died_cannot_be_read_elsewhere(
    two_servers: Deployment, fake_openai: FakeOpenAI
) -> None:
    deployment = two_servers
    gate = threading.Event()
    fake_openai.on_stream(Script(tokens=TOKENS, token_delay=0.001, gate_after=4, gate=gate))
    try:
        _start(deployment, "orphan")
        client = deployment.client(OTHER)
        with client.stream("GET", f"{deployment.api(OTHER)}/stream/proj/orphan") as response:
            assert response.status_code == 200
            frames = iter_frames(response)
            seen = read_text(frames, "".join(TOKENS[:4]))  # then the gate holds
            deployment.servers[HOLDER].kill()
            # The follower notices nobody writes the reply any more (its lease lapses),
            # and the stream ends as interrupted: the reply was lost with its writer.
            rest = list(frames)
    finally:
        gate.set()
    assert [f.type for f in seen[:3]] == ["chat_history", "prompt", "step"]
    assert _deltas(seen) == "".join(TOKENS[:4])
    assert [f.type for f in rest] == ["error"], rest
    assert rest[0].value["code"] == "reply_lost"
    assert rest[0].value["retryable"] is True
    other = deployment.client(OTHER)
    assert other.get(f"{deployment.api(OTHER)}/stream/proj/orphan").status_code == 204
    assert other.post(f"{deployment.api(OTHER)}/stop/proj/orphan").status_code == 409


def test_a_turn_whose_process_died_is_stored_as_lost_by_another(
    two_servers: Deployment, fake_openai: FakeOpenAI
) -> None:
    """Once the dead process's lease lapses, a live one stores the cut turn (its prompt and
    a ``reply_lost`` error item) without being asked, and the conversation goes on."""
    deployment = two_servers
    other = deployment.client(OTHER)
    response, frames = post_prompt(other, deployment.api(OTHER), "proj", "cut", "First?")
    assert response.status_code == 200 and frames[-1].type == "end", frames[-1]
    before = _history(deployment, "cut")
    assert [item["role"] for item in before] == ["user", "assistant"]

    gate = threading.Event()
    fake_openai.on_stream(Script(tokens=TOKENS, token_delay=0.001, gate_after=4, gate=gate))
    try:
        _start(deployment, "cut", prompt="Write a poem about the night ferry")
        assert fake_openai.wait_for(lambda: fake_openai.streams_held == 1, timeout=30)
        deployment.servers[HOLDER].kill()
    finally:
        gate.set()

    # Nobody writes to the conversation: the survivor's look for lapsed leases stores it.
    def stored() -> list[dict] | None:
        history = _history(deployment, "cut")
        return history if len(history) > len(before) else None

    assert fake_openai.wait_for(stored, timeout=60), _history(deployment, "cut")
    after = _history(deployment, "cut")
    assert after[:2] == before
    assert after[2:] == [
        {"role": "user", "content": "Write a poem about the night ferry", "type": "text"},
        {
            "role": "assistant",
            "content": "The server writing this reply stopped before it ended; "
            "send your message again.",
            "type": "error",
        },
    ]
    # Stored once: it stays as it is, and the next prompt continues after it.
    response, frames = post_prompt(other, deployment.api(OTHER), "proj", "cut", "Again?")
    assert response.status_code == 200 and frames[-1].type == "end", frames[-1]
    final = _history(deployment, "cut")
    assert final[:4] == after
    assert [item["role"] for item in final[4:]] == ["user", "assistant"]
    assert final[4]["content"] == "Again?"
