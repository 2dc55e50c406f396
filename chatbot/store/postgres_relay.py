"""PostgreSQL's relay rows (see ``relay``), and the notifications that wake the relay.

Every statement that writes a signal also sends ``NOTIFY chatbot_relay_signals`` in the
same transaction, and every one that writes an answer or a batch ``NOTIFY
chatbot_relay_replies``. Each process listens on one connection of its own (not a pooled
one, which would be pinned for good), and a notification wakes the part of its relay that
waits for that kind of row at once instead of at its next poll. Polling stays the rule:
a notification lost with a dropped connection costs one poll interval, never an event.
Times are the database's, so machines with skewed clocks agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

import asyncpg

from chatbot.store.base import CONVERSATIONS_TABLE, LEASES_TABLE
from chatbot.store.relay import (
    EVENTS_TABLE,
    SIGNALS_TABLE,
    Activity,
    Change,
    MirroredBatch,
    RelayTable,
    Signal,
    SignalKind,
    StopAnswer,
    WatchAnswer,
)

logger = logging.getLogger(__name__)

CHANNELS: dict[Change, str] = {
    "signals": "chatbot_relay_signals",
    "replies": "chatbot_relay_replies",
}
# How often a process whose listening connection was lost tries to open it again.
LISTEN_RETRY_S = 5.0
_NOTIFY_SIGNALS = f"pg_notify('{CHANNELS['signals']}', '')"
_NOTIFY_REPLIES = f"pg_notify('{CHANNELS['replies']}', '')"

CREATE_RELAY_TABLES = (
    f"""CREATE TABLE IF NOT EXISTS {SIGNALS_TABLE} (
        id BIGSERIAL PRIMARY KEY,
        project_id TEXT NOT NULL,
        app_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        reply_id TEXT,
        running BOOLEAN,
        rank BIGINT,
        outcome TEXT
    )""",
    f"CREATE INDEX IF NOT EXISTS {SIGNALS_TABLE}_created ON {SIGNALS_TABLE} (created_at)",
    f"""CREATE TABLE IF NOT EXISTS {EVENTS_TABLE} (
        project_id TEXT NOT NULL,
        app_id TEXT NOT NULL,
        reply_id TEXT NOT NULL,
        first_index INTEGER NOT NULL,
        next_index INTEGER NOT NULL,
        done BOOLEAN NOT NULL,
        payload TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (project_id, app_id, reply_id, first_index)
    )""",
)
_BATCH_COLUMNS = "project_id, app_id, reply_id, first_index, next_index, done, payload"
# (A batch that starts where an earlier, empty one did replaces it.)


def _batch(row: asyncpg.Record) -> MirroredBatch:
    return MirroredBatch(*row)


class PostgresRelayTable(RelayTable):
    def __init__(self, pool: asyncpg.Pool, database_url: str) -> None:
        self._pool = pool
        self._database_url = database_url
        self._listener: asyncpg.Connection | None = None
        self._changed: dict[Change, asyncio.Event] = {kind: asyncio.Event() for kind in CHANNELS}
        # One reconnection at a time, at most one every LISTEN_RETRY_S.
        self._reconnecting: asyncio.Task[None] | None = None
        self._last_attempt = 0.0
        self._warned = False

    # --- notifications ------------------------------------------------------------------
    async def listen(self) -> None:
        """Open the listening connection; without it the relay still works, by polling."""
        self._last_attempt = time.monotonic()
        try:
            conn = await asyncpg.connect(self._database_url, timeout=10)
            for kind, channel in CHANNELS.items():
                await conn.add_listener(channel, self._notified(kind))
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            if not self._warned:  # once per outage
                logger.warning("relay notifications are off, polling until back: %s", exc)
            self._warned = True
            return
        if self._warned:
            logger.info("relay notifications are back")
        self._warned = False
        self._listener = conn

    def _notified(self, kind: Change) -> Callable[..., None]:
        changed = self._changed[kind]
        return lambda *_: changed.set()

    async def wait_for_change(self, kind: Change, within_s: float) -> None:
        self._keep_listening()
        changed = self._changed[kind]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), within_s)
        changed.clear()

    def _keep_listening(self) -> None:
        """Reconnect a listening connection that was lost, in the background."""
        if self._listener is not None and not self._listener.is_closed():
            return
        if self._reconnecting is not None and not self._reconnecting.done():
            return
        if time.monotonic() - self._last_attempt < LISTEN_RETRY_S:
            return
        self._listener = None
        self._reconnecting = asyncio.get_running_loop().create_task(self.listen())

    async def close(self) -> None:
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reconnecting
        if self._listener is not None:
            listener, self._listener = self._listener, None
            with contextlib.suppress(Exception):
                await listener.close(timeout=5)

    # --- signals ------------------------------------------------------------------------
    async def add_signal(self, project_id: str, app_id: str, kind: SignalKind) -> int:
        return await self._pool.fetchval(
            f"WITH added AS (INSERT INTO {SIGNALS_TABLE} (project_id, app_id, kind) "
            "VALUES ($1, $2, $3) RETURNING id) "
            f"SELECT id, {_NOTIFY_SIGNALS} FROM added",
            project_id,
            app_id,
            kind,
        )

    async def pending_signals(self, within_s: float) -> list[Signal]:
        rows = await self._pool.fetch(
            f"SELECT id, project_id, app_id, kind FROM {SIGNALS_TABLE} "
            "WHERE created_at > now() - make_interval(secs => $1) "
            "AND ((kind = 'watch' AND running IS NOT TRUE) "
            "OR (kind = 'stop' AND outcome IS NULL)) ORDER BY id",
            within_s,
        )
        return [Signal(*row) for row in rows]

    async def answer_watch(self, signal_id: int, answer: WatchAnswer) -> None:
        await self._pool.execute(
            f"WITH answered AS (UPDATE {SIGNALS_TABLE} SET reply_id = $2, running = $3, "
            "rank = $4 WHERE id = $1 AND (rank IS NULL OR rank < $4) RETURNING id) "
            f"SELECT {_NOTIFY_REPLIES} FROM answered",
            signal_id,
            answer.reply_id,
            answer.running,
            answer.rank,
        )

    async def watch_answer(self, signal_id: int) -> WatchAnswer | None:
        row = await self._pool.fetchrow(
            f"SELECT reply_id, running, rank FROM {SIGNALS_TABLE} "
            "WHERE id = $1 AND reply_id IS NOT NULL",
            signal_id,
        )
        return WatchAnswer(*row) if row is not None else None

    async def take_stop(self, signal_id: int, reply_id: str) -> None:
        # No notification: the asker has nothing to do until the answer.
        await self._pool.execute(
            f"UPDATE {SIGNALS_TABLE} SET reply_id = $2 WHERE id = $1 AND reply_id IS NULL",
            signal_id,
            reply_id,
        )

    async def answer_stop(self, signal_id: int, outcome: str) -> None:
        await self._pool.execute(
            f"WITH answered AS (UPDATE {SIGNALS_TABLE} SET outcome = $2 "
            "WHERE id = $1 AND outcome IS NULL RETURNING id) "
            f"SELECT {_NOTIFY_REPLIES} FROM answered",
            signal_id,
            outcome,
        )

    async def stop_answer(self, signal_id: int) -> StopAnswer | None:
        row = await self._pool.fetchrow(
            f"SELECT reply_id IS NOT NULL, outcome FROM {SIGNALS_TABLE} WHERE id = $1",
            signal_id,
        )
        return StopAnswer(*row) if row is not None else None

    async def drop_signal(self, signal_id: int) -> None:
        await self._pool.execute(f"DELETE FROM {SIGNALS_TABLE} WHERE id = $1", signal_id)

    # --- mirrored events ----------------------------------------------------------------
    async def write_batches(self, batches: Sequence[MirroredBatch]) -> None:
        if not batches:
            return
        await self._pool.execute(
            f"WITH written AS (INSERT INTO {EVENTS_TABLE} ({_BATCH_COLUMNS}) "
            "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[], "
            "$6::bool[], $7::text[]) "
            "ON CONFLICT (project_id, app_id, reply_id, first_index) DO UPDATE SET "
            "next_index = excluded.next_index, done = excluded.done, "
            "payload = excluded.payload, created_at = excluded.created_at RETURNING 1) "
            f"SELECT {_NOTIFY_REPLIES} WHERE EXISTS (SELECT 1 FROM written)",
            [b.project_id for b in batches],
            [b.app_id for b in batches],
            [b.reply_id for b in batches],
            [b.first_index for b in batches],
            [b.next_index for b in batches],
            [b.done for b in batches],
            [b.payload for b in batches],
        )

    async def read_batches(
        self, project_id: str, app_id: str, reply_id: str, start: int
    ) -> list[MirroredBatch]:
        rows = await self._pool.fetch(
            f"SELECT {_BATCH_COLUMNS} FROM {EVENTS_TABLE} "
            "WHERE project_id = $1 AND app_id = $2 AND reply_id = $3 "
            "AND (next_index > $4 OR first_index >= $4 OR done) ORDER BY first_index",
            project_id,
            app_id,
            reply_id,
            start,
        )
        return [_batch(row) for row in rows]

    async def mirror_exists(self, project_id: str, app_id: str, reply_id: str) -> bool:
        found = await self._pool.fetchval(
            f"SELECT 1 FROM {EVENTS_TABLE} "
            "WHERE project_id = $1 AND app_id = $2 AND reply_id = $3 LIMIT 1",
            project_id,
            app_id,
            reply_id,
        )
        return found is not None

    async def drop_mirrors(self, replies: Sequence[tuple[str, str, str]]) -> None:
        if not replies:
            return
        await self._pool.execute(
            f"DELETE FROM {EVENTS_TABLE} WHERE (project_id, app_id, reply_id) IN "
            "(SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))",
            [r[0] for r in replies],
            [r[1] for r in replies],
            [r[2] for r in replies],
        )

    # --- housekeeping -------------------------------------------------------------------
    async def activity(self, project_id: str, app_id: str, stored_within_s: float) -> Activity:
        row = await self._pool.fetchrow(
            f"SELECT EXISTS (SELECT 1 FROM {LEASES_TABLE} WHERE project_id = $1 "
            "AND app_id = $2 AND expires_at > now()) AS running, "
            "coalesce(c.turns, 0) AS turns, "
            "coalesce(c.turns > 0 AND c.updated_at > now() - make_interval(secs => $3), false) "
            f"AS recent FROM (SELECT 1) AS one LEFT JOIN {CONVERSATIONS_TABLE} AS c "
            "ON c.project_id = $1 AND c.app_id = $2",
            project_id,
            app_id,
            stored_within_s,
        )
        return Activity(row["running"], row["turns"], row["recent"])

    async def sweep(self, signals_older_than_s: float, mirrors_idle_s: float) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                f"DELETE FROM {SIGNALS_TABLE} WHERE created_at < now() - make_interval(secs => $1)",
                signals_older_than_s,
            )
            await conn.execute(
                f"DELETE FROM {EVENTS_TABLE} WHERE (project_id, app_id, reply_id) IN "
                f"(SELECT project_id, app_id, reply_id FROM {EVENTS_TABLE} "
                "GROUP BY project_id, app_id, reply_id "
                "HAVING max(created_at) < now() - make_interval(secs => $1))",
                mirrors_idle_s,
            )
