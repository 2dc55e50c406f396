"""PostgreSQL's branch and boundary rows (see ``branch_rows``): tables, writes, look-ups.

The writes run inside ``save``'s transaction: one extra round trip per turn (the branch
row and the boundary row in one statement), three more on a branch's first turn. A
conversation's branches are ``app_id = c OR starts_with(app_id, 'c~')``: text order
depends on the database's collation here, so no range over it.
"""

from __future__ import annotations

import asyncpg
import orjson
from burr.core.persistence import PersistedStateData

from chatbot.domain.branch_ids import BRANCH_SEPARATOR, conversation_of
from chatbot.store.base import (
    BOUNDARIES_TABLE,
    BRANCHES_TABLE,
    CONVERSATIONS_TABLE,
    HISTORY_DIGESTS_TABLE,
    STATE_TABLE,
    Boundary,
    BranchRecord,
)
from chatbot.store.branch_rows import (
    EMPTY_REST,
    START_POSITION,
    START_SEQUENCE_ID,
    START_STATUS,
    TurnRows,
    boundary_state,
    start_state,
)

CREATE_BRANCH_TABLES = (
    f"""CREATE TABLE IF NOT EXISTS {BRANCHES_TABLE} (
        project_id TEXT NOT NULL,
        app_id TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        parent_app_id TEXT,
        fork_sequence_id INTEGER,
        diverges_at INTEGER NOT NULL DEFAULT 0,
        created INTEGER NOT NULL DEFAULT 0,
        shown INTEGER NOT NULL DEFAULT 0,
        items INTEGER NOT NULL DEFAULT 0,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (project_id, app_id)
    )""",
    f"CREATE INDEX IF NOT EXISTS {BRANCHES_TABLE}_conversation "
    f"ON {BRANCHES_TABLE} (project_id, conversation_id, shown DESC)",
    f"""CREATE TABLE IF NOT EXISTS {BOUNDARIES_TABLE} (
        project_id TEXT NOT NULL,
        app_id TEXT NOT NULL,
        sequence_id INTEGER NOT NULL,
        items INTEGER NOT NULL,
        position TEXT NOT NULL,
        status TEXT NOT NULL,
        digest TEXT NOT NULL,
        rest JSONB NOT NULL,
        written_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (project_id, app_id, sequence_id)
    )""",
    f"CREATE INDEX IF NOT EXISTS {BOUNDARIES_TABLE}_digest "
    f"ON {BOUNDARIES_TABLE} (project_id, digest)",
)

# A state's history length; NULL (never an error) for a state without one.
_HISTORY_LENGTH = (
    "CASE WHEN jsonb_typeof(state -> 'chat_history') = 'array' "
    "THEN jsonb_array_length(state -> 'chat_history') END"
)
_LATEST_LENGTH = (
    f"(SELECT {_HISTORY_LENGTH} FROM {STATE_TABLE} "
    "WHERE partition_key = $1 AND app_id = $2 ORDER BY sequence_id DESC LIMIT 1)"
)
_CONVERSATION_CREATED = (
    f"(SELECT created_at FROM {CONVERSATIONS_TABLE} WHERE project_id = $1 AND app_id = $2)"
)
_BRANCH_COLUMNS = (
    "app_id, parent_app_id, fork_sequence_id, diverges_at, created, shown, items, created_at"
)
_UPSERT_BOUNDARY = (
    "ON CONFLICT (project_id, app_id, sequence_id) DO UPDATE SET items = excluded.items, "
    "position = excluded.position, status = excluded.status, digest = excluded.digest, "
    "rest = excluded.rest, written_at = excluded.written_at"
)
# The original's row, when a conversation older than branching gets its first fork.
_INSERT_ORIGINAL = (
    f"INSERT INTO {BRANCHES_TABLE} ({_BRANCH_COLUMNS}, project_id, conversation_id) "
    f"VALUES ($2, NULL, NULL, 0, 0, 0, coalesce({_LATEST_LENGTH}, 0), "
    f"coalesce({_CONVERSATION_CREATED}, now()), $1, $2) "
    "ON CONFLICT (project_id, app_id) DO NOTHING"
)
_INSERT_NEW_BRANCH = (
    f"INSERT INTO {BRANCHES_TABLE} ({_BRANCH_COLUMNS}, project_id, conversation_id) "
    "VALUES ($2, $4, $5, $6, $7, "
    f"(SELECT coalesce(max(shown), 0) + 1 FROM {BRANCHES_TABLE} "
    "WHERE project_id = $1 AND conversation_id = $3), $8, now(), $1, $3) "
    "ON CONFLICT (project_id, app_id) DO NOTHING"
)
# The state a new branch was forked from, as a boundary of its own: the parent's boundary
# row, else the parent's snapshot (a conversation older than branching), else the start.
_INSERT_FORK_BOUNDARY = (
    f"INSERT INTO {BOUNDARIES_TABLE} "
    "(project_id, app_id, sequence_id, items, position, status, digest, rest) "
    "SELECT $1::text, $2::text, $3::int, $4::int, position, status, $5::text, rest FROM ("
    f"SELECT position, status, rest, 0 AS source FROM {BOUNDARIES_TABLE} "
    "WHERE project_id = $1 AND app_id = $6 AND sequence_id = $3 "
    "UNION ALL SELECT position, status, state - 'chat_history', 1 "
    f"FROM {STATE_TABLE} WHERE partition_key = $1 AND app_id = $6 AND sequence_id = $3 "
    f"UNION ALL SELECT '{START_POSITION}', '{START_STATUS}', '{EMPTY_REST}'::jsonb, 2"
    f") AS fork ORDER BY source LIMIT 1 {_UPSERT_BOUNDARY}"
)
# Every turn: its branch's row (created, or its length updated) and its boundary row.
_WRITE_TURN = (
    f"WITH branch AS (INSERT INTO {BRANCHES_TABLE} "
    f"({_BRANCH_COLUMNS}, project_id, conversation_id) "
    "VALUES ($2, NULL, NULL, 0, $4, 0, $5, coalesce((SELECT created_at FROM "
    f"{CONVERSATIONS_TABLE} WHERE project_id = $1 AND app_id = $3), now()), $1, $3) "
    "ON CONFLICT (project_id, app_id) DO UPDATE SET items = excluded.items) "
    f"INSERT INTO {BOUNDARIES_TABLE} "
    "(project_id, app_id, sequence_id, items, position, status, digest, rest) "
    f"VALUES ($1, $2, $6, $5, $7, $8, $9, $10::jsonb) {_UPSERT_BOUNDARY}"
)
_OF_CONVERSATION = "(app_id = $2 OR starts_with(app_id, $3))"


