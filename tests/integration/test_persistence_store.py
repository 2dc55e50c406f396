"""The stores themselves, on a real SQLite file and a real PostgreSQL server.

Both are Burr persisters: Burr's own ``initialize_from`` (the way the runtime loads a
conversation, forks included) and ``with_state_persister`` must work with them, and
Burr's stock persisters must read their rows. On top they keep summaries, prune old
snapshots, answer a readiness ping and share turn leases that fence late writes.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import socket
import sqlite3
import sys
import threading
import time
import uuid
from pathlib import Path

import aiosqlite
import asyncpg
import pytest
import sqlalchemy as sa
from burr.core import ApplicationBuilder, State, action, default
from burr.integrations.persisters.b_aiosqlite import AsyncSQLitePersister
from burr.integrations.persisters.b_asyncpg import AsyncPostgreSQLPersister

from chatbot.conversations.leases import store_cut_turn
from chatbot.domain.errors import REPLY_LOST
from chatbot.store import (
    ConversationBusy,
    ConversationStore,
    StoreUnavailable,
    TurnLeaseLost,
    open_store,
)
from chatbot.store.base import SNAPSHOTS_KEPT
from tests.support.postgres import PostgresServer
from tests.support.stores import (
    HOLDERS_TABLE,
    LEASES_TABLE,
    STATE_TABLE,
    expire_leases,
    is_postgres,
    opened_store,
    sql,
)


async def _state_rows(store: ConversationStore, app_id: str) -> int:
    ((count,),) = await sql(store, f"SELECT count(*) FROM {STATE_TABLE} WHERE app_id = ?", app_id)
    return count


def _chat(*contents: str) -> list[dict]:
    roles = ["user", "assistant"]
    return [
        {"role": roles[i % 2], "content": content, "type": "text"}
        for i, content in enumerate(contents)
    ]


@action(reads=["count"], writes=["count"])
async def count_up(state: State) -> tuple[dict, State]:
    result = {"count": state["count"] + 1}
    return result, state.update(**result)


def _counter_builder() -> ApplicationBuilder:
    return (
        ApplicationBuilder()
        .with_actions(count_up=count_up)
        .with_transitions(("count_up", "count_up", default))
    )


async def _loaded(store: ConversationStore, app_id: str, **fork: object):
    """A counter application loaded the way the runtime loads a conversation."""
    return await (
        _counter_builder()
        .initialize_from(
            store,
            resume_at_next_action=False,
            default_state={"count": 0},
            default_entrypoint="count_up",
            **fork,
        )
        .with_identifiers(app_id=app_id, partition_key="proj")
        .abuild()
    )


async def test_burr_initialize_from_loads_what_one_save_per_turn_stored(
    store: ConversationStore,
) -> None:
    fresh = await _loaded(store, "counter")
    assert fresh.state["count"] == 0 and fresh.sequence_id is None
    for expected in (1, 2):
        app = await _loaded(store, "counter")
        await app.astep()
        await app.astep()  # two steps of one turn, saved once at its end
        await store.save(
            app.partition_key, app.uid, app.sequence_id, "count_up", app.state, "completed"
        )
        resumed = await _loaded(store, "counter")
        assert resumed.state["count"] == 2 * expected
        assert resumed.sequence_id == app.sequence_id
    assert await _state_rows(store, "counter") == 2  # one row per turn, not per step


async def test_burr_forks_from_a_stored_sequence_id(store: ConversationStore) -> None:
    for sequence_id, count in ((3, 30), (7, 70)):
        state = State({"count": count, "chat_history": _chat(f"turn {sequence_id}", "ok")})
        await store.save("proj", "origin", sequence_id, "count_up", state, "completed")
    fork = await _loaded(
        store,
        "fork",
        fork_from_app_id="origin",
        fork_from_partition_key="proj",
        fork_from_sequence_id=3,
    )
    assert fork.state["count"] == 30 and fork.sequence_id == 3
    assert fork.uid == "fork"
    latest = await _loaded(
        store, "fork-latest", fork_from_app_id="origin", fork_from_partition_key="proj"
    )
    assert latest.state["count"] == 70
    # The fork starts a conversation of its own; the original is untouched.
    await fork.astep()
    await store.save("proj", "fork", fork.sequence_id, "count_up", fork.state, "completed")
    assert (await store.load("proj", "fork"))["state"]["count"] == 31
    assert (await store.load("proj", "origin"))["state"]["count"] == 70
    assert await store.load("proj", "origin", sequence_id=5) is None


async def test_burr_with_state_persister_persists_and_resumes(store: ConversationStore) -> None:
    async def counter():
        return await (
            _counter_builder()
            .initialize_from(
                store,
                resume_at_next_action=True,
                default_state={"count": 0},
                default_entrypoint="count_up",
            )
            .with_state_persister(store)
            .with_identifiers(app_id="persisted", partition_key="burr-project")
            .abuild()
        )

    app = await counter()
    for _ in range(3):
        await app.astep()
    resumed = await counter()
    assert resumed.state["count"] == 3
    await resumed.astep()
    loaded = await store.load("burr-project", "persisted")
    assert loaded["state"]["count"] == 4 and loaded["status"] == "completed"
    assert await store.list_app_ids("burr-project") == ["persisted"]
    assert await store.list_app_ids("proj") == []


async def test_burr_stock_persisters_read_our_rows_and_we_read_theirs(
    store: ConversationStore,
) -> None:
    if is_postgres(store):
        conn = await asyncpg.connect(store.dialect.database_url)
        burr = AsyncPostgreSQLPersister(connection=conn, table_name=STATE_TABLE)
    else:
        conn = await aiosqlite.connect(store.dialect.database_url.removeprefix("sqlite:///"))
        burr = AsyncSQLitePersister(connection=conn, table_name=STATE_TABLE)
    try:
        ours = State({"count": 5, "chat_history": _chat("hello", "hi there")})
        await store.save("proj", "ours", 4, "count_up", ours, "completed")
        read_by_burr = await burr.load("proj", "ours")
        assert read_by_burr["state"].get_all() == ours.get_all()
        assert read_by_burr["sequence_id"] == 4 and read_by_burr["position"] == "count_up"

        theirs = State({"count": 9, "chat_history": _chat("from burr")})
        await burr.save("proj", "theirs", 2, "count_up", theirs, "failed")
        read_by_us = await store.load("proj", "theirs")
        assert read_by_us["state"].get_all() == theirs.get_all()
        assert read_by_us["status"] == "failed"
        assert sorted(await store.list_app_ids("proj")) == ["ours", "theirs"]
        assert sorted(await burr.list_app_ids("proj")) == ["ours", "theirs"]
    finally:
        await conn.close()


async def test_is_initialized_and_ping_tell_the_truth(database_url: str) -> None:
    store = open_store(database_url)
    assert not await store.is_initialized()
    with pytest.raises(StoreUnavailable):
        await store.ping()
    await store.initialize()
    try:
        assert await store.is_initialized()
        assert await store.ping() is None
    finally:
        await store.close()
    assert not await store.is_initialized()
    with pytest.raises(StoreUnavailable):
        await store.ping()


@pytest.mark.postgres
async def test_postgres_ping_fails_when_the_database_stops_answering(
    postgres_server: PostgresServer,  # noqa: F811
) -> None:
    url = await asyncio.to_thread(postgres_server.create_database)
    name = url.rsplit("/", 1)[1]
    store = open_store(url)
    await store.initialize()
    try:
        await store.ping()
        await asyncio.to_thread(
            postgres_server.admin,
            f"ALTER DATABASE {name} ALLOW_CONNECTIONS false",
            # With a timeout, it returns once each backend has exited (PostgreSQL 14+).
            f"SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
            f"WHERE datname = '{name}'",
        )
        with pytest.raises(StoreUnavailable, match="does not answer"):
            await store.ping()
    finally:
        await store.close()


async def test_saves_keep_the_summary_and_prune_old_snapshots(store: ConversationStore) -> None:
    history: list[dict] = []
    for turn in range(SNAPSHOTS_KEPT + 3):
        history += [
            {"role": "user", "content": f"  prompt\n{turn}  ", "type": "text"},
            {"role": "assistant", "content": f"reply {turn}", "type": "text"},
        ]
        state = State({"chat_history": list(history), "__SEQUENCE_ID": 4 * turn + 3})
        await store.save("proj", "pruned", 4 * turn + 3, "answer_question", state, "completed")
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
    assert await sql(store, f"SELECT count(*) FROM {LEASES_TABLE}") == [(0,)]


async def test_leases_are_shared_between_stores_and_fence_late_writes(
    store: ConversationStore, second_store: ConversationStore
) -> None:
    first, second = store, second_store
    lease = await first.acquire_turn("proj", "fenced")
    with pytest.raises(ConversationBusy):
        await second.acquire_turn("proj", "fenced")
    # The first process stalls past its expiry; the second takes the conversation over.
    await expire_leases(first)
    takeover = await second.acquire_turn("proj", "fenced")
    state = State({"chat_history": _chat("late")})
    with pytest.raises(TurnLeaseLost):
        await first.save("proj", "fenced", 3, "answer_question", state, "completed")
    assert await second.load_state("proj", "fenced") is None
    await lease.release()  # must not free the second store's lease
    with pytest.raises(ConversationBusy):
        await first.acquire_turn("proj", "fenced")
    await second.save("proj", "fenced", 3, "answer_question", state, "completed")
    await takeover.release()
    assert (await first.load_state("proj", "fenced"))["chat_history"][0]["content"] == "late"
    assert await sql(first, f"SELECT count(*) FROM {LEASES_TABLE}") == [(0,)]


async def test_a_lease_that_lapses_with_its_turn_unstored_hands_its_prompt_over(
    store: ConversationStore, second_store: ConversationStore
) -> None:
    """A turn's lease keeps its prompt; whoever takes the lease over once it expired (its
    process died mid-turn) gets that prompt, once, to store the cut turn."""
    first, second = store, second_store
    await first.acquire_turn("proj", "cut", prompt="Write a poem about owls")
    other = await first.acquire_turn("proj", "running", prompt="still being answered")
    assert await second.lapsed_turns() == []
    await expire_leases(first)  # the first process died: its renewals stopped
    assert sorted(await second.lapsed_turns()) == [("proj", "cut"), ("proj", "running")]
    takeover = await second.acquire_turn("proj", "cut", prompt="the next prompt")
    assert takeover.lapsed_prompt == "Write a poem about owls"
    assert await second.lapsed_turns() == [("proj", "running")]
    await takeover.release()
    again = await second.acquire_turn("proj", "cut")
    assert again.lapsed_prompt is None  # released: nothing was cut
    await again.release()
    await other.release()


async def test_a_cut_turn_stored_by_a_taker_that_dies_too_leaves_the_takers_prompt(
    database_url: str, store: ConversationStore, second_store: ConversationStore
) -> None:
    """Two deaths in a row lose nothing: storing the first dead process's cut turn leaves
    the lease the taker's own prompt, so whoever takes over from the taker stores that."""
    first, second = store, second_store
    await first.acquire_turn("proj", "twice", prompt="Write a poem about owls")
    await expire_leases(first)  # the first process died mid-turn
    takeover = await second.acquire_turn("proj", "twice", prompt="What is a lighthouse?")
    assert takeover.lapsed_prompt == "Write a poem about owls"
    await store_cut_turn(second, "proj", "twice", takeover.lapsed_prompt)
    await expire_leases(second)  # the second died too, before storing its own turn
    third = await opened_store(database_url)
    try:
        assert await third.lapsed_turns() == [("proj", "twice")]
        last = await third.acquire_turn("proj", "twice")
        assert last.lapsed_prompt == "What is a lighthouse?"
        await store_cut_turn(third, "proj", "twice", last.lapsed_prompt)
        await last.release()
        history = (await third.load_state("proj", "twice"))["chat_history"]
        assert await third.lapsed_turns() == []
    finally:
        await third.close()
    assert [(item["type"], item["content"]) for item in history] == [
        ("text", "Write a poem about owls"),
        ("error", REPLY_LOST.message),
        ("text", "What is a lighthouse?"),
        ("error", REPLY_LOST.message),
    ]


