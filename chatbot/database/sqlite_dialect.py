"""SQLite: one file shared by every server process of one machine (the leases are rows).

Each of a process's two connections is kept by a thread of its own, so the event loop
never waits on the disk or on another process's write lock. What differs from PostgreSQL:

- WAL mode; states and summaries are written with ``synchronous=FULL`` (a turn is on
  disk before its ``end`` frame), leases and relay rows on the second connection with
  ``synchronous=NORMAL`` (only a crash of the machine loses one, and every holder too).
- ``BEGIN IMMEDIATE``: the write lock first, so every process sees a lease check and the
  writes after it in one order. Times are this machine's clock.
- Each process keeps a row in ``chatbot_lease_holders``, renewed with its leases: how a
  starting server knows that another one uses the file.
- A ``quick`` read (a turn's shown branch and state) runs on the event loop, on a third,
  read-only connection: a WAL reader never waits for a writer, and the read takes about a
  tenth of what handing it to a connection's thread and back costs (measured: 11 against
  105 µs of CPU). If the file is locked all the same (a crashed writer's WAL being
  recovered), that connection fails at once and the read goes to its thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import queue
import socket
import sqlite3
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection, Engine

from chatbot.database.dialect import DATABASE_ERRORS, Dialect, T, Work, reason, utcnow
from chatbot.database.tables import Clock, lease_holders
from chatbot.domain.branch_ids import BRANCH_SEPARATOR

# How long a statement waits for another process's write transaction before failing.
BUSY_TIMEOUT_MS = 10_000
_FORGOTTEN_AFTER = dt.timedelta(hours=1)


def _engine(path: Path, synchronous: str | None) -> Engine:
    """The engine of one connection, opened once and kept by its lane's thread (or, with
    no ``synchronous``, the event loop's read-only connection: it never waits)."""
    engine = sa.create_engine(
        f"sqlite:///{path}",
        pool_size=1,
        max_overflow=0,
        isolation_level="AUTOCOMMIT",  # ``Dialect.run_work`` begins and commits
        connect_args={"check_same_thread": False},
    )

    @sa.event.listens_for(engine, "connect")
    def configure(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            if synchronous is None:  # the loop's reader (the file is already in WAL mode)
                cursor.execute("PRAGMA query_only=1")
                return
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            (mode,) = cursor.execute("PRAGMA journal_mode=WAL").fetchone()
            if str(mode).lower() != "wal":
                raise OSError(f"the file cannot use WAL mode (journal mode stays {mode!r})")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
        finally:
            cursor.close()

    return engine


class _Lane:
    """The thread keeping one connection: runs the event loop's calls, in order.

    Hand-rolled, not a one-thread ``ThreadPoolExecutor``: ``run_in_executor`` pays two
    futures, a condition and their callbacks per call (under a burst, as much as the
    statement); here a call is one queue entry and one ``call_soon_threadsafe``.
    """

    def __init__(self, name: str) -> None:
        self._calls: queue.SimpleQueue[tuple | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def call(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._calls.put((loop, done, fn, args))
        return done

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            loop, done, fn, args = call
            try:
                result = fn(*args)
            except BaseException as exc:  # handed to the caller, whatever it is
                loop.call_soon_threadsafe(_settle, done, None, exc)
            else:
                loop.call_soon_threadsafe(_settle, done, result, None)

    async def stop(self) -> None:
        self._calls.put(None)
        await asyncio.to_thread(self._thread.join)


def _settle(done: asyncio.Future, result: Any, exc: BaseException | None) -> None:
    if done.cancelled():  # its caller stopped waiting; the call itself ran
        return
    done.set_exception(exc) if exc is not None else done.set_result(result)


class SQLiteDialect(Dialect):
    name = "sqlite"
    insert = staticmethod(sqlite.insert)
    begin = "BEGIN IMMEDIATE"  # the write lock first (see above)

    def __init__(self, path: Path, *, ttl_s: float) -> None:
        self.path = path
        self.database_url = f"sqlite:///{path}"
        self._ttl_s = ttl_s
        # The two connections (``side``: leases and relay), each kept by its own thread.
        self._lanes: dict[bool, tuple[Connection, _Lane]] = {}
        self._reader: Connection | None = None  # ``quick`` reads, on the event loop
        self._holder_id = uuid.uuid4().hex  # this process among the file's users
        # Both connections write: they take turns here, where the one waiting is woken at
        # once, not in SQLite's busy handler (which sleeps a millisecond or more per retry).
        self._writing = threading.Lock()

    @property
    def where(self) -> str:
        return f"SQLite file {self.path}"

    def unavailable(self, exc: BaseException) -> str:
        return f"cannot open the SQLite database at {self.path}: {reason(exc)}"

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for side, synchronous in ((False, "FULL"), (True, "NORMAL")):
            lane = _Lane(f"sqlite-{synchronous.lower()}")
            try:
                conn = await lane.call(_engine(self.path, synchronous).connect)
            except BaseException:
                await lane.stop()
                raise
            self._lanes[side] = (conn, lane)
        self._reader = _engine(self.path, None).connect()

    async def close(self) -> None:
        if len(self._lanes) == 2:
            with contextlib.suppress(*DATABASE_ERRORS):
                mine = lease_holders.delete().where(lease_holders.c.id == self._holder_id)
                await self.run(lambda conn: conn.execute(mine), side=True)
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()
            reader.engine.dispose()
        lanes, self._lanes = self._lanes, {}
        for conn, lane in lanes.values():
            try:
                await lane.call(conn.close)
                await lane.call(conn.engine.dispose)
            finally:
                await lane.stop()

    async def run(
        self, work: Work[T], *, write: bool = False, side: bool = False, quick: bool = False
    ) -> T:
        if quick and not write and self._reader is not None:
            try:
                return self.run_work(self._reader, work, False)
            except sa.exc.OperationalError as exc:
                if not _locked(exc):
                    raise  # locked: the lane's connection waits for it (busy_timeout)
        conn, lane = self._lanes[side]
        return await lane.call(self._locked if write or side else self.run_work, conn, work, write)

    def _locked(self, conn: Connection, work: Work[T], write: bool) -> T:
        with self._writing:
            return self.run_work(conn, work, write)

    def driver(self, conn: Connection, sql: str, args: list, many: bool = False) -> list:
        raw = conn.connection.driver_connection
        try:
            return (raw.executemany if many else raw.execute)(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise sa.exc.DBAPIError.instance(sql, args, exc, sqlite3.Error) from exc

    def lock_schema(self, conn: Connection) -> None:
        pass  # the migration's transaction began with SQLite's write lock (BEGIN IMMEDIATE)

    def now(self, offset_s: float = 0.0) -> dt.datetime:
        return utcnow() + dt.timedelta(seconds=offset_s)

    def lease_clock(self) -> tuple[Any, Any]:
        return sa.bindparam("now", type_=Clock), sa.bindparam("expires", type_=Clock)

    def commit_time(self) -> sa.BindParameter:
        return sa.bindparam("now")

    def history(self, state: sa.ColumnElement) -> sa.ColumnElement:
        return sa.func.json_extract(state, "$.chat_history")

    def forks_of(self, app_id: sa.ColumnElement, conversation_id: str) -> sa.ColumnElement:
        # SQLite compares text in binary order: the ids ``c~…`` are one index range.
        after = chr(ord(BRANCH_SEPARATOR) + 1)
        return sa.and_(
            app_id >= conversation_id + BRANCH_SEPARATOR, app_id < conversation_id + after
        )

    async def keep_alive(self) -> None:
        """Say (again) that this process uses the file, for one more TTL."""
        now = utcnow()
        row = {"id": self._holder_id, "host": socket.gethostname(), "pid": os.getpid()}
        row |= {"started_at": now, "expires_at": now + dt.timedelta(seconds=self._ttl_s)}
        upsert = sqlite.insert(lease_holders).values(row)
        renewed = upsert.on_conflict_do_update(
            index_elements=["id"], set_={"expires_at": upsert.excluded.expires_at}
        )
        # Rows of processes that died long ago go too (a process killed leaves its row).
        gone = lease_holders.delete().where(lease_holders.c.expires_at < now - _FORGOTTEN_AFTER)

        def renew(conn: Connection) -> None:
            conn.execute(renewed)
            conn.execute(gone)

        await self.run(renew, side=True)

    async def other_processes(self) -> list[int]:
        """The pids of the others using the file (live, or not yet expired elsewhere)."""
        h = lease_holders.c
        others = sa.select(h.host, h.pid).where(h.expires_at > utcnow(), h.id != self._holder_id)
        others = others.order_by(h.started_at)
        rows = await self.run(lambda conn: conn.execute(others).all(), side=True)
        return [pid for host, pid in rows if host != socket.gethostname() or _alive(pid)]


def _locked(exc: sa.exc.OperationalError) -> bool:
    """Whether SQLite refused for a lock (``SQLITE_BUSY``), not for anything else."""
    code = getattr(exc.orig, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY  # extended codes too


def _alive(pid: int) -> bool:
    """Whether a process of this host still runs (one killed leaves an unexpired row)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        pass
    return True
