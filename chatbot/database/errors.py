"""The database's failures as the chatbot reports them: one sentence each, with a code."""

from __future__ import annotations


class StoreUnavailable(Exception):
    """The database cannot be reached or initialised."""

    code = "storage_unavailable"


class SchemaTooNew(StoreUnavailable):
    """The database was migrated by a newer release than this one: refuse to touch it."""
