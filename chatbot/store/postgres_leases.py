"""PostgreSQL's turn lease rows (see ``leases`` for how leases work).

Rows, not advisory locks: a session-level advisory lock belongs to a connection, so
holding it for a whole streamed reply would pin one pooled connection per open stream
(hundreds of streams, hundreds of connections). A lease row is taken with one
``INSERT … ON CONFLICT DO UPDATE … WHERE expires_at < now()``, so the pool only serves
short statements however many replies are streaming. Expiries are on the database's
clock, so machines with skewed clocks agree.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg

from chatbot.store.base import LEASES_TABLE
from chatbot.store.leases import LeaseKey

CREATE_LEASES_TABLE = f"""CREATE TABLE IF NOT EXISTS {LEASES_TABLE} (
    project_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    token UUID NOT NULL,
    holder TEXT NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (project_id, app_id)
)"""


async def still_holds(conn: asyncpg.Connection, key: LeaseKey, token: uuid.UUID) -> bool:
    """Inside the final write's transaction: is the lease still ours?

    ``FOR UPDATE`` makes a process trying to take over an expired lease wait until that
    transaction commits, so the check stays true until the write is done.
    """
    mine = await conn.fetchval(
        f"SELECT 1 FROM {LEASES_TABLE} "
        "WHERE project_id = $1 AND app_id = $2 AND token = $3 FOR UPDATE",
        key[0],
        key[1],
        token,
    )
    return mine is not None


class PostgresLeaseTable:
    def __init__(self, pool: asyncpg.Pool, holder: str) -> None:
        self._pool = pool
        self._holder = holder

    async def insert(self, key: LeaseKey, token: uuid.UUID, ttl_s: float) -> bool:
        granted = await self._pool.fetchval(
            f"INSERT INTO {LEASES_TABLE} AS l "
            "(project_id, app_id, token, holder, acquired_at, expires_at) "
            "VALUES ($1, $2, $3, $4, now(), now() + make_interval(secs => $5)) "
            "ON CONFLICT (project_id, app_id) DO UPDATE SET "
            "token = excluded.token, holder = excluded.holder, "
            "acquired_at = excluded.acquired_at, expires_at = excluded.expires_at "
            "WHERE l.expires_at < now() "
            "RETURNING token",
            key[0],
            key[1],
            token,
            self._holder,
            ttl_s,
        )
        return granted is not None

    async def delete(self, key: LeaseKey, token: uuid.UUID) -> None:
        await self._pool.execute(
            f"DELETE FROM {LEASES_TABLE} WHERE project_id = $1 AND app_id = $2 AND token = $3",
            key[0],
            key[1],
            token,
        )

    async def renew(self, tokens: Sequence[uuid.UUID], ttl_s: float) -> set[uuid.UUID]:
        if not tokens:
            return set()
        rows = await self._pool.fetch(
            f"UPDATE {LEASES_TABLE} SET expires_at = now() + make_interval(secs => $2) "
            "WHERE token = ANY($1::uuid[]) RETURNING token",
            list(tokens),
            ttl_s,
        )
        return {row["token"] for row in rows}

    async def sweep(self) -> None:
        await self._pool.execute(
            f"DELETE FROM {LEASES_TABLE} WHERE expires_at < now() - interval '1 hour'"
        )
