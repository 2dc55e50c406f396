"""Burr's tracking in the conversation database (``CHATBOT_TRACKING=database``), against real
server processes: what one replica runs, another replica's ``/burr`` shows, step by step;
forks point to their parents; deleting a conversation deletes its tracking; old runs are
pruned; each user sees only their own runs; a database that refuses tracking writes costs
tracking, never a reply; and ``off`` writes nothing.

Tracking is written off the event loop, after the reply: reads of it poll until it lands.
The tracking tables are read directly (Python's ``sqlite3``) where a test needs to know
what is stored, not only what Burr's API answers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.support.keys import bearer, create_key
from tests.support.server_process import ServerProcess, StartServer
from tests.support.sse_client import Frame, iter_frames, post_prompt

PROJECT = "demo"
# Two turns, each with the responder the offline model's router picks for it.
TURNS = [("Write a poem about owls", "generate_poem"), ("What is a lighthouse?", "answer_question")]
ROUTING = ["prompt", "check_safety", "decide_mode"]
DEADLINE_S = 60.0
T = TypeVar("T")


# --- helpers -----------------------------------------------------------------------------


def _eventually(probe: Callable[[], T | None], what: str, timeout: float = DEADLINE_S) -> T:
    """``probe()`` once it answers something truthy (it answers None or False until then)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})")


def _burr(
    client: httpx.Client, server: ServerProcess, path: str, key: str | None = None
) -> httpx.Response:
    headers = bearer(key) if key is not None else {}
    return client.get(f"{server.base_url}/burr/api/v0/{path}", headers=headers)


def _logs(
    client: httpx.Client,
    server: ServerProcess,
    app_id: str,
    project: str = PROJECT,
    key: str | None = None,
) -> httpx.Response:
    """One run's logs from Burr's API (no partition key: ``__none__``)."""
    return _burr(client, server, f"{project}/{app_id}/__none__/apps", key)


def _apps(
    client: httpx.Client,
    server: ServerProcess,
    project: str = PROJECT,
    partition: str = "__none__",
    key: str | None = None,
) -> list[dict]:
    response = _burr(client, server, f"{project}/{partition}/apps", key)
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["total"] == len(page["applications"])
    return page["applications"]


def _app_ids(client: httpx.Client, server: ServerProcess, **kwargs: Any) -> set[str]:
    return {app["app_id"] for app in _apps(client, server, **kwargs)}


def _tracked_steps(
    client: httpx.Client,
    server: ServerProcess,
    app_id: str,
    count: int,
    project: str = PROJECT,
    key: str | None = None,
) -> list[dict]:
    """The run's steps once ``count`` complete ones are tracked (they land after replies)."""

    def probe() -> list[dict] | None:
        response = _logs(client, server, app_id, project, key)
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        steps = response.json()["steps"]
        done = [step for step in steps if step["step_end_log"] is not None]
        return steps if len(done) >= count else None

    return _eventually(probe, f"{count} tracked steps of {project}/{app_id}")


def _actions(steps: list[dict]) -> list[str]:
    return [step["step_start_log"]["action"] for step in steps]


def _added(step: dict) -> list[dict]:
    return step["step_end_log"]["state"]["chat_history_added"]


def _user(content: str) -> dict:
    return {"role": "user", "content": content, "type": "text"}


def _talk(
    client: httpx.Client, server: ServerProcess, app_id: str, turns=TURNS, project=PROJECT
) -> list[dict]:
    """Run ``turns`` (prompt, expected responder) and answer the replies' items."""
    replies = []
    for prompt, mode in turns:
        response, frames = post_prompt(client, server.api, project, app_id, prompt)
        assert response.status_code == 200, response.text
        assert frames[-1].type == "end", frames[-1]
        assert frames[-1].value["mode"] == mode
        replies.append(frames[-1].value["item"])
    return replies


def _files_under(*directories: Path) -> list[Path]:
    return [p for d in directories if d.exists() for p in d.rglob("*") if p.is_file()]


def _query(database: Path, sql: str, *args: Any) -> list[tuple]:
    """Rows of ``sql`` on the SQLite file, read (or written) from outside the servers."""
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as conn, conn:
        return conn.execute(sql, args).fetchall()


