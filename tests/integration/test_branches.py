"""Branching conversations against real server processes: edit a prompt, regenerate a
reply, switch between the versions, on SQLite and across processes on PostgreSQL.

Each branch is a Burr application forked from another one; where the tests check the
parent, they read it from Burr's own tracking data (the files Burr's tracker wrote, and
Burr's UI server reading them), never from the chatbot's tables.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.fake_openai import FakeOpenAI, Script
from tests.support.postgres import postgres_server, postgres_url  # noqa: F401 (fixtures)
from tests.support.server_process import ServerProcess, StartServer
from tests.support.snapshot import settled_snapshot
from tests.support.sse_client import Frame, iter_frames, post_prompt

PROJECT = "proj"


def _stream(
    client: httpx.Client, url: str, body: dict[str, Any]
) -> tuple[httpx.Response, list[Frame]]:
    """POST a streaming route and read every frame (none when it answers an error)."""
    with client.stream("POST", url, json=body, timeout=60) as response:
        if response.status_code != 200:
            response.read()
            return response, []
        return response, list(iter_frames(response))


def _edit(client: httpx.Client, server: ServerProcess, app: str, index: int, prompt: str):
    return _stream(client, f"{server.api}/edit/{PROJECT}/{app}", {"index": index, "prompt": prompt})


def _regenerate(client: httpx.Client, server: ServerProcess, app: str, index: int):
    return _stream(client, f"{server.api}/regenerate/{PROJECT}/{app}", {"index": index})


def _history(client: httpx.Client, server: ServerProcess, app: str) -> list[dict]:
    response = client.get(f"{server.api}/history/{PROJECT}/{app}")
    assert response.status_code == 200, response.text
    return response.json()


def _versions(client: httpx.Client, server: ServerProcess, app: str, index: int) -> dict:
    response = client.get(f"{server.api}/branches/{PROJECT}/{app}", params={"index": index})
    assert response.status_code == 200, response.text
    return response.json()


def _switch(client: httpx.Client, server: ServerProcess, app: str, **body: Any) -> list[dict]:
    response = client.post(f"{server.api}/branches/{PROJECT}/{app}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _plain(history: list[dict]) -> list[dict]:
    """The items without their version marks."""
    return [{k: v for k, v in item.items() if k != "branch"} for item in history]


def _marks(history: list[dict]) -> dict[int, dict]:
    return {index: item["branch"] for index, item in enumerate(history) if "branch" in item}


def _talk(client: httpx.Client, server: ServerProcess, app: str, prompts: list[str]) -> list[dict]:
    for prompt in prompts:
        _, frames = post_prompt(client, server.api, PROJECT, app, prompt)
        assert frames[-1].type == "end", frames[-1]
    return _history(client, server, app)


def _user(content: str) -> dict:
    return {"role": "user", "content": content, "type": "text"}


def _user_contents(messages: list[dict]) -> list[str]:
    return [m["content"] for m in messages if m["role"] == "user"]


# --- edit and regenerate -------------------------------------------------------------------
def test_editing_a_prompt_forks_before_it_and_keeps_the_old_branch(
    upstream_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    server = upstream_server
    fake_openai.on_stream(*(Script(tokens=[f"reply {n}"]) for n in range(3)))
    old = _talk(client, server, "conv", ["first?", "second?", "third?"])
    assert _marks(old) == {}

    fake_openai.on_stream(Script(tokens=["the", " edited", " reply"]))
    response, frames = _edit(client, server, "conv", 2, "second, edited?")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    # Exactly /response's frames: the history before the new turn, deltas, end.
    assert frames[0].type == "chat_history" and frames[0].value == old[:2]
    assert {f.type for f in frames[1:-1]} == {"delta"}
    assert frames[-1].type == "end"
    reply = frames[-1].value["item"]
    assert reply["content"] == "the edited reply"
    # The model saw the items before the edited prompt, then the new prompt: nothing else.
    assert _user_contents(fake_openai.streamed_requests()[-1].body["messages"]) == [
        "first?",
        "second, edited?",
    ]

    new = _history(client, server, "conv")
    assert _plain(new) == [*old[:2], _user("second, edited?"), reply]
    assert _marks(new) == {2: {"version": 1, "versions": 2, "app_id": "conv~1"}}
    versions = _versions(client, server, "conv", 2)
    assert versions["index"] == 2 and versions["shown"] == 1
    assert [(v["version"], v["app_id"], v["preview"]) for v in versions["versions"]] == [
        (0, "conv", "second?"),
        (1, "conv~1", "second, edited?"),
    ]
    assert all(v["created_at"] for v in versions["versions"])
    # An item with one version is a valid question too.
    single = _versions(client, server, "conv", 0)
    assert (single["shown"], [v["app_id"] for v in single["versions"]]) == (0, ["conv"])

    # The old branch is intact: switch back and it is all there.
    switched = _switch(client, server, "conv", index=2, version=0)
    assert _plain(switched) == old
    assert _marks(switched) == {2: {"version": 0, "versions": 2, "app_id": "conv"}}
    assert _history(client, server, "conv") == switched
    assert _plain(_switch(client, server, "conv", app_id="conv~1")) == _plain(new)


def test_regenerating_a_reply_forks_before_its_prompt_and_sends_it_again(
    upstream_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    server = upstream_server
    fake_openai.on_stream(*(Script(tokens=[f"reply {n}"]) for n in range(3)))
    old = _talk(client, server, "regen", ["first?", "second?", "third?"])

    fake_openai.on_stream(Script(tokens=["another", " second", " reply"]))
    response, frames = _regenerate(client, server, "regen", 3)
    assert response.status_code == 200
    assert frames[0].type == "chat_history" and frames[0].value == old[:2]
    assert frames[-1].type == "end"
    reply = frames[-1].value["item"]
    assert reply["content"] == "another second reply"
    sent = fake_openai.streamed_requests()[-1].body["messages"]
    assert [m["content"] for m in sent if m["role"] != "system"] == [
        "first?",
        "reply 0",
        "second?",
    ]

    new = _history(client, server, "regen")
    assert _plain(new) == [*old[:3], reply]
    # The prompt is the same item in both: only the reply has two versions.
    assert _marks(new) == {3: {"version": 1, "versions": 2, "app_id": "regen~1"}}

    fake_openai.on_stream(Script(tokens=["a", " third", " take"]))
    _, frames = _regenerate(client, server, "regen", 3)
    third = _history(client, server, "regen")
    assert _plain(third) == [*old[:3], frames[-1].value["item"]]
    assert _marks(third)[3] == {"version": 2, "versions": 3, "app_id": "regen~2"}
    previews = [v["preview"] for v in _versions(client, server, "regen", 3)["versions"]]
    assert previews == ["reply 1", "another second reply", "a third take"]

    assert _plain(_switch(client, server, "regen", index=3, version=0)) == old
    assert _plain(_switch(client, server, "regen", index=3, version=1)) == _plain(new)


def test_a_failed_reply_can_be_regenerated_from_its_error_item(
    upstream_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    server = upstream_server
    fake_openai.on_stream(Script(tokens=["fine"]), Script(tokens=["cut", " short"], cut_after=1))
    failed = _talk_allowing_failure(client, server, "failing", ["ok?", "breaks?"])
    assert [i["type"] for i in failed[2:]] == ["text", "text", "error"]  # prompt, partial, error
    fake_openai.on_stream(Script(tokens=["whole", " now"]))
    _, frames = _regenerate(client, server, "failing", 4)
    assert frames[-1].type == "end"
    history = _history(client, server, "failing")
    assert _plain(history) == [*failed[:3], frames[-1].value["item"]]
    assert _marks(history) == {3: {"version": 1, "versions": 2, "app_id": "failing~1"}}


def _talk_allowing_failure(
    client: httpx.Client, server: ServerProcess, app: str, prompts: list[str]
) -> list[dict]:
    for prompt in prompts:
        post_prompt(client, server.api, PROJECT, app, prompt)
    return _history(client, server, app)


def test_editing_the_first_prompt_starts_a_branch_with_nothing_before_it(
    offline_server: ServerProcess, client: httpx.Client
) -> None:
    old = _talk(client, offline_server, "first", ["What is Burr?", "Write a poem about state"])
    _, frames = _edit(client, offline_server, "first", 0, "Write a poem about forks")
    assert frames[0].value == [] and frames[-1].type == "end"
    new = _history(client, offline_server, "first")
    assert _plain(new) == [_user("Write a poem about forks"), frames[-1].value["item"]]
    assert _marks(new) == {0: {"version": 1, "versions": 2, "app_id": "first~1"}}
    assert _plain(_switch(client, offline_server, "first", index=0, version=0)) == old


def test_the_listing_shows_the_title_and_turn_count_of_the_branch_shown(
    offline_server: ServerProcess, client: httpx.Client
) -> None:
    server = offline_server
    _talk(client, server, "titled", ["What is Burr?", "What is a graph?"])
    _edit(client, server, "titled", 0, "Write a poem about forks")

    def listed() -> tuple[str, int]:
        listing = client.get(f"{server.api}/conversations/{PROJECT}").json()
        (item,) = [item for item in listing["items"] if item["app_id"] == "titled"]
        return item["title"], item["turns"]

    assert listed() == ("Write a poem about forks", 1)
    _switch(client, server, "titled", index=0, version=0)
    assert listed() == ("What is Burr?", 2)
    _switch(client, server, "titled", app_id="titled~1")
    assert listed() == ("Write a poem about forks", 1)


def test_a_new_prompt_continues_the_branch_shown(
    offline_server: ServerProcess, client: httpx.Client
) -> None:
    server = offline_server
    old = _talk(client, server, "cont", ["What is Burr?", "What is a graph?"])
    _edit(client, server, "cont", 2, "Write a poem about graphs")
    edited = _plain(_history(client, server, "cont"))
    _, frames = post_prompt(client, server.api, PROJECT, "cont", "And one about trees?")
    assert frames[0].value == edited  # the turn started from the branch shown
    after = _history(client, server, "cont")
    assert _plain(after)[:4] == edited and len(after) == 6
    assert _marks(after) == {2: {"version": 1, "versions": 2, "app_id": "cont~1"}}
    assert _plain(_switch(client, server, "cont", index=2, version=0)) == old


# --- the shown branch is remembered ------------------------------------------------------
def test_the_branch_shown_survives_a_reload_and_a_restart(serve: StartServer, client: httpx.Client):
    server = serve()
    try:
        old = _talk(client, server, "kept", ["What is Burr?", "What is a graph?"])
        _edit(client, server, "kept", 2, "Write a poem about graphs")
        _regenerate(client, server, "kept", 3)
        shown = _switch(client, server, "kept", index=2, version=0)
        assert _plain(shown) == old
        assert _history(client, server, "kept") == shown  # a reload
    finally:
        server.stop()
    restarted = serve()
    try:
        assert _history(client, restarted, "kept") == shown
        # Switching back to the edited prompt shows the branch last seen there: the
        # regenerated reply, not the edit's first one.
        edited = _switch(client, restarted, "kept", index=2, version=1)
        assert _marks(edited) == {
            2: {"version": 1, "versions": 2, "app_id": "kept~1"},
            3: {"version": 1, "versions": 2, "app_id": "kept~2"},
        }
    finally:
        restarted.stop()
    again = serve()
    try:
        assert _history(client, again, "kept") == edited
    finally:
        again.stop()


# --- Burr records the parent ---------------------------------------------------------------
@pytest.fixture
def burr_server(serve: StartServer) -> ServerProcess:
    return serve(CHATBOT_BURR_UI_ENABLED="true")


def _tracked(home: Path, app_id: str, name: str, ready: Any) -> Any:
    """A file of the tracking directory once Burr's tracker (on its own thread) wrote it."""
    path = home / ".burr" / PROJECT / app_id / name
    deadline = time.monotonic() + 30
    while True:
        if path.exists():
            text = path.read_text()
            value = json.loads(text) if name.endswith(".json") else text
            if ready(value) or time.monotonic() > deadline:
                return value
        elif time.monotonic() > deadline:
            raise AssertionError(f"{path} was never written")
        time.sleep(0.05)