async def test_one_group_commit_checks_each_lease_as_its_write_asks(
    store: ConversationStore,
) -> None:
    """A turn's last write drops its lease, a stored turn clears its lease's prompt, and a
    cut turn's write keeps the prompt of the turn holding the lease, all in one commit."""
    names = ("ended", "stored", "kept-1", "kept-2")
    leases = [await store.acquire_turn("proj", name, prompt=f"prompt of {name}") for name in names]
    state = State({"chat_history": _chat("What is a lighthouse?", "A tower with a light.")})
    await asyncio.gather(
        store.save("proj", "ended", 3, "answer_question", state, "completed", ends_turn=True),
        store.save("proj", "stored", 3, "answer_question", state, "completed"),
        *(
            store.save("proj", name, 1, "decide_mode", state, "failed", cut_turn=True)
            for name in ("kept-1", "kept-2")
        ),
    )
    rows = await sql(store, f"SELECT app_id, prompt FROM {LEASES_TABLE} ORDER BY app_id")
    assert rows == [
        ("kept-1", "prompt of kept-1"),
        ("kept-2", "prompt of kept-2"),
        ("stored", None),
    ]
    for name in names:
        assert (await store.load_state("proj", name))["chat_history"] == state["chat_history"]
    with pytest.raises(ValueError):  # a cut turn's write never ends the turn holding the lease
        await store.save("proj", "stored", 4, "answer_question", state, "completed",
                         ends_turn=True, cut_turn=True)  # fmt: skip
    for lease in leases:
        await lease.release()