def _tracked_rows(database: Path, project: str = PROJECT) -> dict[str, int]:
    """Each tracked app of ``project`` in the tables, with its number of entries."""
    apps = _query(
        database, "SELECT app_id FROM chatbot_tracking_apps WHERE project_id = ?", project
    )
    entries = dict(
        _query(
            database,
            "SELECT app_id, count(*) FROM chatbot_tracking_entries WHERE project_id = ? "
            "GROUP BY app_id",
            project,
        )
    )
    # Entries without their app would be a leak no API shows: count them under their id.
    return {app_id: entries.pop(app_id, 0) for (app_id,) in apps} | {
        f"orphan:{app_id}": n for app_id, n in entries.items()
    }


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _database_tracking(serve: StartServer, database: Path, **overrides: str) -> ServerProcess:
    """One server on ``database`` with tracking in it and Burr's UI on."""
    return serve(
        CHATBOT_DATABASE_URL=_sqlite_url(database),
        CHATBOT_TRACKING="database",
        CHATBOT_BURR_UI_ENABLED="true",
        **overrides,
    )


def _stream(
    client: httpx.Client, server: ServerProcess, route: str, app_id: str, body: dict
) -> list[Frame]:
    """A streaming branch route (``edit``, ``regenerate``) read to its end."""
    url = f"{server.api}/{route}/{PROJECT}/{app_id}"
    with client.stream("POST", url, json=body, timeout=60) as response:
        assert response.status_code == 200, response.read()
        frames = list(iter_frames(response))
    assert frames[-1].type == "end", frames[-1]
    return frames


# --- two replicas, one database ----------------------------------------------------------


@dataclass
class Replicas:
    first: ServerProcess
    second: ServerProcess
    homes: list[Path]
    tracking_dirs: list[Path]


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"])
def replicas(request: pytest.FixtureRequest, tmp_path: Path, serve: StartServer) -> Replicas:
    """Two servers, a HOME and a tracking directory each (as on two machines), one database.

    On PostgreSQL tracking is left unset: it must default to the database. On SQLite it is
    asked for (``file`` is SQLite's default).
    """
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_server").create_database()
        tracking: dict[str, str] = {}
    else:
        url = _sqlite_url(tmp_path / "shared.sqlite3")
        tracking = {"CHATBOT_TRACKING": "database"}
    homes = [tmp_path / f"home-{name}" for name in "ab"]
    dirs = [tmp_path / f"tracking-{name}" for name in "ab"]
    servers = []
    for home, directory in zip(homes, dirs, strict=True):
        home.mkdir()
        servers.append(
            serve(
                home=home,
                CHATBOT_DATABASE_URL=url,
                CHATBOT_TRACKING_DIR=str(directory),
                CHATBOT_BURR_UI_ENABLED="true",
                **tracking,
            )
        )
    first, second = servers
    return Replicas(first, second, homes, dirs)


