"""Branches in the stores, on a real SQLite file and a real PostgreSQL server.

A conversation's branches are Burr applications forked with Burr's own
``initialize_from(fork_from_app_id=…, fork_from_sequence_id=…)``, which loads through the
store. Snapshots are pruned, so every earlier point between turns must load from its
boundary row; the rest (which branch is shown, one summary per conversation, deleting
every branch, a conversation stored before branching) is what the runtime relies on.
"""

from __future__ import annotations

import dataclasses

import pytest
from burr.core import Application, ApplicationBuilder, State, action, default

from chatbot.conversations.continuation import history_digest
from chatbot.store import (
    Boundary,
    BranchRecord,
    ConversationStore,
    NewBranch,
    TurnLeaseLost,
)
from chatbot.store.base import SNAPSHOTS_KEPT
from tests.support.postgres import (  # noqa: F401 (fixtures)
    postgres_server,
    postgres_url,
)
from tests.support.stores import (
    BOUNDARIES_TABLE,
    BRANCHES_TABLE,
    HISTORY_DIGESTS_TABLE,
    STATE_TABLE,
    expire_leases,
    opened_store,
    sql,
)

PROJECT = "proj"
TURNS = SNAPSHOTS_KEPT + 3


async def _count(store: ConversationStore, table: str, column: str, app_id: str) -> int:
    ((count,),) = await sql(store, f"SELECT count(*) FROM {table} WHERE {column} = ?", app_id)
    return count


def _turn(n: int, tag: str = "") -> list[dict]:
    return [
        {"role": "user", "content": f"question {n}{tag}", "type": "text"},
        {"role": "assistant", "content": f"answer {n}{tag}", "type": "text"},
    ]


def _reply(prompt: str) -> list[dict]:
    """What the ``reply`` action appends."""
    return [
        {"role": "user", "content": prompt, "type": "text"},
        {"role": "assistant", "content": f"re: {prompt}", "type": "text"},
    ]


def _history(turns: int, tag: str = "") -> list[dict]:
    return [item for n in range(turns) for item in _turn(n, tag)]


async def _store_turns(store: ConversationStore, app_id: str, turns: int) -> list[int]:
    """``turns`` turns of ``app_id``, one save each; answers their sequence ids."""
    sequence_ids = []
    for n in range(turns):
        sequence_id = 2 * n + 1  # two steps per turn, as the chat graph takes
        state = State(
            {"chat_history": _history(n + 1), "mode": f"mode {n}", "__SEQUENCE_ID": sequence_id}
        )
        await store.save(PROJECT, app_id, sequence_id, "answer", state, "completed")
        sequence_ids.append(sequence_id)
    return sequence_ids


@action(reads=["chat_history"], writes=["chat_history"])
async def reply(state: State, prompt: str) -> tuple[dict, State]:
    return {}, state.update(chat_history=[*state["chat_history"], *_reply(prompt)])


async def _fork(
    store: ConversationStore, app_id: str, parent: str, sequence_id: int
) -> Application:
    """A branch built the way the runtime builds one: Burr's fork, loaded by the store."""
    return await (
        ApplicationBuilder()
        .with_actions(reply=reply)
        .with_transitions(("reply", "reply", default))
        .with_identifiers(app_id=app_id, partition_key=PROJECT)
        .initialize_from(
            store,
            resume_at_next_action=False,
            default_state={"chat_history": []},
            default_entrypoint="reply",
            fork_from_app_id=parent,
            fork_from_partition_key=PROJECT,
            fork_from_sequence_id=sequence_id,
        )
        .abuild()
    )


async def _run_branch_turn(
    store: ConversationStore, app_id: str, boundary: Boundary, prompt: str, diverges_at: int
) -> list[dict]:
    """Fork ``app_id`` at ``boundary``, run one turn, save it as the branch's first."""
    app = await _fork(store, app_id, boundary.app_id, boundary.sequence_id)
    await app.astep(inputs={"prompt": prompt})
    new_branch = NewBranch(boundary.app_id, boundary.sequence_id, boundary.items, diverges_at)
    await store.save(
        PROJECT, app_id, app.sequence_id, "reply", app.state, "completed", new_branch=new_branch
    )
    return app.state["chat_history"]


