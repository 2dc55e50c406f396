"""The relay's rows on a real SQLite file and a real PostgreSQL server: signals and their
answers, mirrored batches, what the database says about a conversation, the sweep."""

from __future__ import annotations

import asyncio

import pytest
from burr.core import State

from chatbot.relay.rows import (
    MirroredBatch,
    RelayTable,
    StopAnswer,
    WatchAnswer,
)
from chatbot.store import ConversationStore
from tests.support.postgres import postgres_server, postgres_url  # noqa: F401 (fixtures)
from tests.support.stores import EVENTS_TABLE, SIGNALS_TABLE, opened_store, sql


@pytest.fixture
def other(second_store: ConversationStore) -> ConversationStore:
    """The same database as another server process opens it."""
    return second_store


async def _count(store: ConversationStore, table: str) -> int:
    ((count,),) = await sql(store, f"SELECT count(*) FROM {table}")
    return count


def _batch(reply: str, first: int, end: int, done: bool = False, app: str = "a") -> MirroredBatch:
    payload = "[" + ",".join(f'"e{i}"' for i in range(first, end)) + "]"
    return MirroredBatch("p", app, reply, first, end, done, payload)


async def test_a_watch_keeps_the_best_answer_and_is_pending_until_a_running_one(
    store: ConversationStore, other: ConversationStore
) -> None:
    asker, holder = RelayTable(store.dialect), RelayTable(other.dialect)
    signal = await asker.add_signal("p", "a", "watch")
    assert await asker.watch_answer(signal) is None
    [pending] = await holder.pending_signals(60)
    assert (pending.id, pending.project_id, pending.app_id, pending.kind) == (
        signal,
        "p",
        "a",
        "watch",
    )

    await holder.answer_watch(signal, WatchAnswer("older", running=False, rank=4))
    assert await asker.watch_answer(signal) == WatchAnswer("older", False, 4)
    # A finished reply's answer leaves the signal open for the one being written.
    assert [s.id for s in await holder.pending_signals(60)] == [signal]
    await holder.answer_watch(signal, WatchAnswer("oldest", running=False, rank=2))
    assert await asker.watch_answer(signal) == WatchAnswer("older", False, 4)
    await holder.answer_watch(signal, WatchAnswer("live", running=True, rank=7))
    assert await asker.watch_answer(signal) == WatchAnswer("live", True, 7)
    assert await holder.pending_signals(60) == []
    await holder.answer_watch(signal, WatchAnswer("older", running=False, rank=4))
    assert await asker.watch_answer(signal) == WatchAnswer("live", True, 7)

    await asker.drop_signal(signal)
    assert await _count(store, SIGNALS_TABLE) == 0


async def test_a_stop_is_answered_once(store: ConversationStore, other: ConversationStore) -> None:
    asker, holder = RelayTable(store.dialect), RelayTable(other.dialect)
    signal = await asker.add_signal("p", "a", "stop")
    watch = await asker.add_signal("p", "b", "watch")
    assert {(s.id, s.kind) for s in await holder.pending_signals(60)} == {
        (signal, "stop"),
        (watch, "watch"),
    }
    assert await asker.stop_answer(signal) == StopAnswer(taken=False, outcome=None)
    # Taken before the holder stops the reply; still pending until answered.
    await holder.take_stop(signal, "r1")
    assert await asker.stop_answer(signal) == StopAnswer(taken=True, outcome=None)
    assert {s.id for s in await holder.pending_signals(60)} == {signal, watch}
    await holder.answer_stop(signal, '{"type": "interrupted"}')
    await holder.answer_stop(signal, "null")
    assert await asker.stop_answer(signal) == StopAnswer(True, '{"type": "interrupted"}')
    assert [s.id for s in await holder.pending_signals(60)] == [watch]
    await asker.drop_signal(signal)
    assert await asker.stop_answer(signal) is None
    # Nothing is pending from before the window asked about.
    assert await holder.pending_signals(0) == []


async def test_batches_are_read_from_any_index_in_order_with_the_last_one(
    store: ConversationStore, other: ConversationStore
) -> None:
    holder, reader = RelayTable(store.dialect), RelayTable(other.dialect)
    # An empty backlog, then batches of two replies written together.
    await holder.write_batches([_batch("r1", 0, 0)])
    assert await reader.mirror_exists("p", "a", "r1")
    [empty] = await reader.read_batches("p", "a", "r1", 0)
    assert (empty.first_index, empty.next_index, empty.done, empty.payload) == (0, 0, False, "[]")
    await holder.write_batches([_batch("r1", 0, 3), _batch("r2", 0, 2, app="b")])
    await holder.write_batches([_batch("r1", 3, 5), _batch("r2", 2, 4, done=True, app="b")])
    await holder.write_batches([_batch("r1", 5, 5, done=True)])

    def ranges(batches: list[MirroredBatch]) -> list[tuple[int, int, bool]]:
        return [(b.first_index, b.next_index, b.done) for b in batches]

    # The empty first batch was replaced by the one starting at the same index.
    assert ranges(await reader.read_batches("p", "a", "r1", 0)) == [
        (0, 3, False),
        (3, 5, False),
        (5, 5, True),
    ]
    assert ranges(await reader.read_batches("p", "a", "r1", 3)) == [(3, 5, False), (5, 5, True)]
    assert ranges(await reader.read_batches("p", "a", "r1", 4)) == [(3, 5, False), (5, 5, True)]
    # A reader that has everything still learns that the reply ended.
    assert ranges(await reader.read_batches("p", "a", "r1", 5)) == [(5, 5, True)]
    [batch] = await reader.read_batches("p", "b", "r2", 3)
    assert batch.payload == '["e2","e3"]' and batch.reply_id == "r2"
    assert await reader.read_batches("p", "a", "r2", 0) == []  # ids are per conversation

    await holder.drop_mirrors([("p", "a", "r1")])
    assert not await reader.mirror_exists("p", "a", "r1")
    assert await reader.mirror_exists("p", "b", "r2")


