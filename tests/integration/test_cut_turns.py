"""Turns cut short by a process that died, stored by the next one to take their lease
(``chatbot.conversations.leases``), on SQLite and PostgreSQL.

The dying process is a store whose leases are expired by hand (``expire_leases``: its
renewals stopped); the survivor is a second store on the same database.
"""

from __future__ import annotations

import pytest
from burr.core import State

from chatbot.conversations.leases import CutTurns, take_lease
from chatbot.store import ConversationBusy, ConversationStore
from tests.support.stores import expire_leases

LOST = {
    "role": "assistant",
    "content": "The server writing this reply stopped before it ended; send your message again.",
    "type": "error",
}


def _user(content: str) -> dict:
    return {"role": "user", "content": content, "type": "text"}


def _reply(content: str) -> dict:
    return {"role": "assistant", "content": content, "type": "text"}


async def _history(store: ConversationStore, conversation_id: str) -> list[dict]:
    state = await store.load_state("proj", conversation_id)
    return list(state["chat_history"]) if state is not None else []


async def _stored_turn(store: ConversationStore, conversation_id: str, *items: dict) -> None:
    """One completed turn, stored as a turn stores it (under its lease, with its prompt)."""
    lease = await store.acquire_turn("proj", conversation_id, prompt=items[-2]["content"])
    state = State({"chat_history": list(items), "response": items[-1]})
    await store.save("proj", conversation_id, 3, "answer_question", state, "completed")
    await lease.release()


async def test_the_next_turn_stores_the_cut_one_first(
    store: ConversationStore, second_store: ConversationStore
) -> None:
    earlier = [_user("What is a lighthouse?"), _reply("A tower with a light.")]
    await _stored_turn(store, "ferry", *earlier)
    await store.acquire_turn("proj", "ferry", prompt="Write a poem about the night ferry")
    with pytest.raises(ConversationBusy):  # until the dead process's lease lapses
        await take_lease(second_store, "proj", "ferry", prompt="And now?")
    await expire_leases(store)

    lease = await take_lease(second_store, "proj", "ferry", prompt="And now?")
    try:
        assert await _history(second_store, "ferry") == [
            *earlier,
            _user("Write a poem about the night ferry"),
            LOST,
        ]
        state = await second_store.load("proj", "ferry")
        assert state is not None and state["sequence_id"] == 4  # after the turn before
    finally:
        await lease.release()
    # Stored once: taking the lease again finds nothing cut.
    again = await take_lease(second_store, "proj", "ferry")
    await again.release()
    assert len(await _history(second_store, "ferry")) == 4


async def test_a_first_turn_cut_short_makes_the_conversation(
    store: ConversationStore, second_store: ConversationStore
) -> None:
    await store.acquire_turn("proj", "fresh", prompt="Hello?")
    await expire_leases(store)
    await CutTurns(second_store, every_s=60).store_all()
    assert await _history(second_store, "fresh") == [_user("Hello?"), LOST]
    listed, total = await second_store.list("proj", limit=10, offset=0)
    assert total == 1 and listed[0].app_id == "fresh"
    assert await second_store.lapsed_turns() == []


async def test_the_timer_leaves_running_turns_and_cut_forks_alone(
    store: ConversationStore, second_store: ConversationStore
) -> None:
    running = await store.acquire_turn("proj", "running", prompt="Still going?")
    await CutTurns(second_store, every_s=60).store_all()
    assert await _history(second_store, "running") == []  # its lease is alive
    await running.release()
    # A lease taken without a prompt (a fork's first turn, a switch) leaves nothing to store.
    await store.acquire_turn("proj", "forked")
    await expire_leases(store)
    await CutTurns(second_store, every_s=60).store_all()
    assert await _history(second_store, "forked") == []
    assert await second_store.lapsed_turns() == []