async def test_a_stored_turn_leaves_no_prompt_in_its_lease(
    store: ConversationStore, second_store: ConversationStore
) -> None:
    """The final write clears the prompt: a lease left behind after its turn was stored (a
    release that failed) hands nothing over, so no turn is stored twice."""
    lease = await store.acquire_turn("proj", "stored", prompt="What is a lighthouse?")
    state = State({"chat_history": _chat("What is a lighthouse?")})
    await store.save("proj", "stored", 3, "answer_question", state, "completed")
    await expire_leases(store)  # never released
    assert await second_store.lapsed_turns() == []
    takeover = await second_store.acquire_turn("proj", "stored")
    assert takeover.lapsed_prompt is None
    await takeover.release()
    await lease.release()


async def test_a_turns_final_write_releases_its_lease_in_the_same_commit(
    store: ConversationStore, second_store: ConversationStore
) -> None:
    """``ends_turn``: the commit that stores the turn drops its lease, so another process
    can take the conversation as soon as the turn is stored, before ``release`` runs;
    this process still refuses a second turn until then, and ``release`` frees nothing else."""
    lease = await store.acquire_turn("proj", "ended", prompt="What is a lighthouse?")
    state = State({"chat_history": _chat("What is a lighthouse?", "A tower with a light.")})
    await store.save("proj", "ended", 3, "answer_question", state, "completed", ends_turn=True)
    assert await sql(store, f"SELECT count(*) FROM {LEASES_TABLE}") == [(0,)]
    with pytest.raises(ConversationBusy):  # the turn's runner has not let go yet
        await store.acquire_turn("proj", "ended")
    takeover = await second_store.acquire_turn("proj", "ended")
    assert takeover.lapsed_prompt is None  # stored: nothing was cut
    await lease.release()
    assert await sql(store, f"SELECT count(*) FROM {LEASES_TABLE}") == [(1,)]
    with pytest.raises(ConversationBusy):  # the other process's lease is untouched
        await store.acquire_turn("proj", "ended")
    await takeover.release()
    again = await store.acquire_turn("proj", "ended")
    await again.release()
    assert (await store.load_state("proj", "ended"))["chat_history"] == state["chat_history"]