def test_a_conversation_run_on_one_replica_is_tracked_for_the_other(
    replicas: Replicas, client: httpx.Client
) -> None:
    first, second = replicas.first, replicas.second
    replies = _talk(client, first, "shared")

    steps = _tracked_steps(client, second, "shared", count=8)
    assert _actions(steps) == [*ROUTING, "generate_poem", *ROUTING, "answer_question"]
    assert [step["step_start_log"]["sequence_id"] for step in steps] == list(range(8))
    assert [step["step_end_log"]["sequence_id"] for step in steps] == list(range(8))
    # Each step's end state has the messages it added, and the history's length after it.
    assert [_added(step) for step in steps] == [
        [_user(TURNS[0][0])],
        [],
        [],
        [replies[0]],
        [_user(TURNS[1][0])],
        [],
        [],
        [replies[1]],
    ]
    lengths = [step["step_end_log"]["state"]["chat_history_length"] for step in steps]
    assert lengths == [1, 1, 1, 2, 3, 3, 3, 4]
    # The responders' stream timings: begun, first item, ended, with the items it streamed.
    for index in (3, 7):
        events = {event["type"]: event for event in steps[index]["streaming_events"]}
        assert set(events) == {"begin_stream", "first_item_stream", "end_stream"}, events
        began = dt.datetime.fromisoformat(events["begin_stream"]["stream_init_time"])
        first_item = dt.datetime.fromisoformat(events["first_item_stream"]["first_item_time"])
        ended = dt.datetime.fromisoformat(events["end_stream"]["end_time"])
        assert began <= first_item <= ended
        assert events["end_stream"]["items_streamed"] > 0
        assert all(event["action_sequence_id"] == index for event in events.values())
    for step in steps:
        if step["step_start_log"]["action"] in ROUTING:
            assert step["streaming_events"] == []

    # The second replica lists the run in its project, under its partition key too.
    projects = _burr(client, second, "projects").json()
    assert [(p["id"], p["num_apps"]) for p in projects] == [(PROJECT, 1)]
    (listed,) = _apps(client, second)
    assert (listed["app_id"], listed["partition_key"]) == ("shared", PROJECT)
    assert listed["parent_pointer"] is None
    assert _app_ids(client, second, partition=PROJECT) == {"shared"}
    assert _app_ids(client, second, partition="elsewhere") == set()
    # Both replicas read the same rows.
    assert _logs(client, first, "shared").json() == _logs(client, second, "shared").json()
    assert _logs(client, second, "never-run").status_code == 404

    # Nothing went to Burr's files, in either tracking directory or either HOME.
    homes_burr = [home / ".burr" for home in replicas.homes]
    assert _files_under(*replicas.tracking_dirs, *homes_burr) == []


def test_a_fork_points_to_its_parent_and_the_parent_lists_it(
    replicas: Replicas, client: httpx.Client
) -> None:
    first, second = replicas.first, replicas.second
    _talk(client, first, "tree")
    # Editing the second prompt forks ``tree`` before it; regenerating that reply forks the
    # branch shown (the edited one) before its prompt.
    edited = _stream(client, first, "edit", "tree", {"index": 2, "prompt": "What is a river?"})
    assert edited[-1].value["mode"] == "answer_question"
    regenerated = _stream(client, first, "regenerate", "tree", {"index": 3})
    history = client.get(f"{first.api}/history/{PROJECT}/tree").json()
    assert history[3]["branch"]["app_id"] == "tree~2"

    root = _tracked_steps(client, second, "tree", count=8)
    child = _tracked_steps(client, second, "tree~1", count=4)
    grandchild = _tracked_steps(client, second, "tree~2", count=4)
    logs = {app: _logs(client, second, app).json() for app in ("tree", "tree~1", "tree~2")}

    # Both forks were made at the end of the first turn: the state after ``generate_poem``.
    fork_point = 3
    assert _actions(root)[fork_point] == "generate_poem"
    assert root[fork_point]["step_end_log"]["state"]["chat_history_length"] == 2
    assert logs["tree"]["parent_pointer"] is None
    assert logs["tree~1"]["parent_pointer"] == {
        "type": "pointer_data",
        "app_id": "tree",
        "sequence_id": fork_point,
        "partition_key": PROJECT,
    }
    assert logs["tree~2"]["parent_pointer"] == {
        "type": "pointer_data",
        "app_id": "tree~1",
        "sequence_id": fork_point,
        "partition_key": PROJECT,
    }

    def children(app: str) -> list[tuple]:
        return [
            (c["child"]["app_id"], c["child"]["partition_key"], c["event_type"], c["sequence_id"])
            for c in logs[app]["children"]
        ]

    assert children("tree") == [("tree~1", PROJECT, "fork", fork_point)]
    assert children("tree~1") == [("tree~2", PROJECT, "fork", fork_point)]
    assert children("tree~2") == []

    # A fork's own steps are its turn only, continuing its parent's sequence.
    assert _actions(child) == [*ROUTING, "answer_question"]
    assert [step["step_start_log"]["sequence_id"] for step in child] == [4, 5, 6, 7]
    assert _added(child[0]) == [_user("What is a river?")]
    assert _added(child[3]) == [edited[-1].value["item"]]
    assert _added(grandchild[0]) == [_user("What is a river?")]
    assert _added(grandchild[3]) == [regenerated[-1].value["item"]]
    # The listing shows each run with its parent.
    parents = {
        app["app_id"]: (app["parent_pointer"] or {}).get("app_id") for app in _apps(client, second)
    }
    assert parents == {"tree": None, "tree~1": "tree", "tree~2": "tree~1"}