def _history_length_at(home: Path, app_id: str, sequence_id: int) -> int:
    """The history length Burr logged at the end of step ``sequence_id`` of ``app_id``."""
    log = _tracked(home, app_id, "log.jsonl", lambda text: True)
    ends = [
        entry
        for entry in map(json.loads, log.splitlines())
        if entry["type"] == "end_entry" and entry["sequence_id"] == sequence_id
    ]
    assert len(ends) == 1, ends
    return ends[0]["state"]["chat_history_length"]


def test_each_branch_records_its_parent_in_burr_tracking(
    burr_server: ServerProcess, home: Path, client: httpx.Client
) -> None:
    server = burr_server
    _talk(client, server, "tree", ["What is Burr?", "What is a graph?"])
    _edit(client, server, "tree", 2, "Write a poem about graphs")  # tree~1, from tree
    _regenerate(client, server, "tree", 3)  # tree~2, from tree~1 (its own fork point)
    _edit(client, server, "tree", 0, "Write code for a tree")  # tree~3, before any step

    expected = {"tree~1": ("tree", 2), "tree~2": ("tree~1", 2), "tree~3": ("tree~2", 0)}
    for branch, (parent, items) in expected.items():
        metadata = _tracked(home, branch, "metadata.json", lambda m: True)
        pointer = metadata["parent_pointer"]
        assert (pointer["app_id"], pointer["partition_key"]) == (parent, PROJECT), metadata
        if items == 0:
            assert pointer["sequence_id"] == -1  # the state before the parent's first step
        elif pointer["app_id"] == "tree":
            # The step the fork starts after held exactly the items the branch kept.
            assert _history_length_at(home, parent, pointer["sequence_id"]) == items
        children = _tracked(home, parent, "children.jsonl", lambda t, b=branch: b in t)
        forks = [json.loads(line) for line in children.splitlines()]
        assert any(c["child"]["app_id"] == branch and c["event_type"] == "fork" for c in forks), (
            forks
        )
    assert _tracked(home, "tree", "metadata.json", lambda m: True)["parent_pointer"] is None

    # Burr's UI server reads the same: each branch's run names its parent.
    burr_api = f"{server.base_url}/burr/api/v0/{PROJECT}"
    for branch, (parent, _) in expected.items():
        logs = client.get(f"{burr_api}/{branch}/{PROJECT}/apps")
        assert logs.status_code == 200, logs.text
        assert logs.json()["parent_pointer"]["app_id"] == parent
    listed = client.get(f"{burr_api}/{PROJECT}/apps").json()
    assert {"tree", *expected} <= {a["app_id"] for a in listed["applications"]}


