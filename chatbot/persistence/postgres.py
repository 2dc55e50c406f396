"""PostgreSQL for several server processes: Burr's asyncpg persister plus summaries and leases.

Any number of ``chatbot serve`` processes, on any number of machines, share one database.
Nothing about a conversation is cached in a process: every turn loads the latest stored
state, and the turn lease that keeps two turns of one conversation from interleaving
lives in the database too.

Turn leases are rows, not advisory locks. A session-level advisory lock belongs to a
connection, so holding it for a whole streamed reply would pin one pooled connection per
open stream (hundreds of streams, hundreds of connections). A lease row is taken with one
``INSERT … ON CONFLICT DO UPDATE … WHERE expires_at < now()`` statement, so the pool only
serves short statements however many replies are streaming. Each lease carries a random
token and an expiry (database clock, so machines with skewed clocks agree) that one task
per process renews for all of its leases; a process that crashes stops renewing, and its
leases lapse after ``lease_ttl_s``. The token also fences the final write: a turn whose
lease was taken over (its process stalled past the expiry) cannot store its state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from urllib.parse import urlparse

import asyncpg
import orjson
from burr.core import State
from burr.integrations.persisters.b_asyncpg import AsyncPostgreSQLPersister

from chatbot.persistence.base import (
    CONVERSATIONS_TABLE,
    SNAPSHOTS_KEPT,
    STATE_TABLE,
    BurrPersisterBridge,
    ConversationBusy,
    ConversationStore,
    ConversationSummary,
    StoreUnavailable,
    TurnLease,
    summarise,
)
from chatbot.persistence.local_leases import LocalLeases

logger = logging.getLogger(__name__)

LEASES_TABLE = "chatbot_turn_leases"
DEFAULT_POOL_SIZE = 10
DEFAULT_LEASE_TTL_S = 30.0
CONNECT_TIMEOUT_S = 10.0
_SWEEP_EVERY_TICKS = 100  # renewal ticks between sweeps of long-expired leases
# Serialises schema creation when several processes start at once on an empty database
# (concurrent CREATE TABLE IF NOT EXISTS can fail on PostgreSQL's catalog).
_SCHEMA_LOCK_KEY = 0x63686174626F74  # "chatbot"


class TurnLeaseLost(Exception):
    """This process's lease on a conversation lapsed and another turn may have started."""


def display_url(database_url: str) -> str:
    """``postgresql://user@host:port/db`` without the password, for messages and logs."""
    parsed = urlparse(database_url)
    user = f"{parsed.username}@" if parsed.username else ""
    host = parsed.hostname or "localhost"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{user}{host}{port}{parsed.path}"


class _PostgresLease(TurnLease):
    __slots__ = ("_key", "_local", "_released", "_store", "token")

    def __init__(
        self, store: PostgresConversationStore, key: tuple[str, str], token: uuid.UUID, local
    ) -> None:
        self._store = store
        self._key = key
        self.token = token
        self._local = local
        self._released = False

    async def release(self) -> None:
        if self._released:
            return
        self._released = True
        try:
            await self._store._release(self._key, self.token)
        finally:
            await self._local.release()


