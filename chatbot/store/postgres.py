"""PostgreSQL, for several server processes on any number of machines.

Nothing about a conversation is cached in a process: every turn loads the latest stored
state, and the turn lease that keeps two turns of one conversation from interleaving
lives in the database too (``postgres_leases``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal
from urllib.parse import urlparse

import asyncpg
from burr.core import State
from burr.core.persistence import PersistedStateData

from chatbot.domain.branch_ids import conversation_of
from chatbot.domain.client_view import history_digest
from chatbot.store import postgres_branches
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
    summarise,
)
from chatbot.store.branch_rows import START_SEQUENCE_ID, TurnRows
from chatbot.store.leases import DatabaseLeases, process_holder
from chatbot.store.postgres_leases import (
    CREATE_LEASES_TABLE,
    PostgresLeaseTable,
    still_holds,
)
from chatbot.store.postgres_relay import CREATE_RELAY_TABLES, PostgresRelayTable
from chatbot.store.relay import RelayTable

logger = logging.getLogger(__name__)

DEFAULT_POOL_SIZE = 10
CONNECT_TIMEOUT_S = 10.0
# Serialises schema creation when several processes start at once on an empty database
# (concurrent CREATE TABLE IF NOT EXISTS can fail on PostgreSQL's catalog).
_SCHEMA_LOCK_KEY = 0x63686174626F74  # "chatbot"
_DATABASE_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)

# Burr's ``AsyncPostgreSQLPersister`` table, column for column, so Burr reads our rows.
_CREATE_STATE_TABLE = f"""CREATE TABLE IF NOT EXISTS {STATE_TABLE} (
    partition_key TEXT DEFAULT '{PARTITION_KEY_DEFAULT}',
    app_id TEXT NOT NULL,
    sequence_id INTEGER NOT NULL,
    position TEXT NOT NULL,
    status TEXT NOT NULL,
    state JSONB NOT NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (partition_key, app_id, sequence_id, position)
)"""
_CREATE_STATE_INDEX = (
    f"CREATE INDEX IF NOT EXISTS {STATE_TABLE}_created_at_index ON {STATE_TABLE} (created_at)"
)
_CREATE_CONVERSATIONS_TABLE = f"""CREATE TABLE IF NOT EXISTS {CONVERSATIONS_TABLE} (
    project_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    turns INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, app_id)
)"""
_CREATE_CONVERSATIONS_INDEX = (
    f"CREATE INDEX IF NOT EXISTS {CONVERSATIONS_TABLE}_recent "
    f"ON {CONVERSATIONS_TABLE} (project_id, updated_at DESC, app_id)"
)
_CREATE_DIGESTS_TABLE = f"""CREATE TABLE IF NOT EXISTS {HISTORY_DIGESTS_TABLE} (
    project_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, app_id)
)"""
_CREATE_DIGESTS_INDEX = (
    f"CREATE INDEX IF NOT EXISTS {HISTORY_DIGESTS_TABLE}_digest "
    f"ON {HISTORY_DIGESTS_TABLE} (project_id, digest, updated_at DESC)"
)
_STATE_COLUMNS = "position, state, sequence_id, app_id, created_at, status"


def display_url(database_url: str) -> str:
    """``postgresql://user@host:port/db`` without the password, for messages and logs."""
    parsed = urlparse(database_url)
    user = f"{parsed.username}@" if parsed.username else ""
    host = parsed.hostname or "localhost"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{user}{host}{port}{parsed.path}"