# --- 409 while a reply streams ---------------------------------------------------------------
def test_branching_and_switching_are_refused_while_a_reply_streams(
    upstream_server: ServerProcess, fake_openai: FakeOpenAI, client: httpx.Client
) -> None:
    server = upstream_server
    _talk(client, server, "busy", ["first?", "second?"])
    _edit(client, server, "busy", 2, "second, edited?")
    before = _history(client, server, "busy")

    for start in ("prompt", "edit", "regenerate"):
        gate = threading.Event()
        fake_openai.on_stream(Script(tokens=["held", " reply"], gate_after=1, gate=gate))
        url, body = {
            "prompt": (f"{server.api}/response/{PROJECT}/busy", {"prompt": "third?"}),
            "edit": (f"{server.api}/edit/{PROJECT}/busy", {"index": 0, "prompt": "zeroth?"}),
            "regenerate": (f"{server.api}/regenerate/{PROJECT}/busy", {"index": 1}),
        }[start]
        try:
            with client.stream("POST", url, json=body) as streaming:
                assert streaming.status_code == 200
                frames = iter_frames(streaming)
                next(frames), next(frames)  # the history, a delta: the turn is running
                with httpx.Client(timeout=30) as other:
                    refused = [
                        other.post(
                            f"{server.api}/edit/{PROJECT}/busy", json={"index": 0, "prompt": "x"}
                        ),
                        other.post(f"{server.api}/regenerate/{PROJECT}/busy", json={"index": 1}),
                        other.post(
                            f"{server.api}/branches/{PROJECT}/busy", json={"index": 2, "version": 0}
                        ),
                        other.post(
                            f"{server.api}/branches/{PROJECT}/busy", json={"app_id": "busy"}
                        ),
                        other.post(f"{server.api}/response/{PROJECT}/busy", json={"prompt": "x"}),
                    ]
                    # Reading is fine meanwhile.
                    assert other.get(f"{server.api}/history/{PROJECT}/busy").status_code == 200
                for answer in refused:
                    assert answer.status_code == 409, (start, answer.request.url, answer.text)
                    assert answer.json()["error"]["code"] == "conversation_busy"
                gate.set()
                assert list(frames)[-1].type == "end"
        finally:
            gate.set()
    # Only the three turns that streamed happened; nothing refused left a trace.
    after = _history(client, server, "busy")
    versions = {index: mark["versions"] for index, mark in _marks(after).items()}
    assert versions == {0: 2, 1: 2}
    assert [v["app_id"] for v in _versions(client, server, "busy", 0)["versions"]] == [
        "busy",
        "busy~2",
    ]
    assert len(_switch(client, server, "busy", app_id="busy~1")) == len(before) + 2