async def test_a_final_write_whose_lease_was_lost_drops_no_lease(
    store: ConversationStore, second_store: ConversationStore
) -> None:
    """Fenced out, an ``ends_turn`` save stores nothing and leaves the taker's lease alone,
    as do the other turns' saves of its group commit, which each release their own."""
    leases = [await store.acquire_turn("proj", f"e{n}") for n in range(3)]
    await expire_leases(store)
    takeover = await second_store.acquire_turn("proj", "e1")
    results = await asyncio.gather(
        *(
            store.save(
                "proj",
                f"e{n}",
                3,
                "answer_question",
                State({"chat_history": _chat(f"q{n}")}),
                "completed",
                ends_turn=True,
            )
            for n in range(3)
        ),
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results] == ["NoneType", "TurnLeaseLost", "NoneType"]
    assert await store.load_state("proj", "e1") is None
    assert await _leases_of(store) == ["e1"]  # the taker's; e0's and e2's went with their turns
    for lease in leases:
        await lease.release()
    assert await _leases_of(store) == ["e1"]
    await takeover.release()


async def test_a_lost_lease_fails_only_its_own_save_in_a_group_commit(
    store: ConversationStore, second_store: ConversationStore
) -> None:
    """Turns finishing together are written together; one fenced out spoils none of the rest."""
    leases = [await store.acquire_turn("proj", f"g{n}") for n in range(4)]
    await expire_leases(store)
    takeover = await second_store.acquire_turn("proj", "g2")
    results = await asyncio.gather(
        *(
            store.save(
                "proj",
                f"g{n}",
                3,
                "answer_question",
                State({"chat_history": _chat(f"q{n}")}),
                "completed",
            )
            for n in range(4)
        ),
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results] == [
        "NoneType",
        "NoneType",
        "TurnLeaseLost",
        "NoneType",
    ]
    assert await store.load_state("proj", "g2") is None
    for n in (0, 1, 3):
        assert (await store.load_state("proj", f"g{n}"))["chat_history"] == _chat(f"q{n}")
    for lease in [*leases, takeover]:
        await lease.release()


