"""Several server processes sharing one real PostgreSQL server.

The PostgreSQL server is started once per session from the installed binaries
(``tests/support/postgres.py``); every test gets a database of its own. The server
processes get a HOME each, as they would on separate machines.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest

from chatbot.domain.chat_items import error_item
from chatbot.domain.chat_items import user_item as _user
from chatbot.domain.errors import REPLY_LOST
from tests.support.fake_openai import FakeOpenAI, Script
from tests.support.postgres import postgres_server, postgres_url  # noqa: F401 (fixtures)
from tests.support.race import race_prompts
from tests.support.server_process import ServerProcess, server_env, start_server
from tests.support.sse_client import iter_frames, post_prompt
from tests.support.workers import worker_pids

# What a turn cut by its process's death is stored with, after its prompt.
REPLY_LOST_ITEM = error_item(REPLY_LOST.message)

pytestmark = pytest.mark.postgres

_SHORT_LEASE = {"CHATBOT_TURN_LEASE_TTL_S": "6"}


def _env(home: Path, url: str, fake: FakeOpenAI, **overrides: str) -> dict[str, str]:
    return server_env(
        home,
        CHATBOT_DATABASE_URL=url,
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=fake.base_url,
        **overrides,
    )


def _start(tmp_path: Path, name: str, url: str, fake: FakeOpenAI, *args: str, **env: str):
    home = tmp_path / name
    home.mkdir()
    return start_server(home, *args, env=_env(home, url, fake, **env))


@pytest.fixture
def pair(
    tmp_path: Path,
    postgres_url: str,  # noqa: F811
    fake_openai: FakeOpenAI,
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two ``chatbot serve`` processes on two ports, one database (started side by side)."""
    with ThreadPoolExecutor(2) as pool:
        futures = [
            # A short lease, so that a crashed process's conversation is free again soon.
            pool.submit(_start, tmp_path, n, postgres_url, fake_openai, **_SHORT_LEASE)
            for n in "ab"
        ]
    started = [f.result() for f in futures if f.exception() is None]
    try:
        if len(started) < 2:
            raise next(f.exception() for f in futures if f.exception() is not None)
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


def _history(client: httpx.Client, server: ServerProcess, app_id: str) -> list[dict]:
    response = client.get(f"{server.api}/history/proj/{app_id}")
    assert response.status_code == 200, response.text
    return response.json()


