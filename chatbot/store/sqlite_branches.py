"""SQLite's branch and boundary rows (see ``branch_rows``): tables, writes, look-ups.

Writes run inside the store's group-commit transaction (``write_turns``); the look-ups
are single statements on the store's connection. A conversation's fork ids ``c~n`` are a
contiguous range in SQLite's binary text order, so "every branch of c" is an index range.
"""

from __future__ import annotations

from collections.abc import Sequence

import aiosqlite
import orjson
from burr.core.persistence import PersistedStateData

from chatbot.domain.branch_ids import conversation_of
from chatbot.store.base import (
    BOUNDARIES_TABLE,
    BRANCHES_TABLE,
    CONVERSATIONS_TABLE,
    HISTORY_DIGESTS_TABLE,
    STATE_TABLE,
    Boundary,
    BranchRecord,
    parse_timestamp,
)
from chatbot.store.branch_rows import (
    EMPTY_REST,
    START_POSITION,
    START_SEQUENCE_ID,
    START_STATUS,
    TurnRows,
    boundary_state,
    branch_range,
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
        created_at TEXT NOT NULL,
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
        rest TEXT NOT NULL,
        written_at TEXT NOT NULL,
        PRIMARY KEY (project_id, app_id, sequence_id)
    )""",
    f"CREATE INDEX IF NOT EXISTS {BOUNDARIES_TABLE}_digest "
    f"ON {BOUNDARIES_TABLE} (project_id, digest)",
)

_HISTORY_LENGTH = "json_array_length(state, '$.chat_history')"
_LATEST_LENGTH = (
    f"(SELECT {_HISTORY_LENGTH} FROM {STATE_TABLE} WHERE partition_key = ? AND app_id = ? "
    "ORDER BY sequence_id DESC LIMIT 1)"
)
_CONVERSATION_CREATED = (
    f"(SELECT created_at FROM {CONVERSATIONS_TABLE} WHERE project_id = ? AND app_id = ?)"
)
_BRANCH_COLUMNS = (
    "app_id, parent_app_id, fork_sequence_id, diverges_at, created, shown, items, created_at"
)
# The original's row, when a conversation older than branching gets its first fork.
_INSERT_ORIGINAL = (
    f"INSERT OR IGNORE INTO {BRANCHES_TABLE} ({_BRANCH_COLUMNS}, project_id, conversation_id) "
    f"VALUES (?, NULL, NULL, 0, 0, 0, coalesce({_LATEST_LENGTH}, 0), "
    f"coalesce({_CONVERSATION_CREATED}, ?), ?, ?)"
)
_INSERT_NEW_BRANCH = (
    f"INSERT OR IGNORE INTO {BRANCHES_TABLE} ({_BRANCH_COLUMNS}, project_id, conversation_id) "
    "VALUES (?, ?, ?, ?, ?, "
    f"(SELECT coalesce(max(shown), 0) + 1 FROM {BRANCHES_TABLE} "
    "WHERE project_id = ? AND conversation_id = ?), ?, ?, ?, ?)"
)
# The state a new branch was forked from, as a boundary of its own: the parent's boundary
# row, else the parent's snapshot (a conversation older than branching), else the start.
_INSERT_FORK_BOUNDARY = (
    f"INSERT OR REPLACE INTO {BOUNDARIES_TABLE} "
    "(project_id, app_id, sequence_id, items, position, status, digest, rest, written_at) "
    "SELECT ?, ?, ?, ?, position, status, ?, rest, ? FROM ("
    f"SELECT position, status, rest, 0 AS source FROM {BOUNDARIES_TABLE} "
    "WHERE project_id = ? AND app_id = ? AND sequence_id = ? "
    "UNION ALL SELECT position, status, json_remove(state, '$.chat_history'), 1 "
    f"FROM {STATE_TABLE} WHERE partition_key = ? AND app_id = ? AND sequence_id = ? "
    f"UNION ALL SELECT '{START_POSITION}', '{START_STATUS}', '{EMPTY_REST}', 2"
    ") ORDER BY source LIMIT 1"
)
_UPSERT_BRANCH = (
    f"INSERT INTO {BRANCHES_TABLE} ({_BRANCH_COLUMNS}, project_id, conversation_id) "
    f"VALUES (?, NULL, NULL, 0, ?, 0, ?, coalesce({_CONVERSATION_CREATED}, ?), ?, ?) "
    "ON CONFLICT (project_id, app_id) DO UPDATE SET items = excluded.items"
)
_INSERT_BOUNDARY = (
    f"INSERT OR REPLACE INTO {BOUNDARIES_TABLE} "
    "(project_id, app_id, sequence_id, items, position, status, digest, rest, written_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_OF_CONVERSATION = "(app_id = ? OR (app_id >= ? AND app_id < ?))"


def _conversation_ids(conversation_id: str) -> tuple[str, str, str]:
    return (conversation_id, *branch_range(conversation_id))


async def write_turns(conn: aiosqlite.Connection, turns: Sequence[TurnRows], now: str) -> None:
    """The branch and boundary rows of a group commit's turns (inside its transaction)."""
    forks = [t for t in turns if t.new_branch is not None]
    if forks:
        await conn.executemany(
            _INSERT_ORIGINAL,
            [
                (t.conversation_id, t.project_id, t.conversation_id, t.project_id,
                 t.conversation_id, now, t.project_id, t.conversation_id)
                for t in forks
            ],
        )
        await conn.executemany(
            _INSERT_NEW_BRANCH,
            [
                (t.app_id, t.new_branch.parent_app_id, t.new_branch.fork_sequence_id,
                 t.new_branch.diverges_at, t.created, t.project_id, t.conversation_id,
                 t.items, now, t.project_id, t.conversation_id)
                for t in forks
            ],
        )
        await conn.executemany(
            _INSERT_FORK_BOUNDARY,
            [
                (t.project_id, t.app_id, t.new_branch.fork_sequence_id,
                 t.new_branch.fork_items, t.fork_digest, now,
                 t.project_id, t.new_branch.parent_app_id, t.new_branch.fork_sequence_id,
                 t.project_id, t.new_branch.parent_app_id, t.new_branch.fork_sequence_id)
                for t in forks
            ],
        )  # fmt: skip
    await conn.executemany(
        _UPSERT_BRANCH,
        [
            (t.app_id, t.created, t.items, t.project_id, t.conversation_id, now,
             t.project_id, t.conversation_id)
            for t in turns
        ],
    )  # fmt: skip
    await conn.executemany(
        _INSERT_BOUNDARY,
        [
            (t.project_id, t.app_id, t.sequence_id, t.items, t.position, t.status, t.digest,
             t.rest, now)
            for t in turns
        ],
    )  # fmt: skip


