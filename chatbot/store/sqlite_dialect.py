"""SQLite: one file shared by every server process of one machine.

``chatbot serve --workers N`` and separate ``chatbot serve`` processes can use one file:
turn leases are rows in it, so one turn at a time per conversation holds across all of
them. ``aiosqlite`` runs each connection's statements on a thread of its own, so the
event loop never waits on disk or on another process's write lock (``busy_timeout``).

What differs from PostgreSQL:

- WAL mode. States and summaries are written with ``synchronous=FULL`` (a turn is on
  disk before its ``end`` frame, and survives a crash of the machine); leases and relay
  rows on a second pool with ``synchronous=NORMAL`` (visible to every process at once, no
  fsync: only a crash of the machine loses one, and then every holder is gone too).
- A write transaction starts with ``BEGIN IMMEDIATE`` (SQLite's write lock first, so a
  lease check and the writes after it are seen by every process in one order), and one
  at a time per process (a second would only wait for the lock inside SQLite).
- Times are this machine's clock, which every process on the file shares.
- Each process keeps a row of its own in ``chatbot_lease_holders``, renewed with its
  leases: that is how a starting server knows whether another one uses the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from chatbot.domain.branch_ids import BRANCH_SEPARATOR
from chatbot.store.dialect import Dialect, utcnow
from chatbot.store.tables import lease_holders

# How long a statement waits for another process's write transaction before failing.
BUSY_TIMEOUT_MS = 10_000


def _engine(path: Path, synchronous: str) -> AsyncEngine:
    # One connection per pool: statements of this process queue for it here instead of
    # contending for the file's lock inside SQLite (whose busy handler sleeps and retries).
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{path}", pool_size=1, max_overflow=0, pool_reset_on_return=None
    )

    @sa.event.listens_for(engine.sync_engine, "connect")
    def configure(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver: reads are single statements, writes say BEGIN themselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode=WAL")
            (mode,) = cursor.fetchone()
            if str(mode).lower() != "wal":
                raise OSError(f"the file cannot use WAL mode (journal mode stays {mode!r})")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
        finally:
            cursor.close()

    return engine


class SQLiteDialect(Dialect):
    name = "sqlite"
    insert = staticmethod(sqlite.insert)

    def __init__(self, path: Path, *, ttl_s: float) -> None:
        self.path = path
        self.database_url = f"sqlite:///{path}"
        self._ttl_s = ttl_s
        self._write_lock = asyncio.Lock()
        self._holder_id = uuid.uuid4().hex  # this store among the file's users

    @property
    def where(self) -> str:
        return f"SQLite file {self.path}"

    def unavailable(self, exc: BaseException) -> str:
        reason = getattr(exc, "orig", None) or exc
        return f"cannot open the SQLite database at {self.path}: {reason}"

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.engine = _engine(self.path, "FULL")
        self.side_engine = _engine(self.path, "NORMAL")

    async def close(self) -> None:
        with contextlib.suppress(AttributeError, *_ERRORS):  # AttributeError: never opened
            async with self.reading(self.side_engine) as conn:
                await conn.execute(
                    lease_holders.delete().where(lease_holders.c.id == self._holder_id)
                )
        await super().close()

    @contextlib.asynccontextmanager
    async def reading(self, engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
        async with engine.connect() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def writing(self, engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
        async with self._write_lock, engine.connect() as conn:
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                await conn.rollback()
                raise
            await conn.commit()

    async def lock_schema(self, conn: AsyncConnection) -> None:
        pass  # ``writing`` began with SQLite's write lock: other processes wait for it

    def now(self, offset_s: float = 0.0) -> dt.datetime:
        return utcnow() + dt.timedelta(seconds=offset_s)

    def history(self, state: sa.ColumnElement) -> sa.ColumnElement:
        return sa.func.json_extract(state, "$.chat_history")

    def history_length(self, state: sa.ColumnElement) -> sa.ColumnElement:
        return sa.func.json_array_length(state, "$.chat_history")

    def without_history(self, state: sa.ColumnElement) -> sa.ColumnElement:
        return sa.func.json_remove(state, "$.chat_history")

    def forks_of(self, app_id: sa.ColumnElement, conversation_id: str) -> sa.ColumnElement:
        # SQLite compares text in binary order: the ids ``c~…`` are one index range.
        after = chr(ord(BRANCH_SEPARATOR) + 1)
        return sa.and_(
            app_id >= conversation_id + BRANCH_SEPARATOR, app_id < conversation_id + after
        )

    async def keep_alive(self) -> None:
        """Say (again) that this process uses the file, for one more TTL."""
        now = utcnow()
        row = {
            "id": self._holder_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": now,
            "expires_at": now + dt.timedelta(seconds=self._ttl_s),
        }
        upsert = sqlite.insert(lease_holders).values(row)
        async with self.reading(self.side_engine) as conn:
            await conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=["id"], set_={"expires_at": upsert.excluded.expires_at}
                )
            )

    async def other_processes(self) -> list[int]:
        """The pids of the others using the file (live, or not yet expired elsewhere)."""
        h = lease_holders.c
        async with self.reading(self.side_engine) as conn:
            rows = await conn.execute(
                sa.select(h.host, h.pid)
                .where(h.expires_at > utcnow(), h.id != self._holder_id)
                .order_by(h.started_at)
            )
        return [pid for host, pid in rows if host != socket.gethostname() or _alive(pid)]


_ERRORS = (OSError, sa.exc.SQLAlchemyError)


def _alive(pid: int) -> bool:
    """Whether a process of this host still runs (one killed leaves an unexpired row)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True