async def test_a_fork_at_a_pruned_boundary_loads_the_history_it_had(
    store: ConversationStore,
) -> None:
    sequence_ids = await _store_turns(store, "talk", TURNS)
    assert await _count(store, STATE_TABLE, "app_id", "talk") == SNAPSHOTS_KEPT
    # Boundary j = 2: after the first turn, long pruned.
    first = await store.boundary(PROJECT, "talk", 2)
    assert first == Boundary("talk", sequence_ids[0], 2)
    loaded = await store.load(PROJECT, "talk", sequence_ids[0])
    assert loaded["state"]["chat_history"] == _history(1)
    assert loaded["state"]["mode"] == "mode 0"  # the rest of that turn's state, not the latest
    assert (loaded["sequence_id"], loaded["position"]) == (sequence_ids[0], "answer")
    assert await store.load(PROJECT, "talk", sequence_ids[0] + 1) is None  # no turn ended there

    # Burr's own fork loads through the store; the branch runs its turn from there.
    app = await _fork(store, "talk~1", "talk", first.sequence_id)
    assert app.state["chat_history"] == _history(1)
    assert app.sequence_id == first.sequence_id
    history = await _run_branch_turn(store, "talk~1", first, "edited", diverges_at=2)
    assert history == [*_history(1), *_reply("edited")]
    assert (await store.load_state(PROJECT, "talk~1"))["chat_history"] == history
    assert (await store.load_state(PROJECT, "talk"))["chat_history"] == _history(TURNS)

    # A fork of the fork, at the boundary the branch inherited from its parent.
    inherited = await store.boundary(PROJECT, "talk~1", 2)
    assert inherited == Boundary("talk~1", first.sequence_id, 2)
    again = await _fork(store, "talk~2", "talk~1", inherited.sequence_id)
    assert again.state["chat_history"] == _history(1)
    assert again.state["mode"] == "mode 0"
    assert await store.boundary(PROJECT, "talk~1", 4) is not None  # its own turn
    assert await store.boundary(PROJECT, "talk~1", 6) is None  # never that long


async def test_forking_before_the_first_prompt_loads_sequence_minus_one(
    store: ConversationStore,
) -> None:
    assert await store.boundary(PROJECT, "fresh", 0) is None  # nothing stored yet
    assert await store.load(PROJECT, "fresh", -1) is None
    await _store_turns(store, "fresh", 2)
    start = await store.boundary(PROJECT, "fresh", 0)
    assert start == Boundary("fresh", -1, 0)
    loaded = await store.load(PROJECT, "fresh", -1)
    assert loaded["state"].get_all() == {"chat_history": []}
    assert (loaded["sequence_id"], loaded["position"]) == (-1, "prompt")

    app = await _fork(store, "fresh~1", "fresh", -1)
    assert app.state["chat_history"] == [] and app.sequence_id == -1
    history = await _run_branch_turn(store, "fresh~1", start, "first, edited", diverges_at=0)
    assert history == _reply("first, edited")
    loaded = await store.load(PROJECT, "fresh~1")
    assert loaded["sequence_id"] == 0  # Burr's first step after -1
    assert await store.boundary(PROJECT, "fresh~1", 0) == Boundary("fresh~1", -1, 0)


async def test_a_new_branch_is_shown_and_switching_is_kept_across_stores(
    store: ConversationStore, second_store: ConversationStore
) -> None:
    await _store_turns(store, "tree", 3)
    assert await store.shown_branch(PROJECT, "tree") == "tree"
    at_two = await store.boundary(PROJECT, "tree", 2)
    await _run_branch_turn(store, "tree~1", at_two, "other", diverges_at=2)
    assert await store.shown_branch(PROJECT, "tree") == "tree~1"
    at_zero = await store.boundary(PROJECT, "tree~1", 0)
    await _run_branch_turn(store, "tree~2", at_zero, "restart", diverges_at=0)
    assert await second_store.shown_branch(PROJECT, "tree") == "tree~2"

    branches = await second_store.branches(PROJECT, "tree")
    assert [_without_time(b) for b in branches] == [
        BranchRecord("tree", None, None, 0, 0, 0, 6),
        BranchRecord("tree~1", "tree", at_two.sequence_id, 2, 1, 1, 4),
        BranchRecord("tree~2", "tree~1", -1, 0, 2, 2, 2),
    ]
    assert all(b.created_at is not None for b in branches)

    assert await store.show_branch(PROJECT, "tree", "tree~1")
    assert await second_store.shown_branch(PROJECT, "tree") == "tree~1"
    assert await second_store.show_branch(PROJECT, "tree", "tree")
    assert await store.shown_branch(PROJECT, "tree") == "tree"
    # A later turn of a branch does not change which one is shown.
    loaded = await store.load(PROJECT, "tree~2")
    state = loaded["state"].update(chat_history=[*loaded["state"]["chat_history"], *_turn(9)])
    await store.save(PROJECT, "tree~2", 1, "reply", state, "completed")
    assert await store.shown_branch(PROJECT, "tree") == "tree"
    assert [b.items for b in await store.branches(PROJECT, "tree")] == [6, 4, 4]


def _without_time(record: BranchRecord) -> BranchRecord:
    return dataclasses.replace(record, created_at=None)


