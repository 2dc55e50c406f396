"""Several server processes on one SQLite file: ``--workers N`` and separate servers.

Turn leases live in the file, so one turn at a time per conversation holds across all of
them; a crashed worker's leases lapse after ``CHATBOT_TURN_LEASE_TTL_S``; and every
completed turn is on disk before its ``end`` frame, whichever process ran it. Which
worker served a request is read from the operating system's socket table
(``tests/support/workers.py``), not from the server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import psutil
import pytest

from chatbot.domain.chat_items import error_item
from chatbot.domain.chat_items import user_item as _user
from chatbot.domain.errors import REPLY_LOST
from tests.support.fake_openai import FakeOpenAI, Script
from tests.support.race import race_prompts
from tests.support.server_process import ServerProcess, StartServer
from tests.support.sse_client import Frame, iter_frames, post_prompt
from tests.support.workers import (
    client_port,
    clients_on_each_worker,
    replacement_worker,
    serving_worker,
    worker_pids,
)

# What a turn cut by its process's death is stored with, after its prompt.
REPLY_LOST_ITEM = error_item(REPLY_LOST.message)

# Short enough to wait for in a test, long enough that a busy machine never lets a live
# process's lease lapse between two renewals (every third of it), nor a dead one's lapse
# before the survivor is asked: that window is at least two thirds of it (once seen to
# close under the whole suite's load at 10 s, with a replacement worker booting).
_LEASE_TTL_S = "15"


@pytest.fixture
def workers(fake_openai: FakeOpenAI, serve: StartServer) -> ServerProcess:
    """``chatbot serve --workers 2`` on the default SQLite file, proxying the fake upstream."""
    return serve("--workers", "2", upstream=fake_openai, CHATBOT_TURN_LEASE_TTL_S=_LEASE_TTL_S)


@pytest.fixture
def pinned(workers: ServerProcess) -> Iterator[tuple[list[int], dict[int, httpx.Client]]]:
    """The two workers' pids, and a client whose connection each of them accepted."""
    pids = worker_pids(workers, 2)
    clients = clients_on_each_worker(workers, pids)
    try:
        yield pids, clients
    finally:
        for client in clients.values():
            client.close()


def _prompt_on(
    server: ServerProcess, client: httpx.Client, worker: int, app_id: str, prompt: str
) -> list[Frame]:
    """A whole turn through ``client``, checking that ``worker`` is the one serving it."""
    with client.stream(
        "POST", f"{server.api}/response/proj/{app_id}", json={"prompt": prompt}
    ) as response:
        assert response.status_code == 200, response.read()
        assert serving_worker(server, client_port(response)) == worker
        frames = list(iter_frames(response))
    assert frames[-1].type == "end", frames[-1]
    return frames


def _history(client: httpx.Client, server: ServerProcess, app_id: str) -> list[dict]:
    response = client.get(f"{server.api}/history/proj/{app_id}")
    assert response.status_code == 200, response.text
    return response.json()


def _turn(prompt: str, end: Frame) -> list[dict]:
    return [{"role": "user", "content": prompt, "type": "text"}, end.value["item"]]


def test_two_workers_serve_two_conversations_from_one_file(
    workers: ServerProcess,
    pinned: tuple[list[int], dict[int, httpx.Client]],
    fake_openai: FakeOpenAI,
) -> None:
    pids, clients = pinned
    assert workers.log().count("Database: SQLite file") == 1
    assert "shared by the 2 workers" in workers.log()
    expected: dict[str, list[dict]] = {"first": [], "second": []}
    for turn in range(2):
        for worker, app_id in zip(pids, expected, strict=True):
            prompt = f"{app_id} conversation, turn {turn}?"
            fake_openai.on_stream(Script(tokens=[f"{app_id} {turn}", f" from {worker}"]))
            frames = _prompt_on(workers, clients[worker], worker, app_id, prompt)
            assert frames[0].value == expected[app_id]
            expected[app_id] += _turn(prompt, frames[-1])
    # Each worker reads the other one's conversation from the shared file.
    assert _history(clients[pids[0]], workers, "second") == expected["second"]
    assert _history(clients[pids[1]], workers, "first") == expected["first"]
    for client in clients.values():
        listing = client.get(f"{workers.api}/conversations/proj").json()
        assert {(i["app_id"], i["turns"]) for i in listing["items"]} == {
            ("first", 2),
            ("second", 2),
        }

    # One conversation alternating between the workers starts each turn from the latest.
    alternating: list[dict] = []
    for turn in range(4):
        worker = pids[turn % 2]
        prompt = f"alternating turn {turn}?"
        frames = _prompt_on(workers, clients[worker], worker, "alternating", prompt)
        assert frames[0].value == alternating
        alternating += _turn(prompt, frames[-1])
    assert _history(clients[pids[0]], workers, "alternating") == alternating
    assert "Child process" not in workers.log()  # no worker died or was replaced


