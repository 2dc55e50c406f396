"""Schema migrations (Alembic) on a real SQLite file and a real PostgreSQL server.

The server migrates at start, one process at a time; ``chatbot db upgrade`` and
``chatbot db current`` do it (or tell it) without serving; a schema newer than the
release is refused with one clear line.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from chatbot.database.migrate import head
from chatbot.store import SchemaTooNew, open_store
from tests.support.server_process import CHATBOT, run_server_expecting_exit, server_env
from tests.support.stores import opened_store, sql

REVISION_TABLES = [
    "burr_state",
    "chatbot_branches",
    "chatbot_conversations",
    "chatbot_history_digests",
    "chatbot_reply_events",
    "chatbot_reply_signals",
    "chatbot_turn_boundaries",
    "chatbot_turn_leases",
]


async def test_stores_starting_at_once_migrate_an_empty_database_once(database_url: str) -> None:
    stores = [open_store(database_url) for _ in range(4)]
    try:
        await asyncio.gather(*(store.initialize() for store in stores))
        assert await stores[0].is_initialized()
        rows = await sql(stores[0], "SELECT version_num FROM alembic_version")
        assert rows == [(head(),)]
        # Every table of the schema is there, and usable from every store.
        for table in REVISION_TABLES:
            assert await sql(stores[1], f"SELECT count(*) FROM {table}") == [(0,)]
        assert await stores[2].create("p", "c") and not await stores[3].create("p", "c")
    finally:
        for store in stores:
            await store.close()


async def test_a_schema_newer_than_the_release_is_refused(database_url: str) -> None:
    store = await opened_store(database_url)
    await sql(store, "UPDATE alembic_version SET version_num = 'f00dfeed'")
    await store.close()
    again = open_store(database_url)
    with pytest.raises(SchemaTooNew, match="revision f00dfeed, newer than this release"):
        await again.initialize()
    assert not await again.is_initialized()


def test_the_server_refuses_to_start_on_a_newer_schema(database_url: str, home: Path) -> None:
    asyncio.run(_stamp_future(database_url))
    done = run_server_expecting_exit(home, server_env(home, CHATBOT_DATABASE_URL=database_url))
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 1, output
    assert "Traceback" not in output, output
    assert output.splitlines() == [
        f"chatbot serve: error: the database schema is at revision f00dfeed, newer than this "
        f"release knows (its newest is {head()}): run a newer release of the chatbot on it, "
        "or restore a backup made before the upgrade"
    ]
    # Nothing was touched.
    assert asyncio.run(_revisions_raw(database_url)) == [("f00dfeed",)]


async def _stamp_future(database_url: str) -> None:
    store = await opened_store(database_url)
    try:
        await sql(store, "UPDATE alembic_version SET version_num = 'f00dfeed'")
    finally:
        await store.close()


async def _revisions_raw(database_url: str) -> list[tuple]:
    """The version rows, read without opening a store (which would refuse the database)."""
    store = open_store(database_url)
    return await sql(store, "SELECT version_num FROM alembic_version")


def _db(home: Path, database_url: str, action: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CHATBOT), "db", action],
        cwd=home,
        env=server_env(home, CHATBOT_DATABASE_URL=database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_chatbot_db_current_and_upgrade(database_url: str, home: Path) -> None:
    current = _db(home, database_url, "current")
    assert current.returncode == 0, current.stderr
    assert f"schema revision none (this release's is {head()})" in current.stdout
    assert _tables(database_url) == []  # asking changed nothing

    upgraded = _db(home, database_url, "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"schema revision {head()} (up to date)" in upgraded.stdout
    assert set(REVISION_TABLES) <= set(_tables(database_url))
    again = _db(home, database_url, "current")
    assert f"schema revision {head()} (up to date)" in again.stdout


def _tables(database_url: str) -> list[str]:
    store = open_store(database_url)
    if store.dialect.name == "sqlite":
        if not Path(database_url.removeprefix("sqlite:///")).exists():
            return []
        query = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
    else:
        query = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
    return [name for (name,) in asyncio.run(sql(store, query))]