async def delete_conversation(
    conn: aiosqlite.Connection, project_id: str, conversation_id: str
) -> None:
    """Every branch's states, boundaries, digests and rows (inside the caller's transaction)."""
    ids = _conversation_ids(conversation_id)
    await conn.execute(
        f"DELETE FROM {STATE_TABLE} WHERE partition_key = ? AND {_OF_CONVERSATION}",
        (project_id, *ids),
    )
    for table in (HISTORY_DIGESTS_TABLE, BOUNDARIES_TABLE):
        await conn.execute(
            f"DELETE FROM {table} WHERE project_id = ? AND {_OF_CONVERSATION}", (project_id, *ids)
        )
    await conn.execute(
        f"DELETE FROM {BRANCHES_TABLE} WHERE project_id = ? AND conversation_id = ?",
        (project_id, conversation_id),
    )


async def load_boundary(
    conn: aiosqlite.Connection, partition_key: str, app_id: str, sequence_id: int
) -> PersistedStateData | None:
    """The state at a boundary whose snapshot was pruned (or -1, the start), else None."""
    if sequence_id == START_SEQUENCE_ID:
        if await _has_states(conn, partition_key, app_id):
            return start_state(partition_key, app_id)
        return None
    rows = await conn.execute_fetchall(
        "SELECT items, position, status, rest, written_at, "
        f"(SELECT json_extract(state, '$.chat_history') FROM {STATE_TABLE} "
        "WHERE partition_key = ? AND app_id = ? ORDER BY sequence_id DESC LIMIT 1) "
        f"FROM {BOUNDARIES_TABLE} WHERE project_id = ? AND app_id = ? AND sequence_id = ?",
        (partition_key, app_id, partition_key, app_id, sequence_id),
    )
    if not rows:
        return None
    items, position, status, rest, written_at, latest = rows[0]
    history = orjson.loads(latest) if latest is not None else []
    if len(history) < items:  # not this branch's prefix: nothing sound to load
        return None
    return boundary_state(
        partition_key,
        app_id,
        sequence_id,
        rest=rest,
        latest_history=history,
        items=items,
        position=position,
        status=status,
        created_at=written_at,
    )


async def _has_states(conn: aiosqlite.Connection, partition_key: str, app_id: str) -> bool:
    rows = await conn.execute_fetchall(
        f"SELECT 1 FROM {STATE_TABLE} WHERE partition_key = ? AND app_id = ? LIMIT 1",
        (partition_key, app_id),
    )
    return bool(rows)


