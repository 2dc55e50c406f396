"""Finding a conversation by its history, in both stores and across server processes.

A stateless client (the OpenAI-compatible API) resends the conversation; the stores keep a
digest of each conversation's latest history so that any process can find which one it is.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest
from burr.core import State

from chatbot.conversations.continuation import history_digest
from chatbot.store import ConversationStore
from tests.support.fake_openai import FakeOpenAI, Script
from tests.support.postgres import postgres_server, postgres_url  # noqa: F401 (fixtures)
from tests.support.server_process import server_env, start_server

U1 = {"role": "user", "content": "What is a river?", "type": "text"}
A1 = {"role": "assistant", "content": "Water that moves.", "type": "text"}
U2 = {"role": "user", "content": "And a lake?", "type": "text"}
A2 = {"role": "assistant", "content": "Water that waits.", "type": "text"}
FAILED = {"role": "assistant", "content": "The model failed.", "type": "error"}


async def save(store: ConversationStore, app_id: str, sequence_id: int, history: list) -> None:
    state = State({"chat_history": history})
    await store.save("proj", app_id, sequence_id, "answer_question", state, "completed")


async def test_a_conversation_is_found_by_its_latest_history_only(
    store: ConversationStore,
) -> None:
    await save(store, "rivers", 3, [U1, A1])
    assert await store.find_by_history("proj", history_digest([U1, A1])) == "rivers"
    await save(store, "rivers", 7, [U1, A1, U2, A2])
    assert await store.find_by_history("proj", history_digest([U1, A1, U2, A2])) == "rivers"
    # An older prefix is no longer this conversation's history: resending it is a new start.
    assert await store.find_by_history("proj", history_digest([U1, A1])) is None
    assert await store.find_by_history("other-project", history_digest([U1, A1, U2, A2])) is None


async def test_a_failed_turn_leaves_the_history_a_client_holds_findable(
    store: ConversationStore,
) -> None:
    await save(store, "failing", 3, [U1, A1, U2, FAILED])
    assert await store.find_by_history("proj", history_digest([U1, A1])) == "failing"


async def test_the_most_recent_of_equal_histories_wins_and_delete_forgets(
    store: ConversationStore,
) -> None:
    await save(store, "first", 3, [U1, A1])
    await save(store, "second", 3, [U1, A1])
    assert await store.find_by_history("proj", history_digest([U1, A1])) == "second"
    assert await store.delete("proj", "second")
    assert await store.find_by_history("proj", history_digest([U1, A1])) == "first"
    assert await store.delete("proj", "first")
    assert await store.find_by_history("proj", history_digest([U1, A1])) is None


@pytest.mark.postgres
def test_resent_messages_continue_a_conversation_on_another_process(
    tmp_path: Path,
    postgres_url: str,  # noqa: F811
    fake_openai: FakeOpenAI,
) -> None:
    servers = []
    for name in "ab":
        home = tmp_path / name
        home.mkdir()
        env = server_env(
            home,
            CHATBOT_DATABASE_URL=postgres_url,
            OPENAI_API_KEY="test-key",
            OPENAI_BASE_URL=fake_openai.base_url,
        )
        servers.append(start_server(home, env=env))
    try:
        messages: list[dict] = []
        app_ids = []
        for turn in range(4):
            server = servers[turn % 2]
            fake_openai.on_stream(Script(tokens=[f"reply {turn}", f" from {server.base_url}"]))
            messages.append({"role": "user", "content": f"question {turn}?"})
            client = openai.OpenAI(
                base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0
            )
            raw = client.chat.completions.with_raw_response.create(
                model="burr-chatbot", messages=messages
            )
            app_ids.append(raw.headers["X-Conversation-Id"])
            reply = raw.parse().choices[0].message.content
            messages.append({"role": "assistant", "content": reply})
        assert len(set(app_ids)) == 1
        history = httpx.get(
            f"{servers[0].api}/history/demo_streaming_chatbot/{app_ids[0]}"
        ).json()
        assert [(i["role"], i["content"]) for i in history] == [
            (m["role"], m["content"]) for m in messages
        ]
    finally:
        for server in servers:
            server.stop()


@pytest.mark.postgres
def test_a_turn_re_asked_on_another_process_branches_the_same_conversation(
    tmp_path: Path,
    postgres_url: str,  # noqa: F811
    fake_openai: FakeOpenAI,
) -> None:
    """Turns on one process, the client's regenerate on another, its walk back on the first:
    every step finds the conversation's branches and boundaries in the shared database."""
    servers = []
    for name in "ab":
        home = tmp_path / name
        home.mkdir()
        env = server_env(
            home,
            CHATBOT_DATABASE_URL=postgres_url,
            OPENAI_API_KEY="test-key",
            OPENAI_BASE_URL=fake_openai.base_url,
        )
        servers.append(start_server(home, env=env))
    replies = ["Water that moves.", "Water that waits.", "Water at rest.", "Salt water."]
    fake_openai.on_stream(*(Script(tokens=[reply]) for reply in replies))
    named = {"X-Conversation-Id": "pg-branches"}

    def ask(server_index: int, messages: list[dict]) -> str:
        client = openai.OpenAI(
            base_url=f"{servers[server_index].base_url}/v1", api_key="unused", max_retries=0
        )
        raw = client.chat.completions.with_raw_response.create(
            model="burr-chatbot", messages=messages, extra_headers=named
        )
        assert raw.headers["X-Conversation-Id"] == "pg-branches"
        return raw.parse().choices[0].message.content

    def contents(server_index: int) -> list[str]:
        url = f"{servers[server_index].api}/history/demo_streaming_chatbot/pg-branches"
        return [item["content"] for item in httpx.get(url).json()]

    try:
        original = [{"role": "user", "content": "What is a river?"}]
        original.append({"role": "assistant", "content": ask(0, original)})
        original.append({"role": "user", "content": "And a lake?"})
        original.append({"role": "assistant", "content": ask(0, original)})

        assert ask(1, original[:3]) == "Water at rest."  # the second reply regenerated
        assert contents(0) == [*(m["content"] for m in original[:3]), "Water at rest."]
        listed = httpx.get(
            f"{servers[0].api}/branches/demo_streaming_chatbot/pg-branches", params={"index": 3}
        ).json()
        assert [v["preview"] for v in listed["versions"]] == [replies[1], "Water at rest."]

        # The client that still holds the first version goes on in it, on the other process.
        follow = [*original, {"role": "user", "content": "And the sea?"}]
        assert ask(0, follow) == "Salt water."
        assert contents(1) == [*(m["content"] for m in follow), "Salt water."]
    finally:
        for server in servers:
            server.stop()
