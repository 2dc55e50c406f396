"""Where the two databases truly differ; everything else in the store is written once.

A ``Dialect`` opens the engines, says how a write transaction starts and how reads run,
whose clock "now" is, how a state's history is reached inside JSON, which app ids belong
to a conversation, and what the relay's wake-ups are. ``sqlite_dialect`` and
``postgres_dialect`` are its two implementations.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import datetime as dt
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

Change = Literal["signals", "replies"]
# Failures that mean "the database is not usable", whichever driver raised them.
DATABASE_ERRORS = (OSError, TimeoutError, sa.exc.SQLAlchemyError)
_ENGINES = ("engine", "side_engine")
_Connection = contextlib.AbstractAsyncContextManager[AsyncConnection]


class Dialect(abc.ABC):
    """One database: its engines and the handful of things SQL cannot say the same way."""

    name: str
    # States, summaries and branches.
    engine: AsyncEngine
    # Leases and relay rows (SQLite: a pool that commits without an fsync); may be ``engine``.
    side_engine: AsyncEngine
    # ``sqlalchemy.dialects.<name>.insert``: the upsert (``on_conflict_do_*``) of the database.
    insert: Any

    @property
    @abc.abstractmethod
    def where(self) -> str:
        """The database, for messages and logs (never with a password)."""

    @abc.abstractmethod
    def unavailable(self, exc: BaseException) -> str:
        """The sentence for a database that cannot be opened (``StoreUnavailable``)."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Create the engines (they belong to the running event loop)."""

    async def close(self) -> None:
        """Dispose of the engines (those opened: ``open`` may have failed half-way)."""
        engines = {id(e): e for e in (self.__dict__.pop(n, None) for n in _ENGINES) if e}
        for engine in engines.values():
            await engine.dispose()

    # --- transactions -------------------------------------------------------------------
    @abc.abstractmethod
    def reading(self, engine: AsyncEngine) -> _Connection:
        """A connection whose statements each commit on their own (one round trip each)."""

    @abc.abstractmethod
    def writing(self, engine: AsyncEngine) -> _Connection:
        """A connection in a write transaction, committed at the end (rolled back on error)."""

    @abc.abstractmethod
    async def lock_schema(self, conn: AsyncConnection) -> None:
        """Inside the migration's transaction: make other processes' migrations wait."""

    # --- SQL that differs ---------------------------------------------------------------
    @abc.abstractmethod
    def now(self, offset_s: float = 0.0) -> Any:
        """The current time (plus ``offset_s``) as leases and relay rows compare it."""

    @abc.abstractmethod
    def history(self, state: sa.ColumnElement) -> sa.ColumnElement:
        """A state's ``chat_history`` as JSON text."""

    @abc.abstractmethod
    def history_length(self, state: sa.ColumnElement) -> sa.ColumnElement:
        """A state's history length; NULL for a state without one."""

    @abc.abstractmethod
    def without_history(self, state: sa.ColumnElement) -> sa.ColumnElement:
        """A state's JSON without its history."""

    @abc.abstractmethod
    def forks_of(self, app_id: sa.ColumnElement, conversation_id: str) -> sa.ColumnElement:
        """True for the fork ids ``c~n`` of a conversation (not for ``c`` itself)."""

    # --- this process among the others --------------------------------------------------
    async def keep_alive(self) -> None:  # noqa: B027 (most databases need nothing)
        """Called on every lease renewal tick."""

    async def other_processes(self) -> list[int]:
        """Pids of other server processes on the same database, when the database knows."""
        return []

    # --- relay wake-ups -----------------------------------------------------------------
    async def notify(self, kind: Change) -> None:  # noqa: B027 (polling databases: nothing)
        """Tell other processes that relay rows of this kind changed (after the write)."""

    async def wait_for_change(self, kind: Change, within_s: float) -> None:
        """Until rows of this kind may have changed, at most ``within_s`` seconds."""
        await asyncio.sleep(within_s)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