# --- bad input ---------------------------------------------------------------------------------
def test_every_bad_input_is_a_4xx_that_changes_nothing(
    offline_server: ServerProcess, home: Path, client: httpx.Client
) -> None:
    server = offline_server
    api = server.api
    _talk(client, server, "bad", ["What is Burr?", "What is a graph?"])
    _edit(client, server, "bad", 2, "Write a poem about graphs")
    _talk(client, server, "other", ["What is Burr?"])
    _edit(client, server, "other", 0, "Write a poem about owls")  # other~1
    client.post(f"{api}/create/{PROJECT}/empty")
    history = _history(client, server, "bad")
    listing = client.get(f"{api}/conversations/{PROJECT}").json()
    before = settled_snapshot(home)

    body_index = ["body", "index"]
    # What the conversation does not have is 404; an item that cannot be branched, 409.
    no_item, no_branch, not_branchable = "item_not_found", "branch_not_found", "item_not_branchable"
    cases: list[tuple[str, str, dict | None, int, str, list[str] | None]] = [
        ("edit", "bad", {"index": 4, "prompt": "x"}, 404, no_item, body_index),
        ("edit", "bad", {"index": 99, "prompt": "x"}, 404, no_item, body_index),
        ("edit", "bad", {"index": 1, "prompt": "x"}, 409, not_branchable, body_index),
        ("edit", "bad", {"index": 3, "prompt": "x"}, 409, not_branchable, body_index),
        ("edit", "bad", {"index": 0, "prompt": " \n\t"}, 422, "empty_prompt", None),
        ("edit", "bad", {"index": 0, "prompt": ""}, 422, "empty_prompt", None),
        ("edit", "bad", {"index": -1, "prompt": "x"}, 422, "invalid_request", body_index),
        ("edit", "bad", {"index": "0", "prompt": "x"}, 422, "invalid_request", body_index),
        ("edit", "bad", {"prompt": "x"}, 422, "invalid_request", body_index),
        ("edit", "bad", {"index": 0, "prompt": "x" * 100_000}, 422, "prompt_too_long", None),
        ("edit", "empty", {"index": 0, "prompt": "x"}, 404, no_item, body_index),
        ("regenerate", "bad", {"index": 0}, 409, not_branchable, body_index),
        ("regenerate", "bad", {"index": 2}, 409, not_branchable, body_index),
        ("regenerate", "bad", {"index": 4}, 404, no_item, body_index),
        ("regenerate", "bad", {"index": 1.5}, 422, "invalid_request", body_index),
        ("regenerate", "bad", {}, 422, "invalid_request", body_index),
        (
            "branches",
            "bad",
            {"index": 2, "version": 2},
            404,
            "version_not_found",
            ["body", "version"],
        ),
        ("branches", "bad", {"index": 4, "version": 0}, 404, no_item, body_index),
        (
            "branches",
            "bad",
            {"index": 0, "version": 1},
            404,
            "version_not_found",
            ["body", "version"],
        ),
        ("branches", "bad", {"app_id": "other~1"}, 404, no_branch, ["body", "app_id"]),
        ("branches", "bad", {"app_id": "other"}, 404, no_branch, ["body", "app_id"]),
        ("branches", "bad", {"app_id": "bad~9"}, 404, no_branch, ["body", "app_id"]),
        ("branches", "bad", {"app_id": "bad~"}, 422, "invalid_request", None),
        ("branches", "bad", {"app_id": "../bad"}, 422, "invalid_request", None),
        ("branches", "bad", {}, 422, "invalid_request", None),
        ("branches", "bad", {"index": 2}, 422, "invalid_request", None),
        (
            "branches",
            "bad",
            {"index": 2, "version": 0, "app_id": "bad"},
            422,
            "invalid_request",
            None,
        ),
        ("edit", "nowhere", {"index": 0, "prompt": "x"}, 404, "conversation_not_found", None),
        ("regenerate", "nowhere", {"index": 1}, 404, "conversation_not_found", None),
        ("branches", "nowhere", {"index": 0, "version": 0}, 404, "conversation_not_found", None),
        ("branches", "nowhere", {"app_id": "nowhere"}, 404, "conversation_not_found", None),
    ]
    for route, app, body, status, code, location in cases:
        answer = client.post(f"{api}/{route}/{PROJECT}/{app}", json=body)
        described = (route, app, body, answer.text)
        assert answer.status_code == status, described
        assert answer.headers["content-type"] == "application/json", described
        error = answer.json()["error"]
        assert error["code"] == code and error["message"], described
        if location is not None:
            assert location in [d["location"] for d in error["details"]], described

    for app, index, status, location in [
        ("bad", 4, 404, ["query", "index"]),
        ("bad", -1, 422, ["query", "index"]),
        ("empty", 0, 404, ["query", "index"]),
        ("nowhere", 0, 404, None),
    ]:
        answer = client.get(f"{api}/branches/{PROJECT}/{app}", params={"index": index})
        assert answer.status_code == status, answer.text
        if location is not None:
            assert location in [d["location"] for d in answer.json()["error"]["details"]]
    not_json = client.post(
        f"{api}/edit/{PROJECT}/bad", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert (not_json.status_code, not_json.json()["error"]["code"]) == (400, "invalid_json")
    assert client.post(f"{api}/regenerate/{PROJECT}/bad~1", json={"index": 1}).status_code == 422

    assert settled_snapshot(home) == before
    assert _history(client, server, "bad") == history
    # An index written as a JSON number with no fraction is that integer (JSON Schema's).
    switched = client.post(f"{api}/branches/{PROJECT}/bad", json={"index": 0.0, "version": 0.0})
    assert switched.status_code == 200, switched.text
    assert switched.json() == history
    assert client.get(f"{api}/history/{PROJECT}/nowhere").status_code == 404
    assert client.get(f"{api}/conversations/{PROJECT}").json() == listing


# --- delete and listing --------------------------------------------------------------------
def test_delete_removes_every_branch_and_the_listing_shows_one_entry_per_conversation(
    offline_server: ServerProcess, home: Path, client: httpx.Client
) -> None:
    server = offline_server
    _talk(client, server, "gone", ["What is Burr?", "What is a graph?"])
    _edit(client, server, "gone", 2, "Write a poem about graphs")
    _regenerate(client, server, "gone", 1)
    _talk(client, server, "kept", ["What is a lighthouse?"])
    _regenerate(client, server, "kept", 1)

    listing = client.get(f"{server.api}/conversations/{PROJECT}").json()
    assert listing["total"] == 2
    assert sorted(item["app_id"] for item in listing["items"]) == ["gone", "kept"]
    tracking = home / ".burr" / PROJECT
    _tracked(home, "gone~2", "log.jsonl", lambda text: "end_entry" in text)
    assert {"gone", "gone~1", "gone~2", "kept", "kept~1"} <= {p.name for p in tracking.iterdir()}

    deleted = client.delete(f"{server.api}/conversations/{PROJECT}/gone")
    assert deleted.status_code == 204
    assert client.get(f"{server.api}/history/{PROJECT}/gone").status_code == 404
    answer = client.get(f"{server.api}/branches/{PROJECT}/gone", params={"index": 0})
    assert answer.status_code == 404
    assert sorted(p.name for p in tracking.iterdir()) == ["kept", "kept~1"]
    database = home / ".local" / "share" / "burr-chatbot" / "chatbot.sqlite3"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        tables = [
            r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        for table in tables:
            for row in connection.execute(f"SELECT * FROM {table}"):
                assert not any(
                    value == "gone" or (isinstance(value, str) and value.startswith("gone~"))
                    for value in row
                ), (table, row)
    listing = client.get(f"{server.api}/conversations/{PROJECT}").json()
    assert [item["app_id"] for item in listing["items"]] == ["kept"]
    assert _marks(_history(client, server, "kept")) == {
        1: {"version": 1, "versions": 2, "app_id": "kept~1"}
    }
    # A conversation started again under the same id starts from nothing.
    fresh = _talk(client, server, "gone", ["What is new?"])
    assert _plain(fresh)[0] == _user("What is new?") and len(fresh) == 2


# --- Burr's demo page ------------------------------------------------------------------------
def test_the_burr_demo_routes_work_on_the_branch_shown(
    burr_server: ServerProcess, client: httpx.Client
) -> None:
    server = burr_server
    demo_api = f"{server.base_url}/burr/api/v0/streaming_chatbot"
    old = _talk(client, server, "demo", ["What is Burr?", "What is a graph?"])
    _edit(client, server, "demo", 2, "Write a poem about graphs")
    shown = _history(client, server, "demo")
    demo_history = client.get(f"{demo_api}/history/{PROJECT}/demo")
    assert demo_history.status_code == 200 and demo_history.json() == shown
    _, frames = post_prompt(client, demo_api, PROJECT, "demo", "And about trees?")
    assert frames[0].value == _plain(shown)
    assert frames[-1].type == "end"
    after = client.get(f"{demo_api}/history/{PROJECT}/demo").json()
    assert _plain(after) == [*_plain(shown), _user("And about trees?"), frames[-1].value["item"]]
    _switch(client, server, "demo", index=2, version=0)
    assert _plain(client.get(f"{demo_api}/history/{PROJECT}/demo").json()) == old


# --- across processes, on PostgreSQL ---------------------------------------------------------
@pytest.fixture
def postgres_pair(
    tmp_path: Path,
    postgres_url: str,  # noqa: F811
    fake_openai: FakeOpenAI,
    serve: StartServer,
) -> tuple[ServerProcess, ServerProcess]:
    """Two ``chatbot serve`` processes, a HOME each (as on two machines), one database."""
    homes = [tmp_path / name for name in "ab"]
    for home in homes:
        home.mkdir()
    with ThreadPoolExecutor(2) as pool:
        started = [
            pool.submit(serve, home=home, upstream=fake_openai, CHATBOT_DATABASE_URL=postgres_url)
            for home in homes
        ]
    first, second = (future.result() for future in started)
    return first, second


@pytest.mark.postgres
def test_a_branch_made_on_one_process_is_read_and_switched_on_another(
    postgres_pair: tuple[ServerProcess, ServerProcess],
    fake_openai: FakeOpenAI,
    client: httpx.Client,
) -> None:
    first, second = postgres_pair
    fake_openai.on_stream(*(Script(tokens=[f"reply {n}"]) for n in range(2)))
    old = _talk(client, first, "shared", ["first?", "second?"])
    fake_openai.on_stream(Script(tokens=["edited", " reply"]))
    _, frames = _edit(client, first, "shared", 2, "second, edited?")
    edited = _history(client, first, "shared")

    assert _history(client, second, "shared") == edited
    assert _marks(edited) == {2: {"version": 1, "versions": 2, "app_id": "shared~1"}}
    versions = _versions(client, second, "shared", 2)
    assert [v["preview"] for v in versions["versions"]] == ["second?", "second, edited?"]

    # Switched on the second process, shown on the first.
    assert _plain(_switch(client, second, "shared", index=2, version=0)) == old
    assert _plain(_history(client, first, "shared")) == old

    # A regenerate on the first process forks the branch the second one chose.
    fake_openai.on_stream(Script(tokens=["again"]))
    _, frames = _regenerate(client, first, "shared", 3)
    assert frames[0].value == old[:2]
    regenerated = _history(client, second, "shared")
    assert _plain(regenerated) == [
        *old,
    ][:3] + [frames[-1].value["item"]]
    assert _marks(regenerated) == {
        2: {"version": 0, "versions": 2, "app_id": "shared"},
        3: {"version": 1, "versions": 2, "app_id": "shared~2"},
    }
    # And the second process continues it.
    fake_openai.on_stream(Script(tokens=["continued"]))
    _, frames = post_prompt(client, second.api, PROJECT, "shared", "third?")
    assert frames[0].value == _plain(regenerated)
    assert _history(client, first, "shared")[-1] == frames[-1].value["item"]
    listing = client.get(f"{first.api}/conversations/{PROJECT}").json()
    assert [item["app_id"] for item in listing["items"]] == ["shared"]