# --- one server, tracking in its SQLite file ---------------------------------------------


def test_deleting_a_conversation_deletes_the_tracking_of_all_its_branches(
    tmp_path: Path, serve: StartServer, client: httpx.Client
) -> None:
    database = tmp_path / "chat.sqlite3"
    server = _database_tracking(serve, database)
    _talk(client, server, "doomed")
    _stream(client, server, "edit", "doomed", {"index": 2, "prompt": "What is a river?"})
    _stream(client, server, "regenerate", "doomed", {"index": 3})
    # Neighbours that must stay: an id that starts like it, and the same id elsewhere.
    _talk(client, server, "doomed-not", TURNS[:1])
    _talk(client, server, "doomed", TURNS[:1], project="other")
    branches = ["doomed", "doomed~1", "doomed~2"]
    for app in branches:
        _tracked_steps(client, server, app, count=4)
    _tracked_steps(client, server, "doomed-not", count=4)
    _tracked_steps(client, server, "doomed", count=4, project="other")
    before = _tracked_rows(database)
    assert set(before) == {*branches, "doomed-not"}
    assert all(before.values())
    kept_elsewhere = _tracked_rows(database, "other")
    assert set(kept_elsewhere) == {"doomed"}

    # One more turn, deleted at once: its tracking may still be on its way.
    _talk(client, server, "doomed", TURNS[1:])
    deleted = client.delete(f"{server.api}/conversations/{PROJECT}/doomed")
    assert deleted.status_code == 204, deleted.text

    assert _app_ids(client, server) == {"doomed-not"}
    for app in branches:
        assert _logs(client, server, app).status_code == 404, app
    assert _tracked_rows(database) == {"doomed-not": before["doomed-not"]}
    assert _tracked_rows(database, "other") == kept_elsewhere
    assert _logs(client, server, "doomed", project="other").status_code == 200

    # Nothing written later brings it back: another turn's tracking lands after all of it.
    _talk(client, server, "doomed-not", TURNS[1:])
    _tracked_steps(client, server, "doomed-not", count=8)
    assert set(_tracked_rows(database)) == {"doomed-not"}
    assert _app_ids(client, server) == {"doomed-not"}


def test_runs_not_written_for_longer_than_the_retention_are_pruned_at_start_up(
    tmp_path: Path, serve: StartServer, client: httpx.Client
) -> None:
    database = tmp_path / "chat.sqlite3"
    server = _database_tracking(serve, database)
    for app in ("old", "recent", "fresh"):
        _talk(client, server, app, TURNS[:1])
        _tracked_steps(client, server, app, count=4)
    server.stop()
    seeded = _tracked_rows(database)
    assert set(seeded) == {"old", "recent", "fresh"} and all(seeded.values())

    now = dt.datetime.now(dt.UTC)
    for app, age in (("old", dt.timedelta(days=3)), ("recent", dt.timedelta(hours=12))):
        stamp = (now - age).isoformat()
        assert stamp.endswith("+00:00")  # as the server stores an instant on SQLite
        _query(
            database,
            "UPDATE chatbot_tracking_apps SET created_at = ?, updated_at = ? "
            "WHERE project_id = ? AND app_id = ?",
            stamp,
            stamp,
            PROJECT,
            app,
        )

    restarted = serve(env=server.env, CHATBOT_TRACKING_RETENTION_DAYS="1")
    # Only the start-up round can prune within the deadline (the next one is an hour on).
    _eventually(lambda: "old" not in _tracked_rows(database), "the old run pruned")
    assert _tracked_rows(database) == {"recent": seeded["recent"], "fresh": seeded["fresh"]}
    assert _query(database, "SELECT count(*) FROM chatbot_tracking_entries WHERE app_id = 'old'")[
        0
    ] == (0,)
    assert _logs(client, restarted, "old").status_code == 404
    assert _app_ids(client, restarted) == {"recent", "fresh"}
    # Only the tracking is pruned: the conversation itself is all there.
    history = client.get(f"{restarted.api}/history/{PROJECT}/old")
    assert history.status_code == 200
    assert [item["role"] for item in history.json()] == ["user", "assistant"]
    _eventually(
        lambda: "pruned the Burr tracking of 1 old runs" in restarted.log(), "the prune logged"
    )


