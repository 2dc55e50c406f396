"""SQLite's turn lease rows, and the processes that hold them (see ``leases``).

Every ``chatbot serve`` process (or ``--workers`` worker) on one SQLite file takes its
turn leases in the file itself, so they are shared exactly as on PostgreSQL: a row per
conversation with a turn in progress, a token, and an expiry that the holder renews.
Expiries are Unix times from this machine's clock, which every process on the file
shares (a SQLite file in WAL mode is for processes of one machine).

Each process also keeps a row of its own alive in ``chatbot_lease_holders``, renewed on
the same tick: that is how a starting server knows whether another one uses the file.

Lease statements run on a connection of their own with ``synchronous=NORMAL``: in WAL
mode that commits without an fsync, yet what is committed is visible to the other
processes at once and survives the death of this one. Only a crash of the machine can
lose a lease, and then every process holding one is gone too.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Sequence

import aiosqlite

from chatbot.store.base import LEASES_TABLE
from chatbot.store.leases import LeaseKey

HOLDERS_TABLE = "chatbot_lease_holders"
_SWEPT_AFTER_S = 3600.0  # rows expired this long ago are dropped by the sweep

CREATE_LEASE_TABLES = (
    f"""CREATE TABLE IF NOT EXISTS {LEASES_TABLE} (
        project_id TEXT NOT NULL,
        app_id TEXT NOT NULL,
        token TEXT NOT NULL,
        holder TEXT NOT NULL,
        acquired_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        PRIMARY KEY (project_id, app_id)
    )""",
    f"""CREATE TABLE IF NOT EXISTS {HOLDERS_TABLE} (
        id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at REAL NOT NULL,
        expires_at REAL NOT NULL
    )""",
)


async def held_tokens(conn: aiosqlite.Connection, tokens: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these leases are still in place; run inside the final write's transaction.

    That transaction holds SQLite's write lock (``BEGIN IMMEDIATE``), so no process can
    take a lease over between this check and the commit.
    """
    if not tokens:
        return set()
    marks = ",".join("?" * len(tokens))
    rows = await conn.execute_fetchall(
        f"SELECT token FROM {LEASES_TABLE} WHERE token IN ({marks})", [str(t) for t in tokens]
    )
    return {uuid.UUID(row[0]) for row in rows}


class SQLiteLeaseTable:
    """Lease rows on the lease connection; each method is one autocommit statement or two."""

    def __init__(self, conn: aiosqlite.Connection, holder: str, ttl_s: float) -> None:
        self._conn = conn
        self._holder = holder
        self._ttl_s = ttl_s
        # This store's row among the holders (a process may open the file more than once).
        self._id = uuid.uuid4().hex

    async def insert(self, key: LeaseKey, token: uuid.UUID, ttl_s: float) -> bool:
        now = time.time()
        async with self._conn.execute(
            f"INSERT INTO {LEASES_TABLE} "
            "(project_id, app_id, token, holder, acquired_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (project_id, app_id) DO UPDATE SET "
            "token = excluded.token, holder = excluded.holder, "
            "acquired_at = excluded.acquired_at, expires_at = excluded.expires_at "
            f"WHERE {LEASES_TABLE}.expires_at < excluded.acquired_at",
            (key[0], key[1], str(token), self._holder, now, now + ttl_s),
        ) as cursor:
            return cursor.rowcount > 0

    async def delete(self, key: LeaseKey, token: uuid.UUID) -> None:
        await self._conn.execute_fetchall(
            f"DELETE FROM {LEASES_TABLE} WHERE project_id = ? AND app_id = ? AND token = ?",
            (key[0], key[1], str(token)),
        )

    async def renew(self, tokens: Sequence[uuid.UUID], ttl_s: float) -> set[uuid.UUID]:
        await self.register()
        if not tokens:
            return set()
        marks = ",".join("?" * len(tokens))
        rows = await self._conn.execute_fetchall(
            f"UPDATE {LEASES_TABLE} SET expires_at = ? WHERE token IN ({marks}) RETURNING token",
            [time.time() + ttl_s, *(str(t) for t in tokens)],
        )
        return {uuid.UUID(row[0]) for row in rows}

    async def sweep(self) -> None:
        before = time.time() - _SWEPT_AFTER_S
        for table in (LEASES_TABLE, HOLDERS_TABLE):
            await self._conn.execute_fetchall(
                f"DELETE FROM {table} WHERE expires_at < ?", (before,)
            )

    # --- this process as a holder -------------------------------------------------------
    async def register(self) -> None:
        """Say (again) that this process uses the file, for one more TTL."""
        now = time.time()
        await self._conn.execute_fetchall(
            f"INSERT INTO {HOLDERS_TABLE} (id, host, pid, started_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at",
            (self._id, socket.gethostname(), os.getpid(), now, now + self._ttl_s),
        )

    async def unregister(self) -> None:
        await self._conn.execute_fetchall(f"DELETE FROM {HOLDERS_TABLE} WHERE id = ?", (self._id,))

    async def other_processes(self) -> list[int]:
        """The pids of the others using the file (live, or not yet expired elsewhere)."""
        rows = await self._conn.execute_fetchall(
            f"SELECT host, pid FROM {HOLDERS_TABLE} WHERE expires_at > ? AND id != ? "
            "ORDER BY started_at",
            (time.time(), self._id),
        )
        return [pid for host, pid in rows if host != socket.gethostname() or _alive(pid)]


def _alive(pid: int) -> bool:
    """Whether a process of this host still runs (one killed leaves an unexpired row)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True