async def test_leases_are_renewed_while_held(database_url: str) -> None:
    holder = open_store(database_url, lease_ttl_s=2)
    other = open_store(database_url, lease_ttl_s=2)
    await holder.initialize()
    await other.initialize()
    try:
        lease = await holder.acquire_turn("proj", "long")
        await asyncio.sleep(5)  # well past the TTL: only renewal keeps it
        with pytest.raises(ConversationBusy):
            await other.acquire_turn("proj", "long")
        state = State({"chat_history": []})
        await holder.save("proj", "long", 3, "answer_question", state, "completed")
        await lease.release()
        await (await other.acquire_turn("proj", "long")).release()
    finally:
        await holder.close()
        await other.close()


async def test_a_closed_store_leaves_its_leases_to_lapse(database_url: str) -> None:
    """A process that dies mid-turn renews nothing: its conversation is free after the TTL."""
    crashed = open_store(database_url, lease_ttl_s=1)
    other = open_store(database_url, lease_ttl_s=1)
    await crashed.initialize()
    await other.initialize()
    try:
        await crashed.acquire_turn("proj", "orphan")  # never released
        await crashed.close()
        with pytest.raises(ConversationBusy):
            await other.acquire_turn("proj", "orphan")
        deadline = time.monotonic() + 30
        while True:
            try:
                lease = await other.acquire_turn("proj", "orphan")
                break
            except ConversationBusy:
                assert time.monotonic() < deadline, "the orphaned lease never lapsed"
                await asyncio.sleep(0.2)
        await lease.release()
    finally:
        await other.close()