async def test_activity_says_whether_a_turn_runs_or_was_stored_lately(
    store: ConversationStore, other: ConversationStore
) -> None:
    relay = RelayTable(other.dialect)
    nothing = await relay.activity("p", "a", 60)
    assert (nothing.turn_running, nothing.stored_turns, nothing.recently_stored) == (0, 0, 0)
    await store.create("p", "a")
    created = await relay.activity("p", "a", 60)
    assert (created.turn_running, created.stored_turns, created.recently_stored) == (0, 0, 0)

    lease = await store.acquire_turn("p", "a")
    running = await relay.activity("p", "a", 60)
    assert running.turn_running and running.stored_turns == 0
    history = [
        {"role": "user", "content": "Hi?", "type": "text"},
        {"role": "assistant", "content": "Hello.", "type": "text"},
    ]
    await store.save(
        "p", "a", 1, "answer_question", State({"chat_history": history}), "completed"
    )
    await lease.release()
    stored = await relay.activity("p", "a", 60)
    assert (stored.turn_running, stored.stored_turns, stored.recently_stored) == (0, 1, 1)
    assert not (await relay.activity("p", "a", 0)).recently_stored
    assert not (await relay.activity("p", "other", 60)).recently_stored


async def test_the_sweep_drops_only_rows_past_their_age(
    store: ConversationStore, other: ConversationStore
) -> None:
    relay = RelayTable(store.dialect)
    await relay.add_signal("p", "a", "watch")
    await relay.write_batches([_batch("r1", 0, 2), _batch("r2", 0, 1, app="b")])
    await RelayTable(other.dialect).sweep(3600, 3600)
    assert await _count(store, SIGNALS_TABLE) == 1
    assert await _count(store, EVENTS_TABLE) == 2
    await asyncio.sleep(0.01)  # so that "older than 0 s" is true of every row
    await RelayTable(other.dialect).sweep(0, 0)
    assert await _count(store, SIGNALS_TABLE) == 0
    assert await _count(store, EVENTS_TABLE) == 0


@pytest.mark.postgres
async def test_postgres_notifications_wake_the_waiting_side(
    postgres_url: str,  # noqa: F811
) -> None:
    holding, asking = await opened_store(postgres_url), await opened_store(postgres_url)
    holder, asker = RelayTable(holding.dialect), RelayTable(asking.dialect)
    try:
        # Far longer than the test may take: only a notification ends these waits.
        signals = asyncio.create_task(holder.wait_for_change("signals", 3600))
        await asyncio.sleep(0.1)  # waiting before the signal is sent
        signal = await asker.add_signal("p", "a", "watch")
        await asyncio.wait_for(signals, 60)

        replies = asyncio.create_task(asker.wait_for_change("replies", 3600))
        await asyncio.sleep(0.1)
        await holder.answer_watch(signal, WatchAnswer("r", True, 3))
        await asyncio.wait_for(replies, 60)

        replies = asyncio.create_task(asker.wait_for_change("replies", 3600))
        await asyncio.sleep(0.1)
        await holder.write_batches([_batch("r", 0, 1)])
        await asyncio.wait_for(replies, 60)
    finally:
        await holding.close()
        await asking.close()


@pytest.mark.postgres
async def test_a_lost_listening_connection_comes_back(
    postgres_url: str,  # noqa: F811
) -> None:
    holder, asker = await opened_store(postgres_url), await opened_store(postgres_url)
    try:
        listening = await sql(
            asker, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN %'"
        )
        assert listening == [(2,)]  # one per store
        await sql(
            asker,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN %'",
        )

        async def woken() -> bool:
            """Whether a signal sent now wakes the holder (within a generous bound)."""
            waiting = asyncio.create_task(
                RelayTable(holder.dialect).wait_for_change("signals", 3600)
            )
            await asyncio.sleep(0.1)
            await RelayTable(asker.dialect).add_signal("p", "a", "watch")
            try:
                await asyncio.wait_for(waiting, 2)
            except TimeoutError:
                return False
            return True

        # Meanwhile the relay polls; the listener is opened again within a few tries.
        for _ in range(30):
            if await woken():
                break
        else:
            pytest.fail("the listening connection never came back")
    finally:
        await holder.close()
        await asker.close()
