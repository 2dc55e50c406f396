"""The stores themselves, on a real SQLite file and a real PostgreSQL server.

Both are Burr persisters: Burr's own ``initialize_from``/``with_state_persister`` must work
with them. On top they keep summaries, prune old snapshots and (PostgreSQL) fence writes
with the turn lease.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from burr.core import ApplicationBuilder, State, action, default

from chatbot.persistence import ConversationBusy, ConversationStore, open_store
from chatbot.persistence.base import SNAPSHOTS_KEPT, STATE_TABLE
from tests.support.postgres import postgres_server, postgres_url  # noqa: F401 (fixtures)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[ConversationStore]:
    opened = open_store(database_url, lease_ttl_s=30)
    await opened.initialize()
    try:
        yield opened
    finally:
        await opened.close()


async def _state_rows(store: ConversationStore, app_id: str) -> int:
    if hasattr(store, "pool"):
        return await store.pool.fetchval(
            f"SELECT count(*) FROM {STATE_TABLE} WHERE app_id = $1", app_id
        )
    async with store.connection.execute(
        f"SELECT count(*) FROM {STATE_TABLE} WHERE app_id = ?", (app_id,)
    ) as cursor:
        return (await cursor.fetchone())[0]


@action(reads=["count"], writes=["count"])
async def count_up(state: State) -> tuple[dict, State]:
    result = {"count": state["count"] + 1}
    return result, state.update(**result)


async def _counter(store: ConversationStore, app_id: str):
    return await (
        ApplicationBuilder()
        .with_actions(count_up=count_up)
        .with_transitions(("count_up", "count_up", default))
        .initialize_from(
            store,
            resume_at_next_action=True,
            default_state={"count": 0},
            default_entrypoint="count_up",
        )
        .with_state_persister(store)
        .with_identifiers(app_id=app_id, partition_key="burr-project")
        .abuild()
    )


async def test_burr_applications_persist_and_resume_through_the_store(
    store: ConversationStore,
) -> None:
    app = await _counter(store, "counter")
    for _ in range(3):
        await app.astep()
    resumed = await _counter(store, "counter")
    assert resumed.state["count"] == 3
    await resumed.astep()
    loaded = await store.load("burr-project", "counter")
    assert loaded["state"]["count"] == 4 and loaded["status"] == "completed"
    # Burr's own loader (the parent class) reads the rows we wrote.
    by_sequence = await store.load("burr-project", "counter", sequence_id=loaded["sequence_id"])
    assert by_sequence["state"].get_all() == loaded["state"].get_all()


async def test_saves_keep_the_summary_and_prune_old_snapshots(store: ConversationStore) -> None:
    history: list[dict] = []
    for turn in range(SNAPSHOTS_KEPT + 3):
        history += [
            {"role": "user", "content": f"  prompt\n{turn}  ", "type": "text"},
            {"role": "assistant", "content": f"reply {turn}", "type": "text"},
        ]
        state = State({"chat_history": list(history), "__SEQUENCE_ID": 4 * turn + 3})
        await store.save_state(
            "proj", "pruned", 4 * turn + 3, "answer_question", state, "completed"
        )
    assert await _state_rows(store, "pruned") == SNAPSHOTS_KEPT
    latest = await store.load_state("proj", "pruned")
    assert latest["chat_history"] == history
    items, total = await store.list("proj", 10, 0)
    assert total == 1
    assert (items[0].app_id, items[0].title, items[0].turns) == ("pruned", "prompt 0", 8)
    assert await store.delete("proj", "pruned")
    assert await store.load_state("proj", "pruned") is None
    assert not await store.exists("proj", "pruned")
    assert await _state_rows(store, "pruned") == 0
    assert await store.list("proj", 10, 0) == ([], 0)


async def test_a_turn_lease_is_exclusive_until_released(store: ConversationStore) -> None:
    lease = await store.acquire_turn("proj", "leased")
    with pytest.raises(ConversationBusy):
        await store.acquire_turn("proj", "leased")
    other = await store.acquire_turn("proj", "another")  # other conversations are free
    await lease.release()
    await lease.release()  # releasing twice is harmless
    again = await store.acquire_turn("proj", "leased")
    await again.release()
    await other.release()


@pytest.mark.postgres
async def test_postgres_leases_are_shared_between_stores_and_fence_late_writes(
    postgres_url: str,  # noqa: F811
) -> None:
    from chatbot.persistence.postgres import LEASES_TABLE, TurnLeaseLost

    first = open_store(postgres_url, lease_ttl_s=30)
    second = open_store(postgres_url, lease_ttl_s=30)
    await first.initialize()
    await second.initialize()
    try:
        lease = await first.acquire_turn("proj", "fenced")
        with pytest.raises(ConversationBusy):
            await second.acquire_turn("proj", "fenced")
        # The first process stalls past its expiry; the second takes the conversation over.
        await first.pool.execute(f"UPDATE {LEASES_TABLE} SET expires_at = now() - interval '1s'")
        takeover = await second.acquire_turn("proj", "fenced")
        state = State({"chat_history": [{"role": "user", "content": "late", "type": "text"}]})
        with pytest.raises(TurnLeaseLost):
            await first.save_state("proj", "fenced", 3, "answer_question", state, "completed")
        assert await second.load_state("proj", "fenced") is None
        await lease.release()  # must not free the second store's lease
        with pytest.raises(ConversationBusy):
            await first.acquire_turn("proj", "fenced")
        await second.save_state("proj", "fenced", 3, "answer_question", state, "completed")
        await takeover.release()
        assert (await first.load_state("proj", "fenced"))["chat_history"][0]["content"] == "late"
        assert await first.pool.fetchval(f"SELECT count(*) FROM {LEASES_TABLE}") == 0
    finally:
        await first.close()
        await second.close()


@pytest.mark.postgres
async def test_postgres_leases_are_renewed_while_held(postgres_url: str) -> None:  # noqa: F811
    holder = open_store(postgres_url, lease_ttl_s=1)
    other = open_store(postgres_url, lease_ttl_s=1)
    await holder.initialize()
    await other.initialize()
    try:
        lease = await holder.acquire_turn("proj", "long")
        await asyncio.sleep(2.5)  # well past the TTL: only renewal keeps it
        with pytest.raises(ConversationBusy):
            await other.acquire_turn("proj", "long")
        state = State({"chat_history": []})
        await holder.save_state("proj", "long", 3, "answer_question", state, "completed")
        await lease.release()
        await (await other.acquire_turn("proj", "long")).release()
    finally:
        await holder.close()
        await other.close()


async def test_concurrent_saves_all_land_with_their_own_summaries(store: ConversationStore) -> None:
    """Many turns finishing at once (SQLite writes them as one group commit)."""

    def history(app: int, turns: int) -> list[dict]:
        items = []
        for turn in range(turns):
            items.append({"role": "user", "content": f"q{app}-{turn}", "type": "text"})
            items.append({"role": "assistant", "content": f"a{app}-{turn}", "type": "text"})
        return items

    async def save(app: int, turns: int) -> None:
        state = State({"chat_history": history(app, turns)})
        await store.save_state("burst", f"c{app}", turns * 4, "answer_question", state, "completed")

    await asyncio.gather(*(save(app, 1) for app in range(40)))
    await asyncio.gather(*(save(app, 2) for app in range(40)), save(0, 3))
    for app in range(40):
        loaded = await store.load_state("burst", f"c{app}")
        assert loaded["chat_history"] == history(app, 3 if app == 0 else 2)
    items, total = await store.list("burst", 100, 0)
    assert total == 40
    turns = {item.app_id: item.turns for item in items}
    assert turns["c0"] == 3 and all(turns[f"c{app}"] == 2 for app in range(1, 40))
    assert {item.title for item in items} == {f"q{app}-0" for app in range(40)}