def test_concurrent_prompts_on_two_workers_give_one_stream_and_one_409(
    workers: ServerProcess,
    pinned: tuple[list[int], dict[int, httpx.Client]],
    fake_openai: FakeOpenAI,
) -> None:
    pids, clients = pinned
    _prompt_on(workers, clients[pids[0]], pids[0], "race", "opening question?")
    history = _history(clients[pids[1]], workers, "race")
    streams_before = len(fake_openai.streamed_requests())
    for round_ in range(3):
        gate = threading.Event()
        fake_openai.on_stream(Script(tokens=["held", " reply"], gate_after=1, gate=gate))
        prompts = [f"round {round_} via worker {pid}?" for pid in pids]
        targets = [(clients[pid], workers.api) for pid in pids]
        attempts = race_prompts(targets, "proj", "race", prompts, gate)
        assert sorted(a.status for a in attempts) == [200, 409], attempts
        for attempt, worker in zip(attempts, pids, strict=True):
            assert serving_worker(workers, attempt.client_port) == worker
        winner = next(a for a in attempts if a.status == 200)
        loser = next(a for a in attempts if a.status == 409)
        assert loser.body["error"]["code"] == "conversation_busy"
        assert winner.frames[0].value == history
        assert winner.frames[-1].type == "end"
        # Exactly one new turn, the winner's, as both workers see it.
        history = [*history, *_turn(prompts[attempts.index(winner)], winner.frames[-1])]
        for pid in pids:
            assert _history(clients[pid], workers, "race") == history
    assert len(fake_openai.streamed_requests()) == streams_before + 3


def test_kill_9_of_a_worker_mid_reply_loses_no_completed_turn(
    workers: ServerProcess,
    pinned: tuple[list[int], dict[int, httpx.Client]],
    fake_openai: FakeOpenAI,
) -> None:
    pids, clients = pinned
    doomed, survivor = pids
    completed = {"crash": [], "finished": []}
    for app_id, prompt in [
        ("finished", "a turn on the worker that will die?"),
        ("crash", "before the crash?"),
        ("finished", "and another one?"),
    ]:
        frames = _prompt_on(workers, clients[doomed], doomed, app_id, prompt)
        completed[app_id] += _turn(prompt, frames[-1])

    gate = threading.Event()
    try:
        fake_openai.on_stream(Script(tokens=["cut", " off"], gate_after=1, gate=gate))
        with clients[doomed].stream(
            "POST", f"{workers.api}/response/proj/crash", json={"prompt": "during?"}
        ) as response:
            frames = iter_frames(response)
            assert next(frames).type == "chat_history"
            assert next(frames).value == "cut"  # the reply is streaming on the doomed worker
            victim = psutil.Process(doomed)
            victim.kill()
            victim.wait(30)
    except httpx.HTTPError:
        pass  # the connection died with the worker
    finally:
        gate.set()
        clients.pop(doomed).close()

    on_survivor = clients[survivor]
    # The dead worker's lease still holds the conversation: nobody renews it, and it lapses.
    busy = on_survivor.post(f"{workers.api}/response/proj/crash", json={"prompt": "too soon?"})
    assert busy.status_code == 409
    assert busy.json()["error"]["code"] == "conversation_busy"
    deadline = time.monotonic() + 90
    while True:
        response, frames = post_prompt(on_survivor, workers.api, "proj", "crash", "after?")
        if response.status_code != 409 or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert response.status_code == 200
    # The cut turn is stored, its reply lost with the worker: never half-written.
    completed["crash"] += [_user("during?"), REPLY_LOST_ITEM]
    assert frames[0].value == completed["crash"]
    assert frames[-1].type == "end"
    completed["crash"] += _turn("after?", frames[-1])

    # uvicorn replaced the dead worker; the new one reads every completed turn too.
    replacement = replacement_worker(workers, pids)
    fresh = clients_on_each_worker(workers, [replacement])[replacement]
    try:
        for app_id, history in completed.items():
            assert _history(fresh, workers, app_id) == history
            assert _history(on_survivor, workers, app_id) == history
        _prompt_on(workers, fresh, replacement, "finished", "still there?")
    finally:
        fresh.close()


def test_two_servers_on_one_sqlite_file(
    fake_openai: FakeOpenAI, serve: StartServer, client: httpx.Client
) -> None:
    first = serve(upstream=fake_openai, CHATBOT_TURN_LEASE_TTL_S=_LEASE_TTL_S)
    second = None
    try:
        second = serve(env=first.env)  # same HOME: the same database file
        assert "shared" not in _database_line(first)
        assert _database_line(second).endswith(
            f"shared with another server process (pid {first.process.pid})"
        )
        servers = (first, second)
        expected: list[dict] = []
        for turn in range(4):
            server = servers[turn % 2]
            prompt = f"question {turn} via {server.base_url}?"
            _, frames = post_prompt(client, server.api, "proj", "shared", prompt)
            assert frames[0].value == expected and frames[-1].type == "end"
            expected += _turn(prompt, frames[-1])
        assert _history(client, first, "shared") == expected

        gate = threading.Event()
        fake_openai.on_stream(Script(tokens=["held", " reply"], gate_after=1, gate=gate))
        prompts = ["via the first?", "via the second?"]
        with httpx.Client(timeout=60) as a, httpx.Client(timeout=60) as b:
            attempts = race_prompts(
                [(a, first.api), (b, second.api)], "proj", "shared", prompts, gate
            )
        assert sorted(attempt.status for attempt in attempts) == [200, 409], attempts
        winner = next(attempt for attempt in attempts if attempt.status == 200)
        expected += _turn(prompts[attempts.index(winner)], winner.frames[-1])
        for server in servers:
            assert _history(client, server, "shared") == expected
            listing = client.get(f"{server.api}/conversations/proj").json()
            assert [(i["app_id"], i["turns"]) for i in listing["items"]] == [("shared", 5)]
    finally:
        if second is not None:
            second.stop()
        first.stop()


def _database_line(server: ServerProcess) -> str:
    return next(line for line in server.log().splitlines() if line.startswith("Database: "))