# --- users ---------------------------------------------------------------------------------


@dataclass
class Keys:
    alice: str
    bob: str
    admin: str


def _keys(server: ServerProcess) -> Keys:
    return Keys(
        alice=create_key(server, "alice"),
        bob=create_key(server, "bob"),
        admin=create_key(server, "root", admin=True),
    )


def _prompt_as(client: httpx.Client, server: ServerProcess, key: str, app: str, prompt: str):
    url = f"{server.api}/response/{PROJECT}/{app}"
    body = {"prompt": prompt}
    with client.stream("POST", url, json=body, headers=bearer(key), timeout=60) as response:
        assert response.status_code == 200, response.read()
        frames = list(iter_frames(response))
    assert frames[-1].type == "end", frames[-1]


def test_each_user_sees_only_their_own_runs_and_an_admin_sees_everyones(
    tmp_path: Path, serve: StartServer, client: httpx.Client
) -> None:
    server = _database_tracking(serve, tmp_path / "chat.sqlite3", CHATBOT_AUTH="keys")
    keys = _keys(server)
    # Both name a conversation ``first-chat``; Alice has one more.
    _prompt_as(client, server, keys.alice, "first-chat", "What is a river?")
    _prompt_as(client, server, keys.alice, "alice-only", "What is a lake?")
    _prompt_as(client, server, keys.bob, "first-chat", "Write a poem about Bob")
    alices = _tracked_steps(client, server, "first-chat", count=4, key=keys.alice)
    bobs = _tracked_steps(client, server, "first-chat", count=4, key=keys.bob)
    _tracked_steps(client, server, "alice-only", count=4, key=keys.alice)

    # Each sees their runs under the project name they use, and only theirs.
    assert _added(alices[0]) == [_user("What is a river?")]
    assert _added(bobs[0]) == [_user("Write a poem about Bob")]
    for key, apps in ((keys.alice, {"first-chat", "alice-only"}), (keys.bob, {"first-chat"})):
        projects = _burr(client, server, "projects", key)
        assert projects.status_code == 200, projects.text
        assert [(p["id"], p["name"], p["num_apps"]) for p in projects.json()] == [
            (PROJECT, PROJECT, len(apps))
        ]
        listed = _apps(client, server, key=key)
        assert {app["app_id"] for app in listed} == apps
        assert {app["partition_key"] for app in listed} == {PROJECT}
        assert _app_ids(client, server, partition=PROJECT, key=key) == apps
    assert _logs(client, server, "alice-only", key=keys.bob).status_code == 404
    # Nor by the storage name of Alice's project.
    assert _app_ids(client, server, project=f"{PROJECT}:alice", key=keys.bob) == set()
    assert _logs(client, server, "alice-only", f"{PROJECT}:alice", keys.bob).status_code == 404
    assert _burr(client, server, "projects").status_code == 401

    # The admin sees everyone's, each under its owner's storage project.
    projects = _burr(client, server, "projects", keys.admin).json()
    assert {(p["id"], p["num_apps"]) for p in projects} == {
        (f"{PROJECT}:alice", 2),
        (f"{PROJECT}:bob", 1),
    }
    assert _app_ids(client, server, project=f"{PROJECT}:alice", key=keys.admin) == {
        "first-chat",
        "alice-only",
    }
    assert _app_ids(client, server, project=f"{PROJECT}:bob", key=keys.admin) == {"first-chat"}
    as_admin = _logs(client, server, "first-chat", f"{PROJECT}:bob", keys.admin)
    assert as_admin.status_code == 200
    assert _added(as_admin.json()["steps"][0]) == [_user("Write a poem about Bob")]
    assert _app_ids(client, server, key=keys.admin) == set()  # nobody's bare ``demo``