async def write_turn(conn: asyncpg.Connection, turn: TurnRows) -> None:
    """The branch and boundary rows of one turn (inside ``save``'s transaction)."""
    fork = turn.new_branch
    if fork is not None:
        await conn.execute(_INSERT_ORIGINAL, turn.project_id, turn.conversation_id)
        await conn.execute(
            _INSERT_NEW_BRANCH,
            turn.project_id,
            turn.app_id,
            turn.conversation_id,
            fork.parent_app_id,
            fork.fork_sequence_id,
            fork.diverges_at,
            turn.created,
            turn.items,
        )
        await conn.execute(
            _INSERT_FORK_BOUNDARY,
            turn.project_id,
            turn.app_id,
            fork.fork_sequence_id,
            fork.fork_items,
            turn.fork_digest,
            fork.parent_app_id,
        )
    await conn.execute(
        _WRITE_TURN,
        turn.project_id,
        turn.app_id,
        turn.conversation_id,
        turn.created,
        turn.items,
        turn.sequence_id,
        turn.position,
        turn.status,
        turn.digest,
        turn.rest,
    )


async def delete_conversation(
    conn: asyncpg.Connection, project_id: str, conversation_id: str
) -> None:
    """Every branch's states, boundaries, digests and rows (inside the caller's transaction)."""
    prefix = conversation_id + BRANCH_SEPARATOR
    await conn.execute(
        f"DELETE FROM {STATE_TABLE} WHERE partition_key = $1 AND {_OF_CONVERSATION}",
        project_id,
        conversation_id,
        prefix,
    )
    for table in (HISTORY_DIGESTS_TABLE, BOUNDARIES_TABLE):
        await conn.execute(
            f"DELETE FROM {table} WHERE project_id = $1 AND {_OF_CONVERSATION}",
            project_id,
            conversation_id,
            prefix,
        )
    await conn.execute(
        f"DELETE FROM {BRANCHES_TABLE} WHERE project_id = $1 AND conversation_id = $2",
        project_id,
        conversation_id,
    )


async def load_boundary(
    pool: asyncpg.Pool, partition_key: str, app_id: str, sequence_id: int
) -> PersistedStateData | None:
    """The state at a boundary whose snapshot was pruned (or -1, the start), else None."""
    if sequence_id == START_SEQUENCE_ID:
        if await _has_states(pool, partition_key, app_id):
            return start_state(partition_key, app_id)
        return None
    row = await pool.fetchrow(
        "SELECT items, position, status, rest, written_at, "
        f"(SELECT state -> 'chat_history' FROM {STATE_TABLE} "
        "WHERE partition_key = $1 AND app_id = $2 ORDER BY sequence_id DESC LIMIT 1) AS latest "
        f"FROM {BOUNDARIES_TABLE} WHERE project_id = $1 AND app_id = $2 AND sequence_id = $3",
        partition_key,
        app_id,
        sequence_id,
    )
    if row is None:
        return None
    history = orjson.loads(row["latest"]) if row["latest"] is not None else []
    if len(history) < row["items"]:  # not this branch's prefix: nothing sound to load
        return None
    return boundary_state(
        partition_key,
        app_id,
        sequence_id,
        rest=row["rest"],
        latest_history=history,
        items=row["items"],
        position=row["position"],
        status=row["status"],
        created_at=row["written_at"],
    )


