"""Users on both databases: the API keys ``chatbot keys`` writes and servers check, and
the quotas counted for every process on the database."""

from __future__ import annotations

import datetime as dt

import pytest

from chatbot.domain.errors import QuotaExceeded
from chatbot.domain.events import Usage
from chatbot.domain.owners import LOCAL_USER, Caller, owned_project
from chatbot.store import ConversationStore
from chatbot.users.api_keys import ApiKeys, InvalidUserId, digest
from chatbot.users.quotas import QuotaLimits, Quotas
from tests.support.stores import sql


async def test_a_key_finds_its_user_and_only_its_digest_is_stored(
    store: ConversationStore, second_store: ConversationStore
) -> None:
    keys = ApiKeys(store.dialect)
    record, key = await keys.create("alice", admin=False)
    admin, admin_key = await keys.create("root", admin=True)

    # Another process on the same database recognises both.
    elsewhere = ApiKeys(second_store.dialect)
    assert (await elsewhere.find(key)).caller == Caller("alice", admin=False)
    assert (await elsewhere.find(admin_key)).caller == Caller("root", admin=True)
    assert await elsewhere.find(key + "x") is None
    assert await elsewhere.find("not-a-key") is None

    stored = await sql(store, "SELECT id, digest FROM chatbot_api_keys ORDER BY user_id")
    assert stored == [(record.id, digest(key)), (admin.id, digest(admin_key))]
    assert all(key not in str(row) for row in stored)


async def test_keys_are_listed_with_their_last_use_and_revoked(store: ConversationStore) -> None:
    keys = ApiKeys(store.dialect)
    first, key = await keys.create("alice")
    second, _ = await keys.create("alice")
    bobs, bob_key = await keys.create("bob")
    await keys.find(key)

    listed = {record.id: record for record in await keys.list()}
    assert listed.keys() == {first.id, second.id, bobs.id}
    assert listed[first.id].last_used_at is not None
    assert listed[first.id].last_used_at >= first.created_at - dt.timedelta(seconds=1)
    assert listed[second.id].last_used_at is None

    assert await keys.revoke(key_id=second.id) == 1
    assert await keys.revoke(user_id="alice") == 1
    assert await keys.revoke(user_id="alice") == 0
    assert await keys.find(key) is None
    assert (await keys.find(bob_key)).user_id == "bob"
    assert [record.id for record in await keys.list()] == [bobs.id]


async def test_a_session_names_its_key_by_id(store: ConversationStore) -> None:
    keys = ApiKeys(store.dialect)
    record, _ = await keys.create("alice")
    found = await keys.get(record.id)
    assert found is not None and found.digest == record.digest
    assert await keys.get("no-such-id") is None


@pytest.mark.parametrize("user", ["", ".hidden", "@x", "a/b", "a b", "x" * 129])
async def test_a_key_user_is_a_plain_name(store: ConversationStore, user: str) -> None:
    with pytest.raises(InvalidUserId):
        await ApiKeys(store.dialect).create(user)
    assert await sql(store, "SELECT count(*) FROM chatbot_api_keys") == [(0,)]


# --- quotas ---------------------------------------------------------------------------


async def test_replies_at_once_are_counted_per_owner_across_stores(
    store: ConversationStore, second_store: ConversationStore
) -> None:
    here = Quotas(store.dialect, QuotaLimits(concurrent_replies=2))
    there = Quotas(second_store.dialect, QuotaLimits(concurrent_replies=2))

    async def take(quotas: Quotas, on: ConversationStore, project: str, app: str):
        return await on.acquire_turn(project, app, first=quotas.replies_at_once(project))

    alices = owned_project("alice", "p")
    held = await take(here, store, alices, "one")
    await take(there, second_store, owned_project("alice", "q"), "two")
    with pytest.raises(QuotaExceeded) as refused:
        await take(there, second_store, alices, "three")
    assert refused.value.retry_after_s > 0
    # Other owners (the local user too) count apart.
    for owner in ("bob", LOCAL_USER, "malice"):
        await (await take(there, second_store, owned_project(owner, "p"), "x")).release()
    await held.release()
    await (await take(there, second_store, alices, "three")).release()
    assert here.replies_at_once(alices) is not None
    assert Quotas(store.dialect, QuotaLimits()).replies_at_once(alices) is None


async def test_prompts_and_tokens_are_counted_per_owner(
    store: ConversationStore, second_store: ConversationStore
) -> None:
    limits = QuotaLimits(prompts_per_minute=2, tokens_per_day=100)
    here, there = Quotas(store.dialect, limits), Quotas(second_store.dialect, limits)
    alices, bobs = owned_project("alice", "p"), owned_project("bob", "p")
    await here.admit(alices)
    await there.admit(alices)
    with pytest.raises(QuotaExceeded) as refused:
        await here.admit(alices)
    assert 0 < refused.value.retry_after_s <= 60
    await there.admit(bobs)

    await here.spend(bobs, Usage(60, 30))
    await there.spend(bobs, Usage(5, 5))
    with pytest.raises(QuotaExceeded) as spent:
        await here.admit(bobs)
    assert "100 tokens for today" in str(spent.value)
    assert 0 < spent.value.retry_after_s <= 86_400