def test_a_conversation_alternating_between_two_processes_stays_whole(
    pair: tuple[ServerProcess, ServerProcess], fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    expected: list[dict] = []
    prompts = [f"question number {n}?" for n in range(6)]
    for index, prompt in enumerate(prompts):
        server = pair[index % 2]
        fake_openai.on_stream(Script(tokens=[f"answer {index}", " from", f" {server.base_url}"]))
        _, frames = post_prompt(client, server.api, "proj", "shared", prompt)
        # Each process starts the turn from the latest state, whoever stored it.
        assert frames[0].type == "chat_history"
        assert frames[0].value == expected
        assert frames[-1].type == "end", frames[-1]
        expected += [{"role": "user", "content": prompt, "type": "text"}, frames[-1].value["item"]]
        assert frames[-1].value["item"]["content"] == f"answer {index} from {server.base_url}"
    assert _history(client, pair[0], "shared") == expected
    assert _history(client, pair[1], "shared") == expected
    # The model saw the whole conversation so far on either process.
    last_request = fake_openai.streamed_requests()[-1].body["messages"]
    assert [m["content"] for m in last_request if m["role"] == "user"] == prompts
    listing = client.get(f"{pair[0].api}/conversations/proj").json()
    assert listing["items"][0]["app_id"] == "shared"
    assert listing["items"][0]["turns"] == 6
    assert listing["items"][0]["title"] == prompts[0]


@pytest.mark.parametrize("where", ["two processes", "one process"])
def test_simultaneous_prompts_give_one_stream_and_one_409(
    where: str,
    pair: tuple[ServerProcess, ServerProcess],
    fake_openai: FakeOpenAI,
    client: httpx.Client,
) -> None:
    first, second = pair
    targets = [first, second] if where == "two processes" else [first, first]
    post_prompt(client, second.api, "proj", "race", "opening question?")
    history = _history(client, first, "race")
    for round_ in range(3):
        gate = threading.Event()
        fake_openai.on_stream(Script(tokens=["held", " reply"], gate_after=1, gate=gate))
        prompts = [f"round {round_} via A?", f"round {round_} via B?"]
        with httpx.Client(timeout=60) as a, httpx.Client(timeout=60) as b:
            attempts = race_prompts(
                [(a, targets[0].api), (b, targets[1].api)], "proj", "race", prompts, gate
            )
        statuses = sorted(a.status for a in attempts)
        assert statuses == [200, 409], attempts
        winner = next(a for a in attempts if a.status == 200)
        loser = next(a for a in attempts if a.status == 409)
        assert loser.body["error"]["code"] == "conversation_busy"
        assert winner.frames[0].value == history
        assert winner.frames[-1].type == "end"
        winning_prompt = prompts[attempts.index(winner)]
        # Exactly one new turn, the winner's, as both processes see it.
        history = [
            *history,
            {"role": "user", "content": winning_prompt, "type": "text"},
            winner.frames[-1].value["item"],
        ]
        assert _history(client, first, "race") == history
        assert _history(client, second, "race") == history
    assert len(fake_openai.streamed_requests()) == 1 + 3


def test_a_crashed_process_lease_lapses_and_its_turn_is_stored_as_lost(
    pair: tuple[ServerProcess, ServerProcess], fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    first, second = pair
    gate = threading.Event()
    try:
        post_prompt(client, first.api, "proj", "crash", "before the crash?")
        before = _history(client, second, "crash")
        fake_openai.on_stream(Script(tokens=["cut", " off"], gate_after=1, gate=gate))
        with client.stream(
            "POST", f"{first.api}/response/proj/crash", json={"prompt": "during?"}
        ) as response:
            frames = iter_frames(response)
            next(frames), next(frames)  # the turn is streaming on the first process
            first.kill()
        gate.set()
        # The dead process's lease still holds the conversation for a while...
        busy = client.post(f"{second.api}/response/proj/crash", json={"prompt": "too soon?"})
        assert busy.status_code == 409
        assert busy.json()["error"]["code"] == "conversation_busy"
        # ...and then lapses, because nobody renews it.
        deadline = time.monotonic() + 60
        while True:
            response, frames = post_prompt(client, second.api, "proj", "crash", "after?")
            if response.status_code != 409 or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        assert response.status_code == 200
        # The cut turn is stored, its reply lost with the process: never half-written.
        assert frames[0].value == [*before, _user("during?"), REPLY_LOST_ITEM]
        assert frames[-1].type == "end"
        history = _history(client, second, "crash")
        assert [i["content"] for i in history if i["role"] == "user"] == [
            "before the crash?",
            "during?",
            "after?",
        ]
    finally:
        gate.set()


def test_listing_and_deleting_conversations_across_processes(
    pair: tuple[ServerProcess, ServerProcess], fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    first, second = pair
    post_prompt(client, first.api, "proj", "c1", "First   conversation\nopens here")
    post_prompt(client, second.api, "proj", "c2", "Second one?")
    post_prompt(client, first.api, "proj", "c2", "Second one, again?")
    post_prompt(client, second.api, "proj", "c3", "Third one?")
    post_prompt(client, second.api, "proj", "c1", "Back to the first?")
    post_prompt(client, first.api, "other", "elsewhere", "Another project?")

    page = client.get(f"{second.api}/conversations/proj", params={"limit": 2}).json()
    assert page["total"] == 3
    assert [(i["app_id"], i["turns"]) for i in page["items"]] == [("c1", 2), ("c3", 1)]
    assert page["items"][0]["title"] == "First conversation opens here"
    rest = client.get(f"{first.api}/conversations/proj", params={"limit": 2, "offset": 2}).json()
    assert [(i["app_id"], i["title"], i["turns"]) for i in rest["items"]] == [
        ("c2", "Second one?", 2)
    ]
    assert page["items"][0]["updated_at"] >= page["items"][1]["updated_at"]

    # A conversation with a reply streaming on one process cannot be deleted on another.
    gate = threading.Event()
    fake_openai.on_stream(Script(tokens=["busy", " now"], gate_after=1, gate=gate))
    with client.stream("POST", f"{first.api}/response/proj/c2", json={"prompt": "more?"}) as r:
        frames = iter_frames(r)
        next(frames), next(frames)
        refused = client.delete(f"{second.api}/conversations/proj/c2")
        assert refused.status_code == 409
        gate.set()
        assert list(frames)[-1].type == "end"

    assert client.delete(f"{second.api}/conversations/proj/c3").status_code == 204
    listing = client.get(f"{first.api}/conversations/proj").json()
    assert [i["app_id"] for i in listing["items"]] == ["c2", "c1"]
    assert listing["total"] == 2
    for server in pair:
        gone = client.get(f"{server.api}/history/proj/c3")
        assert gone.status_code == 404
    assert client.delete(f"{first.api}/conversations/proj/c3").status_code == 404
    # The other conversations are untouched, and the deleted ID can start afresh.
    assert len(_history(client, first, "c2")) == 6
    _, frames = post_prompt(client, first.api, "proj", "c3", "A new start?")
    assert frames[0].value == [] and frames[-1].type == "end"


def test_workers_share_the_port_and_the_database(
    tmp_path: Path,
    postgres_url: str,  # noqa: F811
    fake_openai: FakeOpenAI,
    client: httpx.Client,
) -> None:
    server = _start(tmp_path, "w", postgres_url, fake_openai, "--workers", "2")
    try:
        # The first worker answers health checks; wait (bounded) for the second to be up too.
        workers = [psutil.Process(pid) for pid in worker_pids(server, 2)]

        results: dict[str, list[list[str]]] = {}

        def converse(app_id: str) -> None:
            with httpx.Client(timeout=60) as own:
                ends = []
                for turn in range(3):
                    _, frames = post_prompt(own, server.api, "proj", app_id, f"{app_id} {turn}?")
                    ends.append([f.type for f in frames[-1:]])
                results[app_id] = ends

        threads = [threading.Thread(target=converse, args=(f"w{n}",)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert all(results[f"w{n}"] == [["end"]] * 3 for n in range(6)), results
        for n in range(6):
            history = _history(client, server, f"w{n}")
            assert [i["content"] for i in history[::2]] == [f"w{n} {t}?" for t in range(3)]
        listing = client.get(f"{server.api}/conversations/proj", params={"limit": 10}).json()
        assert listing["total"] == 6 and {i["turns"] for i in listing["items"]} == {3}
        assert "Child process" not in server.log()  # no worker died or was replaced
    finally:
        assert server.stop() == 0
    assert not any(w.is_running() for w in workers)
