"""One store fixture for the store tests, parametrized over SQLite and a real PostgreSQL.

``store`` and ``second_store`` are two stores on one database, as two server processes
open it; ``sql`` runs a statement on that database outside the store, as another client
would (``?`` placeholders on both databases).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import asyncpg
import pytest

from chatbot.database import tables
from chatbot.store import ConversationStore, open_store
from tests.support.postgres import postgres_server, postgres_url  # noqa: F401 (fixtures)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    return request.getfixturevalue("postgres_url")


async def opened_store(database_url: str) -> ConversationStore:
    store = open_store(database_url, lease_ttl_s=30)
    await store.initialize()
    return store


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[ConversationStore]:
    opened = await opened_store(database_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def second_store(database_url: str) -> AsyncIterator[ConversationStore]:
    """Another store on the same database, as another server process would open it."""
    opened = await opened_store(database_url)
    try:
        yield opened
    finally:
        await opened.close()


def is_postgres(store: ConversationStore) -> bool:
    return store.dialect.name == "postgresql"


async def sql(store: ConversationStore, query: str, *args: object) -> list[tuple]:
    """One statement on the store's database, outside the store (as another client)."""
    if is_postgres(store):
        conn = await asyncpg.connect(store.dialect.database_url)
        try:
            numbers = itertools.count(1)
            numbered = re.sub(r"\?", lambda _: f"${next(numbers)}", query)
            return [tuple(row) for row in await conn.fetch(numbered, *args)]
        finally:
            await conn.close()
    async with aiosqlite.connect(store.dialect.database_url.removeprefix("sqlite:///")) as conn:
        rows = await conn.execute_fetchall(query, args)
        await conn.commit()
        return [tuple(row) for row in rows]


async def expire_leases(store: ConversationStore) -> None:
    """As if the process holding them had stalled past their expiry."""
    if is_postgres(store):
        await sql(store, "UPDATE chatbot_turn_leases SET expires_at = now() - interval '1s'")
    else:
        await sql(store, "UPDATE chatbot_turn_leases SET expires_at = 0")


# Table names, for statements the tests run beside the store.
STATE_TABLE = tables.states.name
LEASES_TABLE = tables.leases.name
HOLDERS_TABLE = tables.lease_holders.name
BRANCHES_TABLE = tables.branches.name
BOUNDARIES_TABLE = tables.boundaries.name
HISTORY_DIGESTS_TABLE = tables.history_digests.name
SIGNALS_TABLE = tables.signals.name
EVENTS_TABLE = tables.reply_events.name