class PostgresConversationStore(BurrPersisterBridge, AsyncPostgreSQLPersister, ConversationStore):
    """Burr's ``AsyncPostgreSQLPersister`` (same ``burr_state`` table, JSONB state, ``load``/
    ``save`` contract) with its own connection pool, conversation summaries and turn leases.
    """

    def __init__(
        self,
        database_url: str,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        lease_ttl_s: float = DEFAULT_LEASE_TTL_S,
    ) -> None:
        # Burr's constructor wants a live pool, and an asyncpg pool belongs to the event loop
        # it is created on, so the parent is initialised in ``initialize()`` with a pool this
        # instance owns (not Burr's class-level shared ``_pool``, which would outlive us).
        self.database_url = database_url
        self.pool_size = max(2, pool_size)  # schema creation briefly needs two connections
        self.lease_ttl_s = float(lease_ttl_s)
        self.table_name = STATE_TABLE
        self.connection = None
        self.pool: asyncpg.Pool | None = None
        self.serde_kwargs = {}
        self._initialized = False
        self._local = LocalLeases()
        self._held: dict[tuple[str, str], uuid.UUID] = {}
        self._lost: set[uuid.UUID] = set()
        self._holder = f"{socket.gethostname()}:{os.getpid()}"[:200]
        self._renewer: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"PostgresConversationStore({display_url(self.database_url)!r})"

    # --- lifecycle --------------------------------------------------------------------------
    async def initialize(self) -> None:
        where = display_url(self.database_url)
        try:
            pool = await asyncpg.create_pool(
                self.database_url,
                min_size=1,
                max_size=self.pool_size,
                timeout=CONNECT_TIMEOUT_S,
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreUnavailable(
                f"cannot reach the PostgreSQL database at {where}: {_reason(exc)}"
            ) from exc
        except ValueError as exc:  # a malformed URL
            raise StoreUnavailable(f"invalid PostgreSQL URL {where}: {exc}") from exc
        AsyncPostgreSQLPersister.__init__(self, connection=None, pool=pool, table_name=STATE_TABLE)
        try:
            await self._create_schema()
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            await pool.close()
            self.pool = None
            raise StoreUnavailable(
                f"cannot create the chatbot tables in {where}: {_reason(exc)}"
            ) from exc
        self._renewer = asyncio.get_running_loop().create_task(self._renew_leases())

    async def _create_schema(self) -> None:
        async with self.pool.acquire() as lock_conn:
            await lock_conn.execute("SELECT pg_advisory_lock($1)", _SCHEMA_LOCK_KEY)
            try:
                await AsyncPostgreSQLPersister.initialize(self)  # Burr's burr_state table
                async with lock_conn.transaction():
                    await lock_conn.execute(
                        f"""CREATE TABLE IF NOT EXISTS {CONVERSATIONS_TABLE} (
                            project_id TEXT NOT NULL,
                            app_id TEXT NOT NULL,
                            title TEXT NOT NULL DEFAULT '',
                            turns INTEGER NOT NULL DEFAULT 0,
                            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                            updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                            PRIMARY KEY (project_id, app_id)
                        )"""
                    )
                    await lock_conn.execute(
                        f"CREATE INDEX IF NOT EXISTS {CONVERSATIONS_TABLE}_recent "
                        f"ON {CONVERSATIONS_TABLE} (project_id, updated_at DESC, app_id)"
                    )
                    await lock_conn.execute(
                        f"""CREATE TABLE IF NOT EXISTS {LEASES_TABLE} (
                            project_id TEXT NOT NULL,
                            app_id TEXT NOT NULL,
                            token UUID NOT NULL,
                            holder TEXT NOT NULL,
                            acquired_at TIMESTAMPTZ NOT NULL,
                            expires_at TIMESTAMPTZ NOT NULL,
                            PRIMARY KEY (project_id, app_id)
                        )"""
                    )
            finally:
                await lock_conn.execute("SELECT pg_advisory_unlock($1)", _SCHEMA_LOCK_KEY)

    async def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

    async def cleanup(self) -> None:  # Burr's name for close()
        await self.close()

    # --- Burr persister contract (orjson instead of json, same rows) -----------------------
    async def load(
        self,
        partition_key: str | None,
        app_id: str | None,
        sequence_id: int | None = None,
        **kwargs,
    ):
        if app_id is None or sequence_id is not None:
            return await super().load(partition_key, app_id, sequence_id, **kwargs)
        partition_key = partition_key or self.PARTITION_KEY_DEFAULT
        row = await self.pool.fetchrow(
            f"SELECT position, state, sequence_id, created_at, status FROM {STATE_TABLE} "
            "WHERE partition_key = $1 AND app_id = $2 "
            "ORDER BY sequence_id DESC, created_at DESC LIMIT 1",
            partition_key,
            app_id,
        )
        if row is None:
            return None
        return {
            "partition_key": partition_key,
            "app_id": app_id,
            "sequence_id": row["sequence_id"],
            "position": row["position"],
            "state": State(orjson.loads(row["state"])),
            "created_at": row["created_at"],
            "status": row["status"],
        }

    # --- ConversationStore ------------------------------------------------------------------
    async def save_state(
        self,
        project_id: str,
        app_id: str,
        sequence_id: int,
        position: str,
        state: State,
        status: str,
    ) -> None:
        title, turns = summarise(state.get("chat_history", []))
        payload = orjson.dumps(state.get_all()).decode()
        token = self._held.get((project_id, app_id))
        if token is not None and token in self._lost:
            raise TurnLeaseLost(f"{project_id}/{app_id}")
        async with self.pool.acquire() as conn, conn.transaction():
            if token is not None:
                # Fencing: write only while our lease row is still ours. FOR UPDATE makes a
                # process trying to take over an expired lease wait until this commits.
                mine = await conn.fetchval(
                    f"SELECT 1 FROM {LEASES_TABLE} "
                    "WHERE project_id = $1 AND app_id = $2 AND token = $3 FOR UPDATE",
                    project_id,
                    app_id,
                    token,
                )
                if mine is None:
                    raise TurnLeaseLost(f"{project_id}/{app_id}")
            # Same row as Burr's save; a retried save of one step replaces, like SQLite's.
            await conn.execute(
                f"INSERT INTO {STATE_TABLE} "
                "(partition_key, app_id, sequence_id, position, state, status) "
                "VALUES ($1, $2, $3, $4, $5, $6) "
                "ON CONFLICT (partition_key, app_id, sequence_id, position) DO UPDATE SET "
                "state = excluded.state, status = excluded.status, "
                "created_at = excluded.created_at",
                project_id,
                app_id,
                sequence_id,
                position,
                payload,
                status,
            )
            await conn.execute(
                f"INSERT INTO {CONVERSATIONS_TABLE} AS c (project_id, app_id, title, turns) "
                "VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (project_id, app_id) DO UPDATE SET "
                "title = excluded.title, turns = excluded.turns, updated_at = now()",
                project_id,
                app_id,
                title,
                turns,
            )
            # Keep the newest SNAPSHOTS_KEPT states of this conversation.
            await conn.execute(
                f"DELETE FROM {STATE_TABLE} WHERE partition_key = $1 AND app_id = $2 "
                f"AND sequence_id < (SELECT min(sequence_id) FROM (SELECT sequence_id "
                f"FROM {STATE_TABLE} WHERE partition_key = $1 AND app_id = $2 "
                "ORDER BY sequence_id DESC LIMIT $3) AS newest)",
                project_id,
                app_id,
                SNAPSHOTS_KEPT,
            )

    async def create(self, project_id: str, app_id: str) -> bool:
        status = await self.pool.execute(
            f"INSERT INTO {CONVERSATIONS_TABLE} (project_id, app_id) VALUES ($1, $2) "
            "ON CONFLICT (project_id, app_id) DO NOTHING",
            project_id,
            app_id,
        )
        return status == "INSERT 0 1"

    async def exists(self, project_id: str, app_id: str) -> bool:
        found = await self.pool.fetchval(
            f"SELECT 1 FROM {CONVERSATIONS_TABLE} WHERE project_id = $1 AND app_id = $2",
            project_id,
            app_id,
        )
        return found is not None

    async def list(
        self, project_id: str, limit: int, offset: int
    ) -> tuple[list[ConversationSummary], int]:
        async with self.pool.acquire() as conn:
            total = await conn.fetchval(
                f"SELECT count(*) FROM {CONVERSATIONS_TABLE} WHERE project_id = $1", project_id
            )
            rows = await conn.fetch(
                f"SELECT app_id, title, turns, created_at, updated_at FROM {CONVERSATIONS_TABLE} "
                "WHERE project_id = $1 ORDER BY updated_at DESC, app_id LIMIT $2 OFFSET $3",
                project_id,
                limit,
                offset,
            )
        items = [
            ConversationSummary(
                row["app_id"], row["title"], row["turns"], row["created_at"], row["updated_at"]
            )
            for row in rows
        ]
        return items, total

    async def delete(self, project_id: str, app_id: str) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            status = await conn.execute(
                f"DELETE FROM {CONVERSATIONS_TABLE} WHERE project_id = $1 AND app_id = $2",
                project_id,
                app_id,
            )
            await conn.execute(
                f"DELETE FROM {STATE_TABLE} WHERE partition_key = $1 AND app_id = $2",
                project_id,
                app_id,
            )
        return status != "DELETE 0"

    # --- turn leases ------------------------------------------------------------------------
    async def acquire_turn(self, project_id: str, app_id: str) -> TurnLease:
        key = (project_id, app_id)
        local = self._local.acquire(project_id, app_id)  # a turn here already: busy at once
        token = uuid.uuid4()
        try:
            granted = await self.pool.fetchval(
                f"INSERT INTO {LEASES_TABLE} AS l "
                "(project_id, app_id, token, holder, acquired_at, expires_at) "
                "VALUES ($1, $2, $3, $4, now(), now() + make_interval(secs => $5)) "
                "ON CONFLICT (project_id, app_id) DO UPDATE SET "
                "token = excluded.token, holder = excluded.holder, "
                "acquired_at = excluded.acquired_at, expires_at = excluded.expires_at "
                "WHERE l.expires_at < now() "
                "RETURNING token",
                project_id,
                app_id,
                token,
                self._holder,
                self.lease_ttl_s,
            )
        except BaseException:
            await local.release()
            raise
        if granted is None:
            await local.release()
            raise ConversationBusy(f"{project_id}/{app_id}")
        self._held[key] = token
        return _PostgresLease(self, key, token, local)

    async def _release(self, key: tuple[str, str], token: uuid.UUID) -> None:
        if self._held.get(key) == token:
            del self._held[key]
        self._lost.discard(token)
        try:
            await self.pool.execute(
                f"DELETE FROM {LEASES_TABLE} WHERE project_id = $1 AND app_id = $2 AND token = $3",
                key[0],
                key[1],
                token,
            )
        except Exception:  # it will lapse at its expiry; the turn itself is already stored
            logger.warning("could not release the turn lease of %s/%s", *key, exc_info=True)

    async def _renew_leases(self) -> None:
        """Push back the expiry of every lease this process holds, in one statement.

        Now and then also drop leases long expired (left by crashed processes on
        conversations nobody came back to); an expired lease is free, so that is safe.
        """
        interval = self.lease_ttl_s / 3
        ticks = 0
        while True:
            await asyncio.sleep(interval)
            ticks += 1
            if ticks % _SWEEP_EVERY_TICKS == 0:
                with contextlib.suppress(Exception):
                    await self.pool.execute(
                        f"DELETE FROM {LEASES_TABLE} WHERE expires_at < now() - interval '1 hour'"
                    )
            tokens = [t for t in self._held.values() if t not in self._lost]
            if not tokens:
                continue
            try:
                renewed = await self.pool.fetch(
                    f"UPDATE {LEASES_TABLE} SET expires_at = now() + make_interval(secs => $2) "
                    "WHERE token = ANY($1::uuid[]) RETURNING token",
                    tokens,
                    self.lease_ttl_s,
                )
            except Exception:
                logger.warning("could not renew turn leases; retrying", exc_info=True)
                continue
            missing = set(tokens) - {row["token"] for row in renewed}
            for token in missing:
                if token in self._held.values():  # not released meanwhile: really lost
                    self._lost.add(token)
                    logger.error("a turn lease lapsed and was taken over; its turn won't be saved")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())
