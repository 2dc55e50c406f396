"""Conversation storage: one Burr persister over SQLAlchemy Core, for SQLite and PostgreSQL.

``store`` is the store, written once; ``branches`` and ``leases`` its rows beside Burr's
states; ``tables`` the schema of every table in the database (the relay's rows too, whose
statements ``chatbot.relay.rows`` keeps); ``migrate`` and ``migrations/`` its Alembic
revisions; ``dialect`` and its two implementations what the databases do differently.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlparse

# Re-exported (``X as X``): what the rest of the chatbot imports from the store.
from chatbot.domain.branch_tree import BranchRecord as BranchRecord
from chatbot.store.base import DEFAULT_LEASE_TTL_S
from chatbot.store.base import Boundary as Boundary
from chatbot.store.base import ConversationBusy as ConversationBusy
from chatbot.store.base import ConversationSummary as ConversationSummary
from chatbot.store.base import NewBranch as NewBranch
from chatbot.store.base import SchemaTooNew as SchemaTooNew
from chatbot.store.base import StoreUnavailable as StoreUnavailable
from chatbot.store.base import TurnLease as TurnLease
from chatbot.store.base import TurnLeaseLost as TurnLeaseLost
from chatbot.store.dialect import Dialect
from chatbot.store.store import ConversationStore as ConversationStore


def open_store(
    database_url: str, *, pool_size: int | None = None, lease_ttl_s: float | None = None
) -> ConversationStore:
    """The store for a ``sqlite:///path`` or ``postgresql://…`` URL (not yet initialised);
    raises ``StoreUnavailable`` for any other. ``lease_ttl_s``: how long a crashed process's
    leases keep its conversations busy."""
    ttl = lease_ttl_s or DEFAULT_LEASE_TTL_S
    scheme = urlparse(database_url).scheme
    if scheme == "sqlite":
        if not database_url.startswith("sqlite:///"):
            raise StoreUnavailable("a SQLite URL is sqlite:///relative.db or sqlite:////abs.db")
        from chatbot.store.sqlite_dialect import SQLiteDialect

        path = Path(database_url.removeprefix("sqlite:///")).expanduser()
        return ConversationStore(SQLiteDialect(path, ttl_s=ttl), lease_ttl_s=ttl)
    if scheme in ("postgresql", "postgres"):
        from chatbot.store.postgres_dialect import DEFAULT_POOL_SIZE, PostgresDialect

        dialect = PostgresDialect(database_url, pool_size=pool_size or DEFAULT_POOL_SIZE)
        return ConversationStore(dialect, lease_ttl_s=ttl)
    raise StoreUnavailable(
        f"unsupported CHATBOT_DATABASE_URL scheme {scheme!r}: use sqlite:///path or postgresql://…"
    )


async def check_store(database_url: str) -> tuple[str, list[int]]:
    """Open the database once before serving (migrating its schema) and close it again:
    where it is and the pids of other server processes using it. ``StoreUnavailable`` says
    what is wrong in one sentence (an error line and an exit status, not a traceback)."""
    store = open_store(database_url)
    await store.initialize()
    try:
        return store.where, await store.dialect.other_processes()
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def opened(database_url: str, *, upgrade: bool = True) -> AsyncIterator[Dialect]:
    """The database alone, without the store around it (the command line's tools), its
    schema migrated first unless ``upgrade`` is false; failures are ``StoreUnavailable``."""
    from chatbot.store import migrate
    from chatbot.store.dialect import DATABASE_ERRORS

    dialect = open_store(database_url).dialect
    try:
        await dialect.open()
        if upgrade:
            await migrate.upgrade(dialect)
        yield dialect
    except DATABASE_ERRORS as exc:
        raise StoreUnavailable(dialect.unavailable(exc)) from exc
    finally:
        await dialect.close()


async def schema_revision(database_url: str, *, upgrade: bool = False) -> tuple[str, str, str]:
    """The database, its schema revision ("" for none) and this release's newest revision;
    with ``upgrade``, migrated first (``chatbot db upgrade``; ``current`` changes nothing)."""
    from chatbot.store import migrate

    async with opened(database_url, upgrade=upgrade) as dialect:
        return dialect.where, await migrate.current(dialect), migrate.head()
