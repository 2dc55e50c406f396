"""The embedded default: one SQLite file, shared by every server process of one machine.

``chatbot serve --workers N`` and separate ``chatbot serve`` processes can use one file:
turn leases are rows in it (``sqlite_leases``), so one turn at a time per conversation
holds across all of them, and nothing about a conversation is cached in a process.
``aiosqlite`` runs each connection's statements on a thread of its own, so the event loop
never waits on disk or on another process's write lock (``busy_timeout``).

States and summaries are written in WAL mode with ``synchronous=FULL``: a turn is on
disk before its ``end`` frame, so it survives ``kill -9`` of any process and a crash of
the machine too. Turns that finish together in one process share one transaction and
one fsync (the group commit in ``save``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from pathlib import Path
from typing import Any, Literal

import aiosqlite
from burr.core import State
from burr.core.persistence import PersistedStateData

from chatbot.domain.branch_ids import conversation_of
from chatbot.domain.client_view import history_digest
from chatbot.store import sqlite_branches
from chatbot.store.base import (
    CONVERSATIONS_TABLE,
    DEFAULT_LEASE_TTL_S,
    HISTORY_DIGESTS_TABLE,
    PARTITION_KEY_DEFAULT,
    SNAPSHOTS_KEPT,
    STATE_TABLE,
    Boundary,
    BranchRecord,
    ConversationStore,
    ConversationSummary,
    NewBranch,
    StoreUnavailable,
    TurnLease,
    TurnLeaseLost,
    decode_state,
    encode_state,
    parse_timestamp,
    summarise,
    utcnow,
)
from chatbot.store.branch_rows import START_SEQUENCE_ID, TurnRows
from chatbot.store.leases import DatabaseLeases, process_holder
from chatbot.store.relay import RelayTable
from chatbot.store.sqlite_leases import CREATE_LEASE_TABLES, SQLiteLeaseTable, held_tokens
from chatbot.store.sqlite_relay import CREATE_RELAY_TABLES, SQLiteRelayTable

logger = logging.getLogger(__name__)

# How long a statement waits for another process's write transaction before failing.
BUSY_TIMEOUT_MS = 10_000

# Burr's ``AsyncSQLitePersister`` table, column for column, so Burr reads our rows.
_CREATE_TABLES = (
    f"""CREATE TABLE IF NOT EXISTS {STATE_TABLE} (
        partition_key TEXT DEFAULT '{PARTITION_KEY_DEFAULT}',
        app_id TEXT NOT NULL,
        sequence_id INTEGER NOT NULL,
        position TEXT NOT NULL,
        status TEXT NOT NULL,
        state TEXT NOT NULL,
        created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
        PRIMARY KEY (partition_key, app_id, sequence_id, position)
    )""",
    f"CREATE INDEX IF NOT EXISTS {STATE_TABLE}_created_at_index ON {STATE_TABLE} (created_at)",
    f"""CREATE TABLE IF NOT EXISTS {CONVERSATIONS_TABLE} (
        project_id TEXT NOT NULL,
        app_id TEXT NOT NULL,
        title TEXT NOT NULL DEFAULT '',
        turns INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (project_id, app_id)
    )""",
    f"CREATE INDEX IF NOT EXISTS {CONVERSATIONS_TABLE}_recent "
    f"ON {CONVERSATIONS_TABLE} (project_id, updated_at DESC)",
    f"""CREATE TABLE IF NOT EXISTS {HISTORY_DIGESTS_TABLE} (
        project_id TEXT NOT NULL,
        app_id TEXT NOT NULL,
        digest TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (project_id, app_id)
    )""",
    f"CREATE INDEX IF NOT EXISTS {HISTORY_DIGESTS_TABLE}_digest "
    f"ON {HISTORY_DIGESTS_TABLE} (project_id, digest, updated_at DESC)",
    *sqlite_branches.CREATE_BRANCH_TABLES,
    *CREATE_LEASE_TABLES,
    *CREATE_RELAY_TABLES,
)
_STATE_COLUMNS = "position, state, sequence_id, app_id, created_at, status"


class _PendingSave:
    """One turn waiting for the next group commit."""

    __slots__ = ("branch", "done", "row", "title", "token", "turns")

    def __init__(
        self,
        row: tuple,
        title: str,
        turns: int,
        branch: TurnRows,
        token: uuid.UUID | None,
        done: asyncio.Future,
    ) -> None:
        self.row = row  # (partition_key, app_id, sequence_id, position, state, status)
        self.title = title
        self.turns = turns
        self.branch = branch  # its boundary and branch rows (and the digest)
        self.token = token
        self.done = done


class SQLiteConversationStore(ConversationStore):
    def __init__(self, path: Path, *, lease_ttl_s: float = DEFAULT_LEASE_TTL_S) -> None:
        self.path = path
        self.lease_ttl_s = float(lease_ttl_s)
        # States and summaries (synchronous=FULL); leases and the relay have a connection
        # each, so neither waits behind the other's statements.
        self.connection: aiosqlite.Connection | None = None
        self._lease_connection: aiosqlite.Connection | None = None
        self._relay_connection: aiosqlite.Connection | None = None
        self._lease_table: SQLiteLeaseTable | None = None
        self._relay: SQLiteRelayTable | None = None
        self._leases: DatabaseLeases | None = None
        # One transaction at a time on ``connection`` (BEGIN … COMMIT spans awaits).
        self._write_lock = asyncio.Lock()
        self._pending: list[_PendingSave] = []
        self._flusher: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"SQLiteConversationStore({str(self.path)!r})"

    @property
    def where(self) -> str:
        return f"SQLite file {self.path}"

    # --- lifecycle ------------------------------------------------------------------------
    async def initialize(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.connection = await _connect(self.path, synchronous="FULL")
            self._lease_connection = await _connect(self.path, synchronous="NORMAL")
            self._relay_connection = await _connect(self.path, synchronous="NORMAL")
            await self._create_schema()
            table = SQLiteLeaseTable(self._lease_connection, process_holder(), self.lease_ttl_s)
            await table.register()
        except (OSError, aiosqlite.Error) as exc:
            await self.close()
            raise StoreUnavailable(
                f"cannot open the SQLite database at {self.path}: {exc}"
            ) from exc
        except BaseException:
            await self.close()
            raise
        self._lease_table = table
        self._relay = SQLiteRelayTable(self._relay_connection)
        self._leases = DatabaseLeases(table, ttl_s=self.lease_ttl_s)
        self._leases.start()

    async def _create_schema(self) -> None:
        # One process at a time creates tables (two workers may start on a new file at once).
        await self.connection.execute("BEGIN IMMEDIATE")
        try:
            for statement in _CREATE_TABLES:
                await self.connection.execute(statement)
            await self.connection.commit()
        except BaseException:
            await self.connection.rollback()
            raise

    async def is_initialized(self) -> bool:
        if self.connection is None:
            return False
        rows = await self.connection.execute_fetchall(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (STATE_TABLE,)
        )
        return bool(rows)

    async def close(self) -> None:
        if self._leases is not None:
            await self._leases.stop()
            self._leases = None
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self._lease_table is not None:
            with contextlib.suppress(aiosqlite.Error):
                await self._lease_table.unregister()
            self._lease_table = None
        self._relay = None
        for name in ("connection", "_lease_connection", "_relay_connection"):
            conn = getattr(self, name)
            if conn is not None:
                setattr(self, name, None)
                await conn.close()

    async def ping(self) -> None:
        if self.connection is None:
            raise StoreUnavailable(f"the SQLite database at {self.path} is closed")
        try:
            await self.connection.execute_fetchall("SELECT 1")
        except Exception as exc:  # whatever broke the round trip, the answer is "not ready"
            raise StoreUnavailable(
                f"the SQLite database at {self.path} does not answer: {exc}"
            ) from exc

    async def other_processes(self) -> list[int]:
        """The pids of the other live server processes using this file, oldest first."""
        return await self._lease_table.other_processes()

    # --- Burr's persister contract --------------------------------------------------------
    async def load(
        self,
        partition_key: str | None,
        app_id: str | None,
        sequence_id: int | None = None,
        **kwargs: Any,
    ) -> PersistedStateData | None:
        partition_key = partition_key if partition_key is not None else PARTITION_KEY_DEFAULT
        if app_id is not None and sequence_id == START_SEQUENCE_ID:
            return await sqlite_branches.load_boundary(
                self.connection, partition_key, app_id, sequence_id
            )
        if app_id is None:
            query = (
                f"SELECT {_STATE_COLUMNS} FROM {STATE_TABLE} WHERE partition_key = ? "
                "ORDER BY created_at DESC, rowid DESC LIMIT 1"
            )
            params: tuple = (partition_key,)
        elif sequence_id is None:
            query = (
                f"SELECT {_STATE_COLUMNS} FROM {STATE_TABLE} "
                "WHERE partition_key = ? AND app_id = ? ORDER BY sequence_id DESC LIMIT 1"
            )
            params = (partition_key, app_id)
        else:
            query = (
                f"SELECT {_STATE_COLUMNS} FROM {STATE_TABLE} "
                "WHERE partition_key = ? AND app_id = ? AND sequence_id = ? "
                "ORDER BY created_at DESC LIMIT 1"
            )
            params = (partition_key, app_id, sequence_id)
        async with self.connection.execute(query, params) as cursor:
            row = await cursor.fetchone()
        if row is None:
            if app_id is None or sequence_id is None:
                return None
            # Pruned: rebuilt from the turn's boundary row and the branch's latest snapshot.
            return await sqlite_branches.load_boundary(
                self.connection, partition_key, app_id, sequence_id
            )
        position, payload, found_sequence_id, found_app_id, created_at, status = row
        return {
            "partition_key": partition_key,
            "app_id": found_app_id,
            "sequence_id": found_sequence_id,
            "position": position,
            "state": decode_state(payload),
            "created_at": created_at,
            "status": status,
        }

    async def save(
        self,
        partition_key: str | None,
        app_id: str,
        sequence_id: int,
        position: str,
        state: State,
        status: Literal["completed", "failed"],
        new_branch: NewBranch | None = None,
        **kwargs: Any,
    ) -> None:
        """Queue the turn for the next group commit and wait until it is on disk.

        Every statement goes through aiosqlite's one thread, and each await is a round trip
        through the event loop; under load, saving turn by turn queued up seconds of
        ``end`` frames. Turns that finish together are written together instead: one
        transaction, one fsync, a fixed handful of round trips, however many turns are in it.
        """
        project_id = partition_key if partition_key is not None else PARTITION_KEY_DEFAULT
        token = self._leases.fencing_token(project_id, conversation_of(app_id))
        values = state.get_all()
        history = values.get("chat_history", [])
        title, turns = summarise(history)
        row = (project_id, app_id, sequence_id, position, encode_state(state), status)
        branch = TurnRows.of(
            project_id,
            app_id,
            sequence_id,
            position,
            status,
            values,
            history_digest(history),
            new_branch,
        )
        done = asyncio.get_running_loop().create_future()
        self._pending.append(_PendingSave(row, title, turns, branch, token, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await asyncio.shield(done)

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                async with self._write_lock:
                    lost = await self._write(batch)
            except BaseException as exc:
                for entry in batch:
                    if not entry.done.done():
                        entry.done.set_exception(
                            exc if isinstance(exc, Exception) else RuntimeError(exc)
                        )
                if not isinstance(exc, Exception):
                    raise
            else:
                for entry in batch:
                    if entry.done.done():
                        continue
                    if entry in lost:
                        entry.done.set_exception(TurnLeaseLost(f"{entry.row[0]}/{entry.row[1]}"))
                    else:
                        entry.done.set_result(None)

    async def _write(self, batch: list[_PendingSave]) -> list[_PendingSave]:
        """One transaction for the batch; answers the saves not written: their lease was lost.

        ``BEGIN IMMEDIATE`` takes SQLite's write lock first, so the lease check and the
        writes see, and are seen by, every other process in one consistent order.
        """
        conn = self.connection
        await conn.execute("BEGIN IMMEDIATE")
        try:
            held = await held_tokens(conn, [e.token for e in batch if e.token is not None])
            written = [e for e in batch if e.token is None or e.token in held]
            lost = [e for e in batch if e.token is not None and e.token not in held]
            if written:
                now = utcnow().isoformat()
                # One row per conversation (not per branch): its latest turn in the batch wins.
                summaries = {
                    (e.row[0], e.branch.conversation_id): (
                        e.row[0], e.branch.conversation_id, e.title, e.turns, now, now
                    )
                    for e in written
                }
                digests = {
                    (e.row[0], e.row[1]): (e.row[0], e.row[1], e.branch.digest, now)
                    for e in written
                }
                snapshots = {(e.row[0], e.row[1]) for e in written}
                await conn.executemany(
                    f"INSERT OR REPLACE INTO {STATE_TABLE} "
                    "(partition_key, app_id, sequence_id, position, state, status) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [e.row for e in written],
                )
                await sqlite_branches.write_turns(conn, [e.branch for e in written], now)
                await conn.executemany(
                    f"INSERT INTO {CONVERSATIONS_TABLE} "
                    "(project_id, app_id, title, turns, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (project_id, app_id) DO UPDATE SET "
                    "title = excluded.title, turns = excluded.turns, "
                    "updated_at = excluded.updated_at",
                    list(summaries.values()),
                )
                await conn.executemany(
                    f"INSERT OR REPLACE INTO {HISTORY_DIGESTS_TABLE} "
                    "(project_id, app_id, digest, updated_at) VALUES (?, ?, ?, ?)",
                    list(digests.values()),
                )
                await conn.executemany(
                    f"DELETE FROM {STATE_TABLE} WHERE partition_key = ? AND app_id = ? "
                    f"AND sequence_id NOT IN (SELECT sequence_id FROM {STATE_TABLE} "
                    "WHERE partition_key = ? AND app_id = ? "
                    "ORDER BY sequence_id DESC LIMIT ?)",
                    [(p, a, p, a, SNAPSHOTS_KEPT) for p, a in snapshots],
                )
            await conn.commit()
        except BaseException:
            await conn.rollback()
            raise
        return lost

    async def list_app_ids(self, partition_key: str, **kwargs: Any) -> list[str]:
        rows = await self.connection.execute_fetchall(
            f"SELECT app_id FROM {STATE_TABLE} WHERE partition_key = ? "
            "GROUP BY app_id ORDER BY max(created_at) DESC, app_id",
            (partition_key if partition_key is not None else PARTITION_KEY_DEFAULT,),
        )
        return [row[0] for row in rows]

    # --- conversations ------------------------------------------------------------------
    async def create(self, project_id: str, app_id: str) -> bool:
        now = utcnow().isoformat()
        async with (
            self._write_lock,
            self.connection.execute(
                f"INSERT INTO {CONVERSATIONS_TABLE} "
                "(project_id, app_id, title, turns, created_at, updated_at) "
                "VALUES (?, ?, '', 0, ?, ?) ON CONFLICT (project_id, app_id) DO NOTHING",
                (project_id, app_id, now, now),
            ) as cursor,
        ):
            return cursor.rowcount > 0

    async def exists(self, project_id: str, app_id: str) -> bool:
        rows = await self.connection.execute_fetchall(
            f"SELECT 1 FROM {CONVERSATIONS_TABLE} WHERE project_id = ? AND app_id = ?",
            (project_id, app_id),
        )
        return bool(rows)

    async def list(
        self, project_id: str, limit: int, offset: int
    ) -> tuple[list[ConversationSummary], int]:
        ((total,),) = await self.connection.execute_fetchall(
            f"SELECT COUNT(*) FROM {CONVERSATIONS_TABLE} WHERE project_id = ?", (project_id,)
        )
        rows = await self.connection.execute_fetchall(
            f"SELECT app_id, title, turns, created_at, updated_at FROM {CONVERSATIONS_TABLE} "
            "WHERE project_id = ? ORDER BY updated_at DESC, app_id LIMIT ? OFFSET ?",
            (project_id, limit, offset),
        )
        items = [
            ConversationSummary(
                app_id, title, turns, parse_timestamp(created), parse_timestamp(updated)
            )
            for app_id, title, turns, created, updated in rows
        ]
        return items, total

    async def delete(self, project_id: str, app_id: str) -> bool:
        """The conversation ``app_id`` and every one of its branches."""
        conn = self.connection
        async with self._write_lock:
            await conn.execute("BEGIN IMMEDIATE")
            try:
                async with conn.execute(
                    f"DELETE FROM {CONVERSATIONS_TABLE} WHERE project_id = ? AND app_id = ?",
                    (project_id, app_id),
                ) as cursor:
                    deleted = cursor.rowcount > 0
                await sqlite_branches.delete_conversation(conn, project_id, app_id)
                await conn.commit()
            except BaseException:
                await conn.rollback()
                raise
        return deleted

    async def acquire_turn(self, project_id: str, app_id: str) -> TurnLease:
        return await self._leases.acquire(project_id, app_id)

    async def find_by_history(self, project_id: str, digest: str) -> str | None:
        rows = await self.connection.execute_fetchall(
            f"SELECT app_id FROM {HISTORY_DIGESTS_TABLE} WHERE project_id = ? AND digest = ? "
            "ORDER BY updated_at DESC LIMIT 1",
            (project_id, digest),
        )
        return rows[0][0] if rows else None

    # --- branches (``sqlite_branches``) ---------------------------------------------------
    async def branches(self, project_id: str, conversation_id: str) -> list[BranchRecord]:
        return await sqlite_branches.branches(self.connection, project_id, conversation_id)

    async def shown_branch(self, project_id: str, conversation_id: str) -> str:
        return await sqlite_branches.shown_branch(self.connection, project_id, conversation_id)

    async def show_branch(self, project_id: str, conversation_id: str, app_id: str) -> bool:
        async with self._write_lock:  # never inside a group commit's open transaction
            return await sqlite_branches.show_branch(
                self.connection, project_id, conversation_id, app_id
            )

    async def boundary(self, project_id: str, app_id: str, items: int) -> Boundary | None:
        return await sqlite_branches.boundary(self.connection, project_id, app_id, items)

    async def find_boundary(
        self, project_id: str, conversation_id: str, digest: str
    ) -> Boundary | None:
        return await sqlite_branches.find_boundary(
            self.connection, project_id, conversation_id, digest
        )

    @property
    def relay(self) -> RelayTable:
        if self._relay is None:
            raise StoreUnavailable(f"the SQLite database at {self.path} is closed")
        return self._relay


async def _connect(path: Path, *, synchronous: str) -> aiosqlite.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL and a busy timeout."""
    conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        await conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        ((mode,),) = await conn.execute_fetchall("PRAGMA journal_mode=WAL")
        if str(mode).lower() != "wal":
            raise aiosqlite.OperationalError(
                f"the file cannot use WAL mode (journal mode stays {mode!r})"
            )
        await conn.execute(f"PRAGMA synchronous={synchronous}")
    except BaseException:
        await conn.close()
        raise
    return conn