async def _has_states(pool: asyncpg.Pool, partition_key: str, app_id: str) -> bool:
    found = await pool.fetchval(
        f"SELECT 1 FROM {STATE_TABLE} WHERE partition_key = $1 AND app_id = $2 LIMIT 1",
        partition_key,
        app_id,
    )
    return found is not None


async def branches(
    pool: asyncpg.Pool, project_id: str, conversation_id: str
) -> list[BranchRecord]:
    rows = await pool.fetch(
        f"SELECT {_BRANCH_COLUMNS} FROM {BRANCHES_TABLE} "
        "WHERE project_id = $1 AND conversation_id = $2 ORDER BY created, app_id",
        project_id,
        conversation_id,
    )
    if rows:
        return [BranchRecord(*row) for row in rows]
    # A conversation stored before branching: its original alone, from its latest state.
    row = await pool.fetchrow(
        f"SELECT {_LATEST_LENGTH} AS items, {_CONVERSATION_CREATED} AS created_at",
        project_id,
        conversation_id,
    )
    if row["items"] is None:
        return []
    return [
        BranchRecord(
            conversation_id, None, None, 0, 0, 0, row["items"], created_at=row["created_at"]
        )
    ]


async def shown_branch(pool: asyncpg.Pool, project_id: str, conversation_id: str) -> str:
    shown = await pool.fetchval(
        f"SELECT app_id FROM {BRANCHES_TABLE} WHERE project_id = $1 AND conversation_id = $2 "
        "ORDER BY shown DESC, created DESC LIMIT 1",
        project_id,
        conversation_id,
    )
    return shown if shown is not None else conversation_id


async def show_branch(
    pool: asyncpg.Pool, project_id: str, conversation_id: str, app_id: str
) -> bool:
    if conversation_of(app_id) != conversation_id:
        return False
    status = await pool.execute(
        f"UPDATE {BRANCHES_TABLE} SET shown = (SELECT max(shown) + 1 FROM {BRANCHES_TABLE} "
        "WHERE project_id = $1 AND conversation_id = $2) "
        "WHERE project_id = $1 AND conversation_id = $2 AND app_id = $3",
        project_id,
        conversation_id,
        app_id,
    )
    if status != "UPDATE 0":
        return True
    if app_id != conversation_id or await _has_rows(pool, project_id, conversation_id):
        return False
    # A conversation older than branching has one branch, its original, shown already.
    return await _has_states(pool, project_id, conversation_id)


async def _has_rows(pool: asyncpg.Pool, project_id: str, conversation_id: str) -> bool:
    found = await pool.fetchval(
        f"SELECT 1 FROM {BRANCHES_TABLE} WHERE project_id = $1 AND conversation_id = $2 LIMIT 1",
        project_id,
        conversation_id,
    )
    return found is not None


async def boundary(
    pool: asyncpg.Pool, project_id: str, app_id: str, items: int
) -> Boundary | None:
    sequence_id = await pool.fetchval(
        f"SELECT sequence_id FROM {BOUNDARIES_TABLE} "
        "WHERE project_id = $1 AND app_id = $2 AND items = $3 ORDER BY sequence_id DESC LIMIT 1",
        project_id,
        app_id,
        items,
    )
    if sequence_id is None:
        # Snapshots without a boundary row (written before branching, or by Burr itself).
        sequence_id = await pool.fetchval(
            f"SELECT sequence_id FROM {STATE_TABLE} s WHERE partition_key = $1 AND app_id = $2 "
            f"AND NOT EXISTS (SELECT 1 FROM {BOUNDARIES_TABLE} b WHERE b.project_id = $1 "
            "AND b.app_id = $2 AND b.sequence_id = s.sequence_id) "
            f"AND {_HISTORY_LENGTH} = $3 "
            "ORDER BY sequence_id DESC LIMIT 1",
            project_id,
            app_id,
            items,
        )
    if sequence_id is not None:
        return Boundary(app_id, sequence_id, items)
    if items == 0 and await _has_states(pool, project_id, app_id):
        return Boundary(app_id, START_SEQUENCE_ID, 0)
    return None


async def find_boundary(
    pool: asyncpg.Pool, project_id: str, conversation_id: str, digest: str
) -> Boundary | None:
    row = await pool.fetchrow(
        f"SELECT app_id, sequence_id, items FROM {BOUNDARIES_TABLE} "
        f"WHERE project_id = $1 AND {_OF_CONVERSATION} AND digest = $4 "
        "ORDER BY written_at DESC, sequence_id DESC LIMIT 1",
        project_id,
        conversation_id,
        conversation_id + BRANCH_SEPARATOR,
        digest,
    )
    return Boundary(row["app_id"], row["sequence_id"], row["items"]) if row else None
