"""Durability with the embedded SQLite store, and start-up refusals, against real processes."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx

from chatbot.domain.chat_items import error_item
from chatbot.domain.chat_items import user_item as _user
from chatbot.domain.errors import REPLY_LOST
from tests.support.fake_openai import FakeOpenAI, Script
from tests.support.server_process import (
    ServerProcess,
    StartServer,
    run_server_expecting_exit,
    server_env,
)
from tests.support.sse_client import iter_frames, post_prompt

# What a turn cut by its process's death is stored with, after its prompt.
REPLY_LOST_ITEM = error_item(REPLY_LOST.message)

PROMPTS = ["What is Burr?", "Write a poem about state", "write python code for fibonacci"]


def _history(client: httpx.Client, server: ServerProcess, app_id: str) -> list[dict]:
    response = client.get(f"{server.api}/history/proj/{app_id}")
    assert response.status_code == 200, response.text
    return response.json()


def _listing(client: httpx.Client, server: ServerProcess) -> dict:
    response = client.get(f"{server.api}/conversations/proj")
    assert response.status_code == 200, response.text
    return response.json()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _assert_clean_refusal(done, *fragments: str) -> None:
    output = (done.stdout + done.stderr).strip()
    assert done.returncode != 0, output
    assert "Traceback" not in output, output
    lines = output.splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith("chatbot serve: error: ")
    for fragment in fragments:
        assert fragment in lines[0], output


def test_history_survives_kill_9_and_restart(serve: StartServer, client: httpx.Client) -> None:
    server = serve()
    try:
        expected: list[dict] = []
        for prompt in PROMPTS:
            _, frames = post_prompt(client, server.api, "proj", "durable", prompt)
            assert frames[0].value == expected and frames[-1].type == "end"
            expected += [{"role": "user", "content": prompt, "type": "text"}]
            expected += [frames[-1].value["item"]]
        # Killed the moment the last `end` frame arrived: a turn is stored before its `end`.
    finally:
        server.kill()
    assert server.process.returncode == -9

    restarted = serve(env=server.env)  # same HOME, so the same database file
    try:
        assert _history(client, restarted, "durable") == expected
        listing = _listing(client, restarted)
        assert [(i["app_id"], i["title"], i["turns"]) for i in listing["items"]] == [
            ("durable", PROMPTS[0], 3)
        ]
        # The conversation carries on where it was.
        _, frames = post_prompt(client, restarted.api, "proj", "durable", "And one more?")
        assert frames[0].value == expected and frames[-1].type == "end"
        assert len(_history(client, restarted, "durable")) == 8
    finally:
        restarted.stop()


def test_a_reply_cut_by_kill_9_is_stored_as_lost_never_half_stored(
    fake_openai: FakeOpenAI, serve: StartServer, client: httpx.Client
) -> None:
    """A turn in flight when the process dies is never half-stored: once its lease has
    lapsed, the restarted server stores its prompt and an error item saying the reply was
    lost (the reply's text died with the process), and the conversation goes on."""
    server = serve(upstream=fake_openai, CHATBOT_TURN_LEASE_TTL_S="3")
    gate = threading.Event()
    try:
        post_prompt(client, server.api, "proj", "cut", "first question?")
        before = _history(client, server, "cut")
        fake_openai.on_stream(
            Script(tokens=["partial", " never", " finished"], gate_after=1, gate=gate)
        )
        with client.stream(
            "POST", f"{server.api}/response/proj/cut", json={"prompt": "second?"}
        ) as response:
            frames = iter_frames(response)
            assert next(frames).type == "chat_history"
            assert next(frames).value == "partial"
            server.kill()  # mid-stream
    finally:
        gate.set()
        server.kill()

    restarted = serve(env=server.env)
    try:
        assert _history(client, restarted, "cut")[: len(before)] == before
        deadline = time.monotonic() + 60
        while True:
            response, frames = post_prompt(client, restarted.api, "proj", "cut", "second, again?")
            if response.status_code != 409 or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        assert response.status_code == 200
        assert frames[0].value == [*before, _user("second?"), REPLY_LOST_ITEM]
        assert frames[-1].type == "end"
        history = _history(client, restarted, "cut")
        assert [i["content"] for i in history if i["role"] == "user"] == [
            "first question?",
            "second?",
            "second, again?",
        ]
    finally:
        restarted.stop()


def test_unwritable_sqlite_path_is_a_clear_startup_error(home: Path) -> None:
    blocker = home / "not-a-directory"
    blocker.write_text("a file where the database directory should be")
    env = server_env(home, CHATBOT_DATABASE_URL=f"sqlite:///{blocker}/chat.sqlite3")
    done = run_server_expecting_exit(home, env)
    _assert_clean_refusal(done, "cannot open the SQLite database", str(blocker))


def test_unreachable_postgresql_is_a_clear_startup_error(home: Path) -> None:
    port = _closed_port()
    url = f"postgresql://someone:s3cret-password@127.0.0.1:{port}/chat"
    done = run_server_expecting_exit(home, server_env(home, CHATBOT_DATABASE_URL=url))
    _assert_clean_refusal(done, "cannot reach the PostgreSQL database", f"127.0.0.1:{port}/chat")
    assert "s3cret-password" not in done.stdout + done.stderr


def test_unreachable_postgresql_refuses_workers_too(home: Path) -> None:
    url = f"postgresql://someone:pw@127.0.0.1:{_closed_port()}/chat"
    done = run_server_expecting_exit(
        home, server_env(home, CHATBOT_DATABASE_URL=url), "--workers", "2"
    )
    _assert_clean_refusal(done, "cannot reach the PostgreSQL database")