async def test_sqlite_stores_know_who_else_uses_the_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    first, second = open_store(url), open_store(url)
    await first.initialize()
    assert await first.dialect.other_processes() == []
    await second.initialize()
    try:
        # Both stores are in this process; each sees the other one.
        assert await first.dialect.other_processes() == [os.getpid()]
        assert await second.dialect.other_processes() == [os.getpid()]
        # A process killed before its row expired does not count.
        dead = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
        await dead.wait()
        await sql(
            first,
            f"INSERT INTO {HOLDERS_TABLE} (id, host, pid, started_at, expires_at) "
            "VALUES ('dead', ?, ?, 0, ?)",
            socket.gethostname(),
            dead.pid,
            time.time() + 3600,
        )
        assert await second.dialect.other_processes() == [os.getpid()]
        await first.close()
        assert await second.dialect.other_processes() == []
    finally:
        await first.close()
        await second.close()


async def test_sqlite_quick_reads_run_on_the_loop_and_go_to_their_thread_when_locked(
    tmp_path: Path,
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'quick.sqlite3'}")
    await store.initialize()
    try:
        await store.create("p", "c")
        state = State({"chat_history": _chat("hi", "hello")})
        await store.save("p", "c", 0, "respond", state, "completed")
        loaded = await store.load("p", "c")
        assert loaded is not None and loaded["state"]["chat_history"] == _chat("hi", "hello")
        assert await store.shown_branch("p", "c") == "c"

        loop_thread, seen = threading.get_ident(), []
        busy = sqlite3.OperationalError("database is locked")
        busy.sqlite_errorcode = sqlite3.SQLITE_BUSY  # what a locked file answers

        def read(conn: object) -> str:
            seen.append(threading.get_ident())
            if len(seen) == 1:  # the file is locked for the loop's reader, which never waits
                raise sa.exc.OperationalError("SELECT 1", (), busy)
            return "read"

        assert await store.dialect.run(read, quick=True) == "read"
        assert seen[0] == loop_thread  # tried on the loop first, with no hand-off
        assert seen[1] != loop_thread  # then on the connection's thread, which waits
        other = sqlite3.OperationalError("no such table: nothing")
        other.sqlite_errorcode = sqlite3.SQLITE_ERROR

        def broken(conn: object) -> None:
            raise sa.exc.OperationalError("SELECT 1", (), other)

        with pytest.raises(sa.exc.OperationalError):  # any other failure is the caller's
            await store.dialect.run(broken, quick=True)
    finally:
        await store.close()


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
        await store.save("burst", f"c{app}", turns * 4, "answer_question", state, "completed")

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


async def test_the_renewal_sweeps_leases_long_expired_and_keeps_the_others(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chatbot.store import leases

    monkeypatch.setattr(leases, "SWEEP_EVERY_TICKS", 1)
    store = open_store(database_url, lease_ttl_s=0.3)
    await store.initialize()
    try:
        live = await store.acquire_turn("proj", "live")
        # A lease a crashed process left two hours ago, and one of another that just lapsed.
        for app_id, expired_s in (("crashed", 7200), ("lapsed", 60)):
            at = time.time() - expired_s
            stamp = at if not is_postgres(store) else _timestamp(at)
            await sql(
                store,
                f"INSERT INTO {LEASES_TABLE} (project_id, app_id, token, holder, acquired_at,"
                " expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                "proj", app_id, str(uuid.uuid4()) if not is_postgres(store) else uuid.uuid4(),
                "elsewhere:1", stamp, stamp,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while await _leases_of(store) != ["lapsed", "live"]:
            assert time.monotonic() < deadline, await _leases_of(store)
            await asyncio.sleep(0.1)
        await live.release()
    finally:
        await store.close()


async def _leases_of(store: ConversationStore) -> list[str]:
    rows = await sql(store, f"SELECT app_id FROM {LEASES_TABLE} ORDER BY app_id")
    return [app_id for (app_id,) in rows]


def _timestamp(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC)