def test_with_file_tracking_burrs_api_stays_for_admins(
    serve: StartServer, client: httpx.Client
) -> None:
    server = serve(CHATBOT_AUTH="keys", CHATBOT_TRACKING="file", CHATBOT_BURR_UI_ENABLED="true")
    keys = _keys(server)
    refused = _burr(client, server, "projects", keys.alice)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    assert _burr(client, server, f"{PROJECT}/__none__/apps", keys.alice).status_code == 403
    assert _burr(client, server, "projects", keys.admin).status_code == 200


# --- faults and off ------------------------------------------------------------------------


def test_a_database_refusing_tracking_writes_costs_tracking_not_replies(
    tmp_path: Path, serve: StartServer, client: httpx.Client
) -> None:
    database = tmp_path / "chat.sqlite3"
    server = _database_tracking(serve, database)
    first = _talk(client, server, "steady", TURNS[:1])
    _tracked_steps(client, server, "steady", count=4)

    # From outside, the entries' table goes away: every tracking batch now fails.
    _query(database, "ALTER TABLE chatbot_tracking_entries RENAME TO tracking_entries_aside")
    during = _talk(client, server, "steady", TURNS[1:])
    _eventually(
        lambda: "Burr tracking entries were dropped" in server.log(), "a warning of dropped entries"
    )
    during += _talk(client, server, "steady", [("What is a harbour?", "answer_question")])
    history = client.get(f"{server.api}/history/{PROJECT}/steady").json()
    assert history == [
        _user(TURNS[0][0]),
        first[0],
        _user(TURNS[1][0]),
        during[0],
        _user("What is a harbour?"),
        during[1],
    ]
    assert all(item["content"] for item in history)

    # Back again: tracking resumes, the turns in between are lost to it (only to it).
    _query(database, "ALTER TABLE tracking_entries_aside RENAME TO chatbot_tracking_entries")
    last = _talk(client, server, "steady", [("What is a lighthouse keeper?", "answer_question")])
    _eventually(
        lambda: "Burr tracking is written to the database again" in server.log(), "the recovery"
    )
    steps = _tracked_steps(client, server, "steady", count=8)
    prompts = [_added(step) for step in steps if step["step_start_log"]["action"] == "prompt"]
    assert prompts == [[_user(TURNS[0][0])], [_user("What is a lighthouse keeper?")]]
    assert _added(steps[-1]) == last
    # One warning for the whole outage, not one per batch.
    assert server.log().count("Burr tracking entries were dropped") == 1
    # The next outage is warned about again.
    _query(database, "ALTER TABLE chatbot_tracking_entries RENAME TO tracking_entries_aside")
    _talk(client, server, "steady", [("What is a beacon?", "answer_question")])
    _eventually(
        lambda: server.log().count("Burr tracking entries were dropped") == 2,
        "a warning for the second outage",
    )
    assert "Traceback" not in server.log()


@pytest.mark.parametrize(
    "switch",
    [
        {"CHATBOT_TRACKING": "off"},
        {"CHATBOT_TRACKING": "database", "CHATBOT_TRACKING_ENABLED": "false"},
    ],
    ids=["off", "enabled-false"],
)
def test_tracking_off_writes_nothing_and_burr_lists_nothing(
    switch: dict[str, str], tmp_path: Path, serve: StartServer, client: httpx.Client
) -> None:
    database = tmp_path / "chat.sqlite3"
    tracking_dir = tmp_path / "tracking"
    server = serve(
        CHATBOT_DATABASE_URL=_sqlite_url(database),
        CHATBOT_TRACKING_DIR=str(tracking_dir),
        CHATBOT_BURR_UI_ENABLED="true",
        **switch,
    )
    assert client.post(f"{server.api}/create/{PROJECT}/made").status_code == 200
    _talk(client, server, "untracked")
    assert _burr(client, server, "projects").json() == []
    assert _app_ids(client, server) == set()
    assert _logs(client, server, "untracked").status_code == 404
    server.stop()  # whatever was queued is written by now
    for table in ("chatbot_tracking_graphs", "chatbot_tracking_apps", "chatbot_tracking_entries"):
        assert _query(database, f"SELECT count(*) FROM {table}") == [(0,)], table
    assert _files_under(tracking_dir, Path(server.env["HOME"]) / ".burr") == []
    assert "tracking: off" in server.log()