async def branches(
    conn: aiosqlite.Connection, project_id: str, conversation_id: str
) -> list[BranchRecord]:
    rows = await conn.execute_fetchall(
        f"SELECT {_BRANCH_COLUMNS} FROM {BRANCHES_TABLE} "
        "WHERE project_id = ? AND conversation_id = ? ORDER BY created, app_id",
        (project_id, conversation_id),
    )
    if rows:
        return [
            BranchRecord(*row[:7], created_at=parse_timestamp(row[7])) for row in rows
        ]
    # A conversation stored before branching: its original alone, from its latest state.
    rows = await conn.execute_fetchall(
        f"SELECT {_LATEST_LENGTH}, {_CONVERSATION_CREATED}",
        (project_id, conversation_id, project_id, conversation_id),
    )
    items, created_at = rows[0]
    if items is None:
        return []
    created = parse_timestamp(created_at) if created_at is not None else None
    return [BranchRecord(conversation_id, None, None, 0, 0, 0, items, created_at=created)]


async def shown_branch(conn: aiosqlite.Connection, project_id: str, conversation_id: str) -> str:
    rows = await conn.execute_fetchall(
        f"SELECT app_id FROM {BRANCHES_TABLE} WHERE project_id = ? AND conversation_id = ? "
        "ORDER BY shown DESC, created DESC LIMIT 1",
        (project_id, conversation_id),
    )
    return rows[0][0] if rows else conversation_id


async def show_branch(
    conn: aiosqlite.Connection, project_id: str, conversation_id: str, app_id: str
) -> bool:
    """One statement (the caller serialises it with the store's other writes)."""
    if conversation_of(app_id) != conversation_id:
        return False
    async with conn.execute(
        f"UPDATE {BRANCHES_TABLE} SET shown = (SELECT max(shown) + 1 FROM {BRANCHES_TABLE} "
        "WHERE project_id = ? AND conversation_id = ?) "
        "WHERE project_id = ? AND conversation_id = ? AND app_id = ?",
        (project_id, conversation_id, project_id, conversation_id, app_id),
    ) as cursor:
        if cursor.rowcount > 0:
            return True
    if app_id != conversation_id or await _has_rows(conn, project_id, conversation_id):
        return False
    # A conversation older than branching has one branch, its original, shown already.
    return await _has_states(conn, project_id, conversation_id)


async def _has_rows(conn: aiosqlite.Connection, project_id: str, conversation_id: str) -> bool:
    rows = await conn.execute_fetchall(
        f"SELECT 1 FROM {BRANCHES_TABLE} WHERE project_id = ? AND conversation_id = ? LIMIT 1",
        (project_id, conversation_id),
    )
    return bool(rows)


async def boundary(
    conn: aiosqlite.Connection, project_id: str, app_id: str, items: int
) -> Boundary | None:
    rows = await conn.execute_fetchall(
        f"SELECT sequence_id FROM {BOUNDARIES_TABLE} "
        "WHERE project_id = ? AND app_id = ? AND items = ? ORDER BY sequence_id DESC LIMIT 1",
        (project_id, app_id, items),
    )
    if not rows:
        # Snapshots without a boundary row (written before branching, or by Burr itself).
        rows = await conn.execute_fetchall(
            f"SELECT sequence_id FROM {STATE_TABLE} WHERE partition_key = ? AND app_id = ? "
            f"AND sequence_id NOT IN (SELECT sequence_id FROM {BOUNDARIES_TABLE} "
            "WHERE project_id = ? AND app_id = ?) "
            f"AND {_HISTORY_LENGTH} = ? ORDER BY sequence_id DESC LIMIT 1",
            (project_id, app_id, project_id, app_id, items),
        )
    if rows:
        return Boundary(app_id, rows[0][0], items)
    if items == 0 and await _has_states(conn, project_id, app_id):
        return Boundary(app_id, START_SEQUENCE_ID, 0)
    return None


async def find_boundary(
    conn: aiosqlite.Connection, project_id: str, conversation_id: str, digest: str
) -> Boundary | None:
    rows = await conn.execute_fetchall(
        f"SELECT app_id, sequence_id, items FROM {BOUNDARIES_TABLE} "
        f"WHERE project_id = ? AND digest = ? AND {_OF_CONVERSATION} "
        "ORDER BY written_at DESC, sequence_id DESC LIMIT 1",
        (project_id, digest, *_conversation_ids(conversation_id)),
    )
    return Boundary(*rows[0]) if rows else None
