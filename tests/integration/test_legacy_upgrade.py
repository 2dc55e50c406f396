"""A database written by the release before migrations (78b97e7) is upgraded in place.

The fixtures in ``tests/fixtures/legacy_78b97e7`` were made by that release's servers
through the HTTP API (see its README): a SQLite file and a PostgreSQL dump, and
``expected.json``, what those servers answered. A server of this release is started on a
copy of each: it migrates the database at start, and must then answer exactly the same
for every conversation (history, the versions of each item, the branch shown, every
branch when shown, the listing, the deleted one), and new turns must work.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatbot.database.migrate import head
from tests.support.postgres import PostgresServer
from tests.support.server_process import CHATBOT, ServerProcess, server_env, start_server
from tests.support.sse_client import post_prompt

FIXTURES = Path(__file__).parents[1] / "fixtures" / "legacy_78b97e7"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def legacy(
    request: pytest.FixtureRequest, home: Path
) -> Iterator[tuple[str, ServerProcess, dict[str, str]]]:
    """A server of this release on a copy of the backend's legacy database."""
    if request.param == "sqlite":
        data_dir = home / "data"
        data_dir.mkdir()
        shutil.copyfile(FIXTURES / "conversations.sqlite3", data_dir / "chatbot.sqlite3")
        env = server_env(home, CHATBOT_DATA_DIR=str(data_dir))
    else:
        postgres: PostgresServer = request.getfixturevalue("postgres_server")
        url = postgres.create_database()
        subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f",
             str(FIXTURES / "conversations.pg.sql")],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        env = server_env(home, CHATBOT_DATABASE_URL=url)
    server = start_server(home, env=env)
    try:
        yield request.param, server, env
    finally:
        server.stop()


def _get(client: httpx.Client, url: str, **params: Any) -> Any:
    response = client.get(url, params=params)
    assert response.status_code == 200, (url, response.text)
    return response.json()


def _versions(client: httpx.Client, api: str, project: str, app: str, history: list) -> dict:
    """The versions of each item that has a branch mark, as the fixture's reader took them."""
    return {
        str(index): _get(client, f"{api}/branches/{project}/{app}", index=index)
        for index, item in enumerate(history)
        if "branch" in item
    }


def test_a_database_written_by_78b97e7_shows_everything_as_before_and_takes_new_turns(
    legacy: tuple[str, ServerProcess, dict[str, str]], client: httpx.Client, home: Path
) -> None:
    backend, server, env = legacy
    expected = EXPECTED["backends"][backend]
    api = server.api
    current = subprocess.run(
        [str(CHATBOT), "db", "current"], cwd=home, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert f"schema revision {head()} (up to date)" in current.stdout, current.stderr

    for project, seen in expected["projects"].items():
        listing = _get(client, f"{api}/conversations/{project}", limit=200)
        assert listing == seen["listing"], project
        for app, conversation in seen["conversations"].items():
            history = _get(client, f"{api}/history/{project}/{app}")
            assert history == conversation["history"], (project, app)
            assert _versions(client, api, project, app, history) == conversation["versions"]
        for app, deleted in seen["deleted"].items():
            gone = client.get(f"{api}/history/{project}/{app}")
            versions = client.get(f"{api}/branches/{project}/{app}", params={"index": 0})
            assert (gone.status_code, gone.json()["error"]["code"]) == (
                deleted["history_status"],
                deleted["history_error_code"],
            )
            assert (versions.status_code, versions.json()["error"]["code"]) == (
                deleted["branches_status"],
                deleted["branches_error_code"],
            )

    # Every branch, shown in turn (switching is stored, so after the reads above).
    for project, seen in expected["projects"].items():
        for app, conversation in seen["conversations"].items():
            if not any("branch" in item for item in conversation["history"]):
                continue  # one branch: its history was compared above
            for branch, view in conversation["branches"].items():
                response = client.post(f"{api}/branches/{project}/{app}", json={"app_id": branch})
                assert response.status_code == 200, (project, app, branch, response.text)
                assert response.json() == view["history"], (project, app, branch)
                assert _versions(client, api, project, app, view["history"]) == view["versions"]
            # Back to the branch that was shown, and the history is the one read at first.
            shown = conversation["shown_branch"]
            client.post(f"{api}/branches/{project}/{app}", json={"app_id": shown})
            assert _get(client, f"{api}/history/{project}/{app}") == conversation["history"]

    # New turns: on a branched conversation, on the one whose process died mid-reply (its
    # lease has long lapsed), on a new one, and a /v1 client resending a stored history.
    branchy = EXPECTED["backends"][backend]["projects"]["alpha"]["conversations"]["branchy"]
    for project, app, before in (
        ("alpha", "branchy", branchy["history"]),
        ("beta", "crashed-mid-reply", None),
        ("alpha", "brand-new", []),
    ):
        if before is None:
            before = _get(client, f"{api}/history/{project}/{app}")
        _, frames = post_prompt(client, api, project, app, "One more question?")
        assert frames[-1].type == "end", frames[-1]
        after = _get(client, f"{api}/history/{project}/{app}")
        assert _plain(after[: len(before)]) == _plain(before)
        assert len(after) == len(before) + 2
        assert after[len(before)]["content"] == "One more question?"

    oai = expected["notes"]["openai_history_matched_id"]
    stored = expected["projects"]["demo_streaming_chatbot"]["conversations"][oai]["history"]
    messages = [{"role": m["role"], "content": m["content"]} for m in stored]
    response = client.post(
        f"{server.base_url}/v1/chat/completions",
        json={"model": "burr-chatbot", "messages": [*messages, _user("And then?")]},
    )
    assert response.status_code == 200, response.text
    assert response.headers["X-Conversation-Id"] == oai  # found by its stored digest


def _plain(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in item.items() if k != "branch"} for item in history]


def _user(content: str) -> dict:
    return {"role": "user", "content": content}
