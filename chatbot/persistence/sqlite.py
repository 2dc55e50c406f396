"""The embedded default: Burr's async SQLite persister plus conversation summaries.

One process owns the file (``aiosqlite`` runs each statement on its own thread, so the
event loop never waits on disk); an exclusive lock on ``<database>.lock`` refuses a second
server on the same file, whose in-memory turn leases could not see the first one's. The
kernel drops that lock when its process dies, so a crashed server restarts at once.

The database runs in WAL mode with ``synchronous=FULL``: a turn is on disk before its
``end`` frame, so it survives ``kill -9`` of the server and a crash of the machine too
(one fsync per turn, noise next to a model's reply).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import os
from pathlib import Path

import aiosqlite
import orjson
from burr.core import State
from burr.integrations.persisters.b_aiosqlite import AsyncSQLitePersister

from chatbot.persistence.base import (
    CONVERSATIONS_TABLE,
    SNAPSHOTS_KEPT,
    STATE_TABLE,
    BurrPersisterBridge,
    ConversationStore,
    ConversationSummary,
    StoreUnavailable,
    TurnLease,
    summarise,
    utcnow,
)
from chatbot.persistence.local_leases import LocalLeases


def _ts(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class SQLiteConversationStore(BurrPersisterBridge, AsyncSQLitePersister, ConversationStore):
    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(connection=None, table_name=STATE_TABLE)
        self._write_lock = asyncio.Lock()
        self._pending: list[tuple[tuple, tuple[str, int], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._leases = LocalLeases()
        self._lock_fd: int | None = None

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def _take_file_lock(self) -> None:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StoreUnavailable(
                f"the SQLite database at {self.path} is in use by another process (pid "
                f"{holder}, lock {self.lock_path}); SQLite serves one process: stop that "
                "one, or use CHATBOT_DATABASE_URL=postgresql://… for several"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def _drop_file_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    async def initialize(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._take_file_lock()
            self.connection = await aiosqlite.connect(self.path)
            await self.connection.execute("PRAGMA journal_mode=WAL")
            await self.connection.execute("PRAGMA synchronous=FULL")
            await self.connection.execute("PRAGMA busy_timeout=5000")
            await super().initialize()  # Burr's state table
            await self.connection.execute(
                f"""CREATE TABLE IF NOT EXISTS {CONVERSATIONS_TABLE} (
                    project_id TEXT NOT NULL,
                    app_id TEXT NOT NULL,
                    title TEXT NOT NULL DEFAULT '',
                    turns INTEGER NOT NULL DEFAULT 0,
                    created_at TEXT NOT NULL,
                    updated_at TEXT NOT NULL,
                    PRIMARY KEY (project_id, app_id)
                )"""
            )
            await self.connection.execute(
                f"CREATE INDEX IF NOT EXISTS {CONVERSATIONS_TABLE}_recent "
                f"ON {CONVERSATIONS_TABLE} (project_id, updated_at DESC)"
            )
            await self.connection.commit()
        except (OSError, aiosqlite.Error) as exc:
            await self.close()
            raise StoreUnavailable(
                f"cannot open the SQLite database at {self.path}: {exc}"
            ) from exc
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self.connection is not None:
            await self.connection.close()
            self.connection = None
        self._drop_file_lock()

    # --- Burr persister contract (faster JSON than the parent, same rows) -----------------
    async def load(
        self,
        partition_key: str | None,
        app_id: str | None,
        sequence_id: int | None = None,
        **kwargs,
    ):
        if app_id is None or sequence_id is not None:
            return await super().load(partition_key, app_id, sequence_id, **kwargs)
        async with self.connection.execute(
            f"SELECT position, state, sequence_id, created_at, status FROM {STATE_TABLE} "
            "WHERE partition_key = ? AND app_id = ? ORDER BY sequence_id DESC LIMIT 1",
            (partition_key or "", app_id),
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        return {
            "partition_key": partition_key,
            "app_id": app_id,
            "sequence_id": row[2],
            "position": row[0],
            "state": State(orjson.loads(row[1])),
            "created_at": row[3],
            "status": row[4],
        }

    # --- ConversationStore ----------------------------------------------------------------
    async def save_state(
        self,
        project_id: str,
        app_id: str,
        sequence_id: int,
        position: str,
        state: State,
        status: str,
    ) -> None:
        """Queue the turn for the next group commit and wait until it is on disk.

        Every statement goes through aiosqlite's one thread, and each await is a round trip
        through the event loop; under load, saving turn by turn queued up seconds of
        ``end`` frames. Turns that finish together are written together instead: one
        transaction, one fsync, four round trips, however many turns are in it.
        """
        title, turns = summarise(state.get("chat_history", []))
        payload = orjson.dumps(state.get_all()).decode()
        done = asyncio.get_running_loop().create_future()
        self._pending.append(
            ((project_id, app_id, sequence_id, position, payload, status), (title, turns), done)
        )
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await asyncio.shield(done)

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            now = utcnow().isoformat()
            # One row per conversation: the latest turn of it in this batch wins the summary.
            summaries = {
                (row[0], row[1]): (row[0], row[1], *meta, now, now) for row, meta, _ in batch
            }
            try:
                async with self._write_lock:
                    try:
                        await self.connection.executemany(
                            f"INSERT OR REPLACE INTO {STATE_TABLE} "
                            "(partition_key, app_id, sequence_id, position, state, status) "
                            "VALUES (?, ?, ?, ?, ?, ?)",
                            [row for row, _, _ in batch],
                        )
                        await self.connection.executemany(
                            f"INSERT INTO {CONVERSATIONS_TABLE} "
                            "(project_id, app_id, title, turns, created_at, updated_at) "
                            "VALUES (?, ?, ?, ?, ?, ?) "
                            "ON CONFLICT (project_id, app_id) DO UPDATE SET "
                            "title = excluded.title, turns = excluded.turns, "
                            "updated_at = excluded.updated_at",
                            list(summaries.values()),
                        )
                        await self.connection.executemany(
                            f"DELETE FROM {STATE_TABLE} WHERE partition_key = ? AND app_id = ? "
                            f"AND sequence_id NOT IN (SELECT sequence_id FROM {STATE_TABLE} "
                            "WHERE partition_key = ? AND app_id = ? "
                            "ORDER BY sequence_id DESC LIMIT ?)",
                            [(p, a, p, a, SNAPSHOTS_KEPT) for p, a in summaries],
                        )
                        await self.connection.commit()
                    except BaseException:
                        await self.connection.rollback()
                        raise
            except BaseException as exc:
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(exc if isinstance(exc, Exception) else RuntimeError(exc))
                if not isinstance(exc, Exception):
                    raise
            else:
                for _, _, done in batch:
                    if not done.done():
                        done.set_result(None)

    async def create(self, project_id: str, app_id: str) -> bool:
        now = utcnow().isoformat()
        async with self._write_lock:
            cursor = await self.connection.execute(
                f"INSERT INTO {CONVERSATIONS_TABLE} "
                "(project_id, app_id, title, turns, created_at, updated_at) "
                "VALUES (?, ?, '', 0, ?, ?) ON CONFLICT (project_id, app_id) DO NOTHING",
                (project_id, app_id, now, now),
            )
            await self.connection.commit()
            return cursor.rowcount > 0

    async def exists(self, project_id: str, app_id: str) -> bool:
        async with self.connection.execute(
            f"SELECT 1 FROM {CONVERSATIONS_TABLE} WHERE project_id = ? AND app_id = ?",
            (project_id, app_id),
        ) as cursor:
            return await cursor.fetchone() is not None

    async def list(
        self, project_id: str, limit: int, offset: int
    ) -> tuple[list[ConversationSummary], int]:
        async with self.connection.execute(
            f"SELECT COUNT(*) FROM {CONVERSATIONS_TABLE} WHERE project_id = ?", (project_id,)
        ) as cursor:
            (total,) = await cursor.fetchone()
        async with self.connection.execute(
            f"SELECT app_id, title, turns, created_at, updated_at FROM {CONVERSATIONS_TABLE} "
            "WHERE project_id = ? ORDER BY updated_at DESC, app_id LIMIT ? OFFSET ?",
            (project_id, limit, offset),
        ) as cursor:
            rows = await cursor.fetchall()
        items = [
            ConversationSummary(app_id, title, turns, _ts(created), _ts(updated))
            for app_id, title, turns, created, updated in rows
        ]
        return items, total

    async def delete(self, project_id: str, app_id: str) -> bool:
        async with self._write_lock:
            cursor = await self.connection.execute(
                f"DELETE FROM {CONVERSATIONS_TABLE} WHERE project_id = ? AND app_id = ?",
                (project_id, app_id),
            )
            deleted = cursor.rowcount > 0
            await self.connection.execute(
                f"DELETE FROM {STATE_TABLE} WHERE partition_key = ? AND app_id = ?",
                (project_id, app_id),
            )
            await self.connection.commit()
            return deleted

    async def acquire_turn(self, project_id: str, app_id: str) -> TurnLease:
        return self._leases.acquire(project_id, app_id)
