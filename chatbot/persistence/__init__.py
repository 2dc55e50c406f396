"""Conversation storage: Burr persisters for SQLite (default) and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from chatbot.persistence.base import (
    ConversationBusy,
    ConversationStore,
    ConversationSummary,
    StoreUnavailable,
    TurnLease,
)

__all__ = [
    "ConversationBusy",
    "ConversationStore",
    "ConversationSummary",
    "StoreUnavailable",
    "TurnLease",
    "check_store",
    "open_store",
]


def _scheme(database_url: str) -> str:
    return urlparse(database_url).scheme


def open_store(
    database_url: str, *, pool_size: int | None = None, lease_ttl_s: float | None = None
) -> ConversationStore:
    """The store for a ``sqlite:///path`` or ``postgresql://…`` URL (not yet initialised).

    ``pool_size`` and ``lease_ttl_s`` tune PostgreSQL; SQLite, owned by one process, has
    neither a pool nor leases that can outlive their process.
    """
    scheme = _scheme(database_url)
    if scheme == "sqlite":
        # As in SQLAlchemy: sqlite:///relative.db and sqlite:////absolute/path.db
        if not database_url.startswith("sqlite:///"):
            raise ValueError("A SQLite URL looks like sqlite:///relative.db or sqlite:////abs.db")
        from chatbot.persistence.sqlite import SQLiteConversationStore

        return SQLiteConversationStore(Path(database_url.removeprefix("sqlite:///")).expanduser())
    if scheme in ("postgresql", "postgres"):
        from chatbot.persistence.postgres import (
            DEFAULT_LEASE_TTL_S,
            DEFAULT_POOL_SIZE,
            PostgresConversationStore,
        )

        return PostgresConversationStore(
            database_url,
            pool_size=pool_size or DEFAULT_POOL_SIZE,
            lease_ttl_s=lease_ttl_s or DEFAULT_LEASE_TTL_S,
        )
    raise ValueError(
        f"Unsupported CHATBOT_DATABASE_URL scheme {scheme!r}: use sqlite:///path or postgresql://…"
    )


async def check_store(database_url: str, *, processes: int = 1) -> None:
    """Fail early, with one clear sentence, if ``processes`` servers cannot use this database.

    Opens the store (creating its schema) and closes it again; raises ``StoreUnavailable``.
    Run by ``chatbot serve`` before it starts serving, so a bad configuration is an error
    message and an exit status rather than a traceback (or, with workers, a restart loop).
    """
    try:
        store = open_store(database_url)
    except ValueError as exc:
        raise StoreUnavailable(str(exc)) from None
    if processes > 1 and _scheme(database_url) == "sqlite":
        raise StoreUnavailable(
            f"SQLite serves a single process, so --workers {processes} is not possible; "
            "set CHATBOT_DATABASE_URL=postgresql://… to run several workers"
        )
    await store.initialize()
    await store.close()
