"""SQLite's relay rows (see ``relay``): signals and mirrored batches in the shared file.

They run on a connection of their own with ``synchronous=NORMAL``, as the leases do:
in WAL mode a commit is visible to every process at once without an fsync, and none of
these rows needs to survive a crash of the machine (nothing that reads them would).
Times are Unix times from this machine's clock, which every process on the file shares.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import aiosqlite

from chatbot.store.base import CONVERSATIONS_TABLE, LEASES_TABLE, parse_timestamp
from chatbot.store.relay import (
    EVENTS_TABLE,
    SIGNALS_TABLE,
    Activity,
    MirroredBatch,
    RelayTable,
    Signal,
    SignalKind,
    StopAnswer,
    WatchAnswer,
)

CREATE_RELAY_TABLES = (
    f"""CREATE TABLE IF NOT EXISTS {SIGNALS_TABLE} (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        project_id TEXT NOT NULL,
        app_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        created_at REAL NOT NULL,
        reply_id TEXT,
        running INTEGER,
        rank INTEGER,
        outcome TEXT
    )""",
    f"CREATE INDEX IF NOT EXISTS {SIGNALS_TABLE}_created ON {SIGNALS_TABLE} (created_at)",
    f"""CREATE TABLE IF NOT EXISTS {EVENTS_TABLE} (
        project_id TEXT NOT NULL,
        app_id TEXT NOT NULL,
        reply_id TEXT NOT NULL,
        first_index INTEGER NOT NULL,
        next_index INTEGER NOT NULL,
        done INTEGER NOT NULL,
        payload TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (project_id, app_id, reply_id, first_index)
    )""",
)
# Rows per INSERT statement: well under SQLite's limit on bound parameters.
_ROWS_PER_STATEMENT = 100
_BATCH_COLUMNS = "project_id, app_id, reply_id, first_index, next_index, done, payload"
# A batch that starts where an earlier one did holds all of it and more (the earlier one
# was empty): it replaces it.
_REPLACE_SAME_START = (
    "ON CONFLICT (project_id, app_id, reply_id, first_index) DO UPDATE SET "
    "next_index = excluded.next_index, done = excluded.done, payload = excluded.payload, "
    "created_at = excluded.created_at"
)


def _batch(row: tuple) -> MirroredBatch:
    project_id, app_id, reply_id, first_index, next_index, done, payload = row
    return MirroredBatch(project_id, app_id, reply_id, first_index, next_index, bool(done), payload)


class SQLiteRelayTable(RelayTable):
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    # --- signals ------------------------------------------------------------------------
    async def add_signal(self, project_id: str, app_id: str, kind: SignalKind) -> int:
        rows = await self._conn.execute_fetchall(
            f"INSERT INTO {SIGNALS_TABLE} (project_id, app_id, kind, created_at) "
            "VALUES (?, ?, ?, ?) RETURNING id",
            (project_id, app_id, kind, time.time()),
        )
        return rows[0][0]

    async def pending_signals(self, within_s: float) -> list[Signal]:
        rows = await self._conn.execute_fetchall(
            f"SELECT id, project_id, app_id, kind FROM {SIGNALS_TABLE} WHERE created_at > ? "
            "AND ((kind = 'watch' AND (running IS NULL OR running = 0)) "
            "OR (kind = 'stop' AND outcome IS NULL)) ORDER BY id",
            (time.time() - within_s,),
        )
        return [Signal(*row) for row in rows]

    async def answer_watch(self, signal_id: int, answer: WatchAnswer) -> None:
        await self._conn.execute_fetchall(
            f"UPDATE {SIGNALS_TABLE} SET reply_id = ?, running = ?, rank = ? "
            "WHERE id = ? AND (rank IS NULL OR rank < ?)",
            (answer.reply_id, int(answer.running), answer.rank, signal_id, answer.rank),
        )

    async def watch_answer(self, signal_id: int) -> WatchAnswer | None:
        rows = await self._conn.execute_fetchall(
            f"SELECT reply_id, running, rank FROM {SIGNALS_TABLE} "
            "WHERE id = ? AND reply_id IS NOT NULL",
            (signal_id,),
        )
        if not rows:
            return None
        reply_id, running, rank = rows[0]
        return WatchAnswer(reply_id, bool(running), rank)

    async def take_stop(self, signal_id: int, reply_id: str) -> None:
        await self._conn.execute_fetchall(
            f"UPDATE {SIGNALS_TABLE} SET reply_id = ? WHERE id = ? AND reply_id IS NULL",
            (reply_id, signal_id),
        )

    async def answer_stop(self, signal_id: int, outcome: str) -> None:
        await self._conn.execute_fetchall(
            f"UPDATE {SIGNALS_TABLE} SET outcome = ? WHERE id = ? AND outcome IS NULL",
            (outcome, signal_id),
        )

    async def stop_answer(self, signal_id: int) -> StopAnswer | None:
        rows = await self._conn.execute_fetchall(
            f"SELECT reply_id IS NOT NULL, outcome FROM {SIGNALS_TABLE} WHERE id = ?",
            (signal_id,),
        )
        if not rows:
            return None
        taken, outcome = rows[0]
        return StopAnswer(bool(taken), outcome)

    async def drop_signal(self, signal_id: int) -> None:
        await self._conn.execute_fetchall(f"DELETE FROM {SIGNALS_TABLE} WHERE id = ?", (signal_id,))

    # --- mirrored events ----------------------------------------------------------------
    async def write_batches(self, batches: Sequence[MirroredBatch]) -> None:
        now = time.time()
        for start in range(0, len(batches), _ROWS_PER_STATEMENT):
            chunk = batches[start : start + _ROWS_PER_STATEMENT]
            marks = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
            values: list[object] = []
            for b in chunk:
                values += (
                    b.project_id,
                    b.app_id,
                    b.reply_id,
                    b.first_index,
                    b.next_index,
                    int(b.done),
                    b.payload,
                    now,
                )
            await self._conn.execute_fetchall(
                f"INSERT INTO {EVENTS_TABLE} ({_BATCH_COLUMNS}, created_at) VALUES {marks} "
                f"{_REPLACE_SAME_START}",
                values,
            )

    async def read_batches(
        self, project_id: str, app_id: str, reply_id: str, start: int
    ) -> list[MirroredBatch]:
        rows = await self._conn.execute_fetchall(
            f"SELECT {_BATCH_COLUMNS} FROM {EVENTS_TABLE} "
            "WHERE project_id = ? AND app_id = ? AND reply_id = ? "
            "AND (next_index > ? OR first_index >= ? OR done = 1) ORDER BY first_index",
            (project_id, app_id, reply_id, start, start),
        )
        return [_batch(row) for row in rows]

    async def mirror_exists(self, project_id: str, app_id: str, reply_id: str) -> bool:
        rows = await self._conn.execute_fetchall(
            f"SELECT 1 FROM {EVENTS_TABLE} "
            "WHERE project_id = ? AND app_id = ? AND reply_id = ? LIMIT 1",
            (project_id, app_id, reply_id),
        )
        return bool(rows)

    async def drop_mirrors(self, replies: Sequence[tuple[str, str, str]]) -> None:
        if not replies:
            return
        await self._conn.executemany(
            f"DELETE FROM {EVENTS_TABLE} WHERE project_id = ? AND app_id = ? AND reply_id = ?",
            list(replies),
        )

    # --- housekeeping -------------------------------------------------------------------
    async def activity(self, project_id: str, app_id: str, stored_within_s: float) -> Activity:
        now = time.time()
        ((lease_expires, turns, stored_at),) = await self._conn.execute_fetchall(
            f"SELECT (SELECT expires_at FROM {LEASES_TABLE} WHERE project_id = ? AND app_id = ?), "
            f"c.turns, c.updated_at FROM (SELECT 1) LEFT JOIN {CONVERSATIONS_TABLE} AS c "
            "ON c.project_id = ? AND c.app_id = ?",
            (project_id, app_id, project_id, app_id),
        )
        recently = bool(turns) and now - parse_timestamp(stored_at).timestamp() < stored_within_s
        return Activity(lease_expires is not None and lease_expires > now, turns or 0, recently)

    async def sweep(self, signals_older_than_s: float, mirrors_idle_s: float) -> None:
        now = time.time()
        await self._conn.execute_fetchall(
            f"DELETE FROM {SIGNALS_TABLE} WHERE created_at < ?", (now - signals_older_than_s,)
        )
        await self._conn.execute_fetchall(
            f"DELETE FROM {EVENTS_TABLE} WHERE (project_id, app_id, reply_id) IN "
            f"(SELECT project_id, app_id, reply_id FROM {EVENTS_TABLE} "
            "GROUP BY project_id, app_id, reply_id HAVING max(created_at) < ?)",
            (now - mirrors_idle_s,),
        )