class PostgresConversationStore(ConversationStore):
    """States in Burr's ``burr_state`` layout (JSONB), summaries and turn leases, one pool."""

    def __init__(
        self,
        database_url: str,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        lease_ttl_s: float = DEFAULT_LEASE_TTL_S,
    ) -> None:
        self.database_url = database_url
        self.pool_size = pool_size
        self.lease_ttl_s = float(lease_ttl_s)
        # An asyncpg pool belongs to the event loop it is created on: made in initialize().
        self.pool: asyncpg.Pool | None = None
        self._leases: DatabaseLeases | None = None
        self._relay: PostgresRelayTable | None = None

    def __repr__(self) -> str:
        return f"PostgresConversationStore({display_url(self.database_url)!r})"

    @property
    def where(self) -> str:
        return display_url(self.database_url)

    # --- lifecycle --------------------------------------------------------------------------
    async def initialize(self) -> None:
        try:
            pool = await asyncpg.create_pool(
                self.database_url,
                min_size=1,
                max_size=self.pool_size,
                timeout=CONNECT_TIMEOUT_S,
            )
        except _DATABASE_ERRORS as exc:
            raise StoreUnavailable(
                f"cannot reach the PostgreSQL database at {self.where}: {_reason(exc)}"
            ) from exc
        except ValueError as exc:  # a malformed URL
            raise StoreUnavailable(f"invalid PostgreSQL URL {self.where}: {exc}") from exc
        try:
            await _create_schema(pool)
        except _DATABASE_ERRORS as exc:
            await pool.close()
            raise StoreUnavailable(
                f"cannot create the chatbot tables in {self.where}: {_reason(exc)}"
            ) from exc
        self.pool = pool
        self._leases = DatabaseLeases(
            PostgresLeaseTable(pool, process_holder()), ttl_s=self.lease_ttl_s
        )
        self._leases.start()
        self._relay = PostgresRelayTable(pool, self.database_url)
        await self._relay.listen()

    async def is_initialized(self) -> bool:
        if self.pool is None:
            return False
        return bool(await self.pool.fetchval("SELECT to_regclass($1) IS NOT NULL", STATE_TABLE))

    async def close(self) -> None:
        if self._leases is not None:
            await self._leases.stop()
            self._leases = None
        if self._relay is not None:
            await self._relay.close()
            self._relay = None
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

    async def ping(self) -> None:
        if self.pool is None:
            raise StoreUnavailable(f"the store for {self.where} is closed")
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await self.pool.fetchval("SELECT 1")
        except Exception as exc:  # whatever broke the round trip, the answer is "not ready"
            raise StoreUnavailable(
                f"the PostgreSQL database at {self.where} does not answer: {_reason(exc)}"
            ) from exc

    # --- Burr's persister contract ----------------------------------------------------------
    async def load(
        self,
        partition_key: str | None,
        app_id: str | None,
        sequence_id: int | None = None,
        **kwargs: Any,
    ) -> PersistedStateData | None:
        partition_key = partition_key if partition_key is not None else PARTITION_KEY_DEFAULT
        if app_id is not None and sequence_id == START_SEQUENCE_ID:
            return await postgres_branches.load_boundary(
                self.pool, partition_key, app_id, sequence_id
            )
        if app_id is None:
            row = await self.pool.fetchrow(
                f"SELECT {_STATE_COLUMNS} FROM {STATE_TABLE} WHERE partition_key = $1 "
                "ORDER BY created_at DESC LIMIT 1",
                partition_key,
            )
        elif sequence_id is None:
            row = await self.pool.fetchrow(
                f"SELECT {_STATE_COLUMNS} FROM {STATE_TABLE} "
                "WHERE partition_key = $1 AND app_id = $2 "
                "ORDER BY sequence_id DESC, created_at DESC LIMIT 1",
                partition_key,
                app_id,
            )
        else:
            row = await self.pool.fetchrow(
                f"SELECT {_STATE_COLUMNS} FROM {STATE_TABLE} "
                "WHERE partition_key = $1 AND app_id = $2 AND sequence_id = $3 "
                "ORDER BY created_at DESC LIMIT 1",
                partition_key,
                app_id,
                sequence_id,
            )
        if row is None:
            if app_id is None or sequence_id is None:
                return None
            # Pruned: rebuilt from the turn's boundary row and the branch's latest snapshot.
            return await postgres_branches.load_boundary(
                self.pool, partition_key, app_id, sequence_id
            )
        return {
            "partition_key": partition_key,
            "app_id": row["app_id"],
            "sequence_id": row["sequence_id"],
            "position": row["position"],
            "state": decode_state(row["state"]),
            "created_at": row["created_at"],
            "status": row["status"],
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
        project_id = partition_key if partition_key is not None else PARTITION_KEY_DEFAULT
        conversation_id = conversation_of(app_id)
        values = state.get_all()
        history = values.get("chat_history", [])
        title, turns = summarise(history)
        digest = history_digest(history)
        payload = encode_state(state)
        branch = TurnRows.of(
            project_id, app_id, sequence_id, position, status, values, digest, new_branch
        )
        token = self._leases.fencing_token(project_id, conversation_id)
        async with self.pool.acquire() as conn, conn.transaction():
            lease = (project_id, conversation_id)
            if token is not None and not await still_holds(conn, lease, token):
                raise TurnLeaseLost(f"{project_id}/{conversation_id}")
            # Burr's row; a retried save of one step replaces it, as on SQLite.
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
            await postgres_branches.write_turn(conn, branch)
            # One summary per conversation (not per branch).
            await conn.execute(
                f"INSERT INTO {CONVERSATIONS_TABLE} AS c (project_id, app_id, title, turns) "
                "VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (project_id, app_id) DO UPDATE SET "
                "title = excluded.title, turns = excluded.turns, updated_at = now()",
                project_id,
                conversation_id,
                title,
                turns,
            )
            await conn.execute(
                f"INSERT INTO {HISTORY_DIGESTS_TABLE} (project_id, app_id, digest) "
                "VALUES ($1, $2, $3) ON CONFLICT (project_id, app_id) DO UPDATE SET "
                "digest = excluded.digest, updated_at = now()",
                project_id,
                app_id,
                digest,
            )
            # Keep the newest SNAPSHOTS_KEPT states of this branch.
            await conn.execute(
                f"DELETE FROM {STATE_TABLE} WHERE partition_key = $1 AND app_id = $2 "
                f"AND sequence_id < (SELECT min(sequence_id) FROM (SELECT sequence_id "
                f"FROM {STATE_TABLE} WHERE partition_key = $1 AND app_id = $2 "
                "ORDER BY sequence_id DESC LIMIT $3) AS newest)",
                project_id,
                app_id,
                SNAPSHOTS_KEPT,
            )

    async def list_app_ids(self, partition_key: str, **kwargs: Any) -> list[str]:
        rows = await self.pool.fetch(
            f"SELECT app_id FROM {STATE_TABLE} WHERE partition_key = $1 "
            "GROUP BY app_id ORDER BY max(created_at) DESC, app_id",
            partition_key if partition_key is not None else PARTITION_KEY_DEFAULT,
        )
        return [row["app_id"] for row in rows]

    # --- conversations --------------------------------------------------------------------
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
        """The conversation ``app_id`` and every one of its branches."""
        async with self.pool.acquire() as conn, conn.transaction():
            status = await conn.execute(
                f"DELETE FROM {CONVERSATIONS_TABLE} WHERE project_id = $1 AND app_id = $2",
                project_id,
                app_id,
            )
            await postgres_branches.delete_conversation(conn, project_id, app_id)
        return status != "DELETE 0"

    async def acquire_turn(self, project_id: str, app_id: str) -> TurnLease:
        return await self._leases.acquire(project_id, app_id)

    async def find_by_history(self, project_id: str, digest: str) -> str | None:
        return await self.pool.fetchval(
            f"SELECT app_id FROM {HISTORY_DIGESTS_TABLE} WHERE project_id = $1 AND digest = $2 "
            "ORDER BY updated_at DESC LIMIT 1",
            project_id,
            digest,
        )

    # --- branches (``postgres_branches``) -------------------------------------------------
    async def branches(self, project_id: str, conversation_id: str) -> list[BranchRecord]:
        return await postgres_branches.branches(self.pool, project_id, conversation_id)

    async def shown_branch(self, project_id: str, conversation_id: str) -> str:
        return await postgres_branches.shown_branch(self.pool, project_id, conversation_id)

    async def show_branch(self, project_id: str, conversation_id: str, app_id: str) -> bool:
        return await postgres_branches.show_branch(
            self.pool, project_id, conversation_id, app_id
        )

    async def boundary(self, project_id: str, app_id: str, items: int) -> Boundary | None:
        return await postgres_branches.boundary(self.pool, project_id, app_id, items)

    async def find_boundary(
        self, project_id: str, conversation_id: str, digest: str
    ) -> Boundary | None:
        return await postgres_branches.find_boundary(
            self.pool, project_id, conversation_id, digest
        )

    @property
    def relay(self) -> RelayTable:
        if self._relay is None:
            raise StoreUnavailable(f"the store for {self.where} is closed")
        return self._relay


async def _create_schema(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", _SCHEMA_LOCK_KEY)
        try:
            async with conn.transaction():
                for statement in (
                    _CREATE_STATE_TABLE,
                    _CREATE_STATE_INDEX,
                    _CREATE_CONVERSATIONS_TABLE,
                    _CREATE_CONVERSATIONS_INDEX,
                    _CREATE_DIGESTS_TABLE,
                    _CREATE_DIGESTS_INDEX,
                    *postgres_branches.CREATE_BRANCH_TABLES,
                    CREATE_LEASES_TABLE,
                    *CREATE_RELAY_TABLES,
                ):
                    await conn.execute(statement)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _SCHEMA_LOCK_KEY)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())