async def test_show_branch_refuses_what_is_not_a_branch_of_the_conversation(
    store: ConversationStore,
) -> None:
    await _store_turns(store, "mine", 2)
    await _store_turns(store, "theirs", 2)
    await _run_branch_turn(
        store, "theirs~1", await store.boundary(PROJECT, "theirs", 2), "x", diverges_at=2
    )
    for app_id in ("theirs~1", "theirs", "mine~1", "mine~x", "mine~"):
        assert not await store.show_branch(PROJECT, "mine", app_id), app_id
    assert not await store.show_branch("other-project", "theirs", "theirs~1")
    assert await store.shown_branch(PROJECT, "mine") == "mine"
    assert await store.shown_branch(PROJECT, "theirs") == "theirs~1"
    assert await store.show_branch(PROJECT, "mine", "mine")  # its only branch, shown already
    assert await store.branches(PROJECT, "nobody") == []
    assert not await store.show_branch(PROJECT, "nobody", "nobody")


async def test_listing_stays_one_row_per_conversation(store: ConversationStore) -> None:
    await store.create(PROJECT, "listed")
    await _store_turns(store, "listed", 3)
    await _run_branch_turn(
        store, "listed~1", await store.boundary(PROJECT, "listed", 0), "new start", 0
    )
    items, total = await store.list(PROJECT, 10, 0)
    assert total == 1 and [item.app_id for item in items] == ["listed"]
    # The summary is the branch shown: the new one, shown since its first turn.
    assert (items[0].title, items[0].turns) == ("new start", 1)
    assert await store.exists(PROJECT, "listed") and not await store.exists(PROJECT, "listed~1")


async def test_the_listing_follows_the_branch_shown(
    store: ConversationStore, second_store: ConversationStore
) -> None:
    await store.create(PROJECT, "titled")
    await _store_turns(store, "titled", 3)
    start = await store.boundary(PROJECT, "titled", 0)
    await _run_branch_turn(store, "titled~1", start, "another start", diverges_at=0)

    async def listed() -> tuple[str, int]:
        (item,), _ = await second_store.list(PROJECT, 10, 0)
        return item.title, item.turns

    assert await listed() == ("another start", 1)
    assert await second_store.show_branch(PROJECT, "titled", "titled")
    assert await listed() == ("question 0", 3)
    # A turn stored on a branch that is no longer shown leaves the listing alone.
    branch_state = await store.load_state(PROJECT, "titled~1")
    history = [*branch_state["chat_history"], *_reply("late")]
    await store.save(
        PROJECT, "titled~1", 9, "reply", State({"chat_history": history}), "completed"
    )
    assert await listed() == ("question 0", 3)
    assert await store.show_branch(PROJECT, "titled", "titled~1")
    assert await listed() == ("another start", 2)


async def test_delete_removes_every_branch_and_nothing_else(store: ConversationStore) -> None:
    for app_id in ("gone", "gone-not", "gonex"):
        await store.create(PROJECT, app_id)
        await _store_turns(store, app_id, TURNS)
    at_two = await store.boundary(PROJECT, "gone", 2)
    await _run_branch_turn(store, "gone~1", at_two, "one", diverges_at=2)
    await _run_branch_turn(store, "gone~2", await store.boundary(PROJECT, "gone~1", 4), "2", 4)
    await _run_branch_turn(
        store, "gone-not~1", await store.boundary(PROJECT, "gone-not", 2), "kept", 2
    )

    assert await store.delete(PROJECT, "gone")
    for app_id in ("gone", "gone~1", "gone~2"):
        assert await store.load(PROJECT, app_id) is None
        for table, column in (
            (STATE_TABLE, "app_id"),
            (BOUNDARIES_TABLE, "app_id"),
            (BRANCHES_TABLE, "app_id"),
            (HISTORY_DIGESTS_TABLE, "app_id"),
        ):
            assert await _count(store, table, column, app_id) == 0, (table, app_id)
    assert await store.branches(PROJECT, "gone") == []
    assert await store.shown_branch(PROJECT, "gone") == "gone"
    assert not await store.exists(PROJECT, "gone")
    # Conversations whose ids merely start alike are untouched.
    assert [b.app_id for b in await store.branches(PROJECT, "gone-not")] == [
        "gone-not",
        "gone-not~1",
    ]
    assert (await store.load_state(PROJECT, "gonex"))["chat_history"] == _history(TURNS)
    assert await store.load(PROJECT, "gone-not", at_two.sequence_id) is not None
    assert (await store.list(PROJECT, 10, 0))[1] == 2
    assert not await store.delete(PROJECT, "gone")


