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
    "open_store",
]


def open_store(database_url: str) -> ConversationStore:
    """The store for a ``sqlite:///path`` or ``postgresql://…`` URL (not yet initialised)."""
    scheme = urlparse(database_url).scheme
    if scheme == "sqlite":
        # As in SQLAlchemy: sqlite:///relative.db and sqlite:////absolute/path.db
        if not database_url.startswith("sqlite:///"):
            raise ValueError("A SQLite URL looks like sqlite:///relative.db or sqlite:////abs.db")
        from chatbot.persistence.sqlite import SQLiteConversationStore

        return SQLiteConversationStore(Path(database_url.removeprefix("sqlite:///")).expanduser())
    if scheme in ("postgresql", "postgres"):
        from chatbot.persistence.postgres import PostgresConversationStore

        return PostgresConversationStore(database_url)
    raise ValueError(
        f"Unsupported CHATBOT_DATABASE_URL scheme {scheme!r}: use sqlite:///path or postgresql://…"
    )
