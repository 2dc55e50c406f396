"""Where the two databases truly differ; everything else is written once, for both.

Every database operation is one synchronous function of a SQLAlchemy ``Connection``,
which a ``Dialect`` runs (``run``): PostgreSQL's in one greenlet hop, its statements
awaited on asyncpg; SQLite's in one hop to the connection's own thread. A dialect also opens the
engines and says whose clock "now" is, how a state's history is reached inside JSON,
which app ids are a conversation's forks, and how the relay is woken up.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

Change = Literal["signals", "replies"]
# Failures that mean "the database is not usable", whichever driver raised them.
DATABASE_ERRORS = (OSError, TimeoutError, sa.exc.SQLAlchemyError)
T = TypeVar("T")
Work = Callable[[Connection], T]


class Dialect(abc.ABC):
    """One database: its engines and the handful of things SQL cannot say the same way."""

    name: str
    database_url: str
    # Group commits one process may have in flight at once (each on a connection).
    parallel_commits: int = 1
    # Whether a statement can carry another write as a CTE (one round trip for both).
    chains_writes: bool = False
    # ``sqlalchemy.dialects.<name>.insert``: the upsert (``on_conflict_do_*``) of the database.
    insert: Any
    begin = "BEGIN"  # what starts a write transaction (``run_work``)

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

    @abc.abstractmethod
    async def close(self) -> None:
        """Dispose of the engines that ``open`` created (it may have failed half-way)."""

    @abc.abstractmethod
    async def run(
        self, work: Work[T], *, write: bool = False, side: bool = False, quick: bool = False
    ) -> T:
        """``work(connection)``, in one transaction if ``write``. ``side``: lease and relay
        rows, which need no fsync (SQLite's own connection). ``quick``: a read of a few
        indexed rows, which SQLite may run on the event loop itself."""

    def run_work(self, conn: Connection, work: Work[T], write: bool) -> T:
        """``work`` on an autocommit connection, as it is or in the transaction ``begin``
        starts (spelled out, not SQLAlchemy's: a read has nothing to reset, and SQLite's
        ``BEGIN IMMEDIATE`` can be said)."""
        if not write:
            return work(conn)
        self.driver(conn, self.begin, [])
        try:
            result = work(conn)
        except BaseException:
            with contextlib.suppress(*DATABASE_ERRORS):  # the connection may be what failed
                self.driver(conn, "ROLLBACK", [])
            raise
        self.driver(conn, "COMMIT", [])
        return result

    @abc.abstractmethod
    def driver(self, conn: Connection, sql: str, args: list, many: bool = False) -> Sequence:
        """SQL's rows from the driver (``many``: once per parameter list, no rows), its
        errors raised as SQLAlchemy's: ``Prepared`` statements and transactions."""

    @abc.abstractmethod
    def lock_schema(self, conn: Connection) -> None:
        """Inside the migration's transaction: make other processes' migrations wait."""

    def lock(self, conn: Connection, name: str) -> None:  # noqa: B027 (SQLite: nothing)
        """Inside a write transaction: make others' transactions that lock ``name`` wait
        (SQLite's write transactions already wait for each other)."""

    @abc.abstractmethod
    def now(self, offset_s: float = 0.0) -> Any:
        """The current time (plus ``offset_s``) as leases and relay rows compare it."""

    @abc.abstractmethod
    def commit_time(self) -> Any:
        """ "Now" in a prepared write: PostgreSQL's ``now()``, SQLite's parameter ``now``."""

    @abc.abstractmethod
    def lease_clock(self) -> tuple[Any, Any]:
        """ "Now" and "now plus the parameter ``ttl`` seconds" (``clock_params``)."""

    @abc.abstractmethod
    def history(self, state: sa.ColumnElement) -> sa.ColumnElement:
        """A state's ``chat_history`` as JSON text."""

    @abc.abstractmethod
    def forks_of(self, app_id: sa.ColumnElement, conversation_id: str) -> sa.ColumnElement:
        """True for the fork ids ``c~n`` of a conversation (not for ``c`` itself)."""

    def one_of(self, column: sa.ColumnElement, name: str) -> sa.ColumnElement:
        """``column`` equal to one of the list given as the parameter ``name``."""
        return column.in_(sa.bindparam(name, type_=column.type, expanding=True))

    async def keep_alive(self) -> None:  # noqa: B027 (most databases need nothing)
        """Called on every lease renewal tick."""

    async def other_processes(self) -> list[int]:
        """Pids of other server processes on the same database, when the database knows."""
        return []

    async def notify(self, kind: Change) -> None:  # noqa: B027 (polling databases: nothing)
        """Tell other processes that relay rows of this kind changed (after the write)."""

    async def wait_for_change(self, kind: Change, within_s: float) -> None:
        """Until rows of this kind may have changed, at most ``within_s`` seconds."""
        await asyncio.sleep(within_s)


def reason(exc: BaseException) -> str:
    """What the driver said about a failure, on one line."""
    return " ".join((str(getattr(exc, "orig", None) or exc).strip() or type(exc).__name__).split())


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def clock_params(ttl_s: float = 0.0) -> dict[str, Any]:
    """The parameters of ``Dialect.lease_clock`` and ``commit_time``, for either database."""
    now = utcnow()
    return {"now": now, "expires": now + dt.timedelta(seconds=ttl_s), "ttl": ttl_s}