async def test_find_boundary_answers_a_branch_point_of_that_conversation_only(
    store: ConversationStore,
) -> None:
    await _store_turns(store, "found", TURNS)
    await _store_turns(store, "elsewhere", TURNS)
    digest = history_digest(_history(2))
    assert await store.find_boundary(PROJECT, "found", digest) == Boundary("found", 3, 4)
    assert await store.find_boundary(PROJECT, "found", history_digest(_history(1, "?"))) is None
    assert await store.find_boundary(PROJECT, "nowhere", digest) is None
    # After a fork there, the newest row with that history is the branch's own fork point.
    at_four = await store.boundary(PROJECT, "found", 4)
    history = await _run_branch_turn(store, "found~1", at_four, "fork", diverges_at=4)
    assert await store.find_boundary(PROJECT, "found", digest) == Boundary("found~1", 3, 4)
    assert await store.find_boundary(PROJECT, "found", history_digest(history)) == Boundary(
        "found~1", 4, 6
    )
    assert await store.find_boundary(PROJECT, "elsewhere", history_digest(history)) is None
    # The empty history is the start state, which has no row of its own.
    assert await store.find_boundary(PROJECT, "found", history_digest([])) is None


async def test_a_conversation_stored_before_branching_is_migrated_and_can_be_forked(
    store: ConversationStore, database_url: str
) -> None:
    await store.create(PROJECT, "legacy")
    sequence_ids = await _store_turns(store, "legacy", 3)
    await _store_turns(store, "talk", 2)
    talk = await store.branches(PROJECT, "talk")
    # As a release before branching left it: Burr's snapshots and a summary, no branch
    # or boundary rows, and the schema at the baseline (as such a database is stamped).
    await sql(store, f"DELETE FROM {BRANCHES_TABLE} WHERE app_id = ?", "legacy")
    await sql(store, f"DELETE FROM {BOUNDARIES_TABLE} WHERE app_id = ?", "legacy")
    await sql(store, "UPDATE alembic_version SET version_num = ?", "0001")
    await store.close()
    store = await opened_store(database_url)  # migrates to the newest revision
    try:
        assert await store.branches(PROJECT, "talk") == talk  # left as it was
        (original,) = await store.branches(PROJECT, "legacy")
        assert _without_time(original) == BranchRecord("legacy", None, None, 0, 0, 0, 6)
        assert original.created_at is not None
        assert await store.shown_branch(PROJECT, "legacy") == "legacy"
        assert await store.show_branch(PROJECT, "legacy", "legacy")
        # Its kept snapshots are boundaries too, found by their histories' digests.
        at_four = await store.boundary(PROJECT, "legacy", 4)
        assert at_four == Boundary("legacy", sequence_ids[1], 4)
        assert await store.boundary(PROJECT, "legacy", 0) == Boundary("legacy", -1, 0)
        digest = history_digest(_history(2))
        assert await store.find_boundary(PROJECT, "legacy", digest) == at_four

        history = await _run_branch_turn(store, "legacy~1", at_four, "fork", diverges_at=4)
        assert history == [*_history(2), *_reply("fork")]
        assert [_without_time(b) for b in await store.branches(PROJECT, "legacy")] == [
            BranchRecord("legacy", None, None, 0, 0, 1, 6),  # shown once, above
            BranchRecord("legacy~1", "legacy", sequence_ids[1], 4, 1, 2, 6),
        ]
        # The branch's fork point loads even once its parent's snapshot is gone.
        await sql(store, f"DELETE FROM {STATE_TABLE} WHERE app_id = ?", "legacy")
        loaded = await store.load(PROJECT, "legacy~1", sequence_ids[1])
        assert loaded["state"]["chat_history"] == _history(2)
        assert loaded["state"]["mode"] == "mode 1"
    finally:
        await store.close()


async def test_a_branch_turn_is_fenced_by_its_conversation_lease(
    store: ConversationStore, second_store: ConversationStore
) -> None:
    await _store_turns(store, "fenced", 2)
    at_two = await store.boundary(PROJECT, "fenced", 2)
    lease = await store.acquire_turn(PROJECT, "fenced")
    # This process stalls past its lease; another one takes the conversation over.
    await expire_leases(store)
    takeover = await second_store.acquire_turn(PROJECT, "fenced")
    app = await _fork(store, "fenced~1", "fenced", at_two.sequence_id)
    await app.astep(inputs={"prompt": "late"})
    with pytest.raises(TurnLeaseLost):
        await store.save(
            PROJECT,
            "fenced~1",
            app.sequence_id,
            "reply",
            app.state,
            "completed",
            new_branch=NewBranch("fenced", at_two.sequence_id, 2, 2),
        )
    assert await store.load(PROJECT, "fenced~1") is None
    assert [b.app_id for b in await store.branches(PROJECT, "fenced")] == ["fenced"]
    await lease.release()
    await takeover.release()
