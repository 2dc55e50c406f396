"""Conversation storage: one Burr persister over SQLAlchemy Core, for SQLite and PostgreSQL.

``store`` is the store, written once; ``tables`` the schema; ``migrate`` and
``migrations/`` its Alembic revisions; ``sqlite_dialect`` and ``postgres_dialect`` what
the two databases do differently; ``leases`` and ``relay`` the turn leases and the
relay's rows, which live in the same database.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from chatbot.store.base import (
    DEFAULT_LEASE_TTL_S,
    Boundary,
    BranchRecord,
    ConversationBusy,
    ConversationSummary,
    NewBranch,
    SchemaTooNew,
    StoreUnavailable,
    TurnLease,
    TurnLeaseLost,
)
from chatbot.store.store import ConversationStore

__all__ = [
    "Boundary",
    "BranchRecord",
    "ConversationBusy",
    "ConversationStore",
    "ConversationSummary",
    "NewBranch",
    "SchemaTooNew",
    "StoreUnavailable",
    "TurnLease",
    "TurnLeaseLost",
    "check_store",
    "open_store",
    "schema_revision",
]


def open_store(
    database_url: str, *, pool_size: int | None = None, lease_ttl_s: float | None = None
) -> ConversationStore:
    """The store for a ``sqlite:///path`` or ``postgresql://…`` URL (not yet initialised).

    ``lease_ttl_s`` is how long a crashed process's turn leases keep their conversations
    busy, on either database; ``pool_size`` is PostgreSQL's connections per process.
    """
    ttl = lease_ttl_s or DEFAULT_LEASE_TTL_S
    scheme = urlparse(database_url).scheme
    if scheme == "sqlite":
        # As in SQLAlchemy: sqlite:///relative.db and sqlite:////absolute/path.db
        if not database_url.startswith("sqlite:///"):
            raise ValueError("A SQLite URL looks like sqlite:///relative.db or sqlite:////abs.db")
        from chatbot.store.sqlite_dialect import SQLiteDialect

        path = Path(database_url.removeprefix("sqlite:///")).expanduser()
        return ConversationStore(SQLiteDialect(path, ttl_s=ttl), lease_ttl_s=ttl)
    if scheme in ("postgresql", "postgres"):
        from chatbot.store.postgres_dialect import DEFAULT_POOL_SIZE, PostgresDialect

        dialect = PostgresDialect(database_url, pool_size=pool_size or DEFAULT_POOL_SIZE)
        return ConversationStore(dialect, lease_ttl_s=ttl)
    raise ValueError(
        f"Unsupported CHATBOT_DATABASE_URL scheme {scheme!r}: use sqlite:///path or postgresql://…"
    )


async def check_store(database_url: str, *, processes: int = 1) -> str:
    """Open the database once before serving; answers the start-up banner's line about it.

    Opens the store (migrating its schema, see ``migrate``) and closes it again; raises
    ``StoreUnavailable`` with one clear sentence, so a bad configuration is an error
    message and an exit status rather than a traceback (or, with workers, children that
    fail one after another). ``processes`` is the number of workers about to share it.
    """
    try:
        store = open_store(database_url)
    except ValueError as exc:
        raise StoreUnavailable(str(exc)) from None
    await store.initialize()
    try:
        sharing = [f"by the {processes} workers"] if processes > 1 else []
        sharing += _other_servers(await store.other_processes())
        line = f"Database: {store.where}"
        return f"{line}, shared {' and '.join(sharing)}" if sharing else line
    finally:
        await store.close()


async def schema_revision(database_url: str, *, upgrade: bool = False) -> tuple[str, str, str]:
    """The database, its schema revision ("" for none) and this release's newest revision.

    With ``upgrade``, migrates first (``chatbot db upgrade``); without, changes nothing
    (``chatbot db current``). Raises ``StoreUnavailable`` (``SchemaTooNew`` for a revision
    this release does not know).
    """
    from chatbot.store import migrate
    from chatbot.store.dialect import DATABASE_ERRORS

    try:
        dialect = open_store(database_url).dialect
    except ValueError as exc:
        raise StoreUnavailable(str(exc)) from None
    try:
        await dialect.open()
        if upgrade:
            await migrate.upgrade(dialect)
        return dialect.where, await migrate.current(dialect), migrate.head()
    except DATABASE_ERRORS as exc:
        raise StoreUnavailable(dialect.unavailable(exc)) from exc
    finally:
        await dialect.close()


def _other_servers(pids: list[int]) -> list[str]:
    if len(pids) == 1:
        return [f"with another server process (pid {pids[0]})"]
    if pids:
        listed = ", ".join(str(pid) for pid in pids)
        return [f"with {len(pids)} other server processes (pids {listed})"]
    return []
