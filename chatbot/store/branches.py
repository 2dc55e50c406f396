"""Branch and boundary rows (see ``branch_rows``): writes and look-ups, for both databases.

Writes run inside the store's group-commit transaction (``write_turns``); the look-ups
are single statements. ``Dialect.forks_of`` says which app ids are a conversation's forks.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from burr.core.persistence import PersistedStateData
from sqlalchemy.engine import Connection

from chatbot.domain.branch_ids import conversation_of
from chatbot.domain.branch_tree import BranchRecord
from chatbot.store.base import Boundary, summarise
from chatbot.store.branch_rows import (
    EMPTY_REST,
    START_POSITION,
    START_SEQUENCE_ID,
    START_STATUS,
    TurnRows,
    boundary_state,
    start_state,
)
from chatbot.store.dialect import Dialect
from chatbot.store.tables import (
    Instant,
    boundaries,
    branches,
    conversations,
    history_digests,
    states,
)

st, bd, br = states.c, boundaries.c, branches.c
_BRANCH_COLUMNS = (
    br.app_id, br.parent_app_id, br.fork_sequence_id, br.diverges_at, br.created, br.shown,
    br["items"], br.created_at,
)  # fmt: skip
_BOUNDARY_VALUES = ("items", "position", "status", "digest", "rest", "written_at")


def _latest(d: Dialect, column: sa.ColumnElement, project_id: Any, app_id: Any) -> Any:
    """``column`` of the branch's latest snapshot, as a scalar subquery."""
    return (
        sa.select(column)
        .where(st.partition_key == project_id, st.app_id == app_id)
        .order_by(st.sequence_id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _created(project_id: Any, conversation_id: Any) -> Any:
    c = conversations.c
    return (
        sa.select(c.created_at)
        .where(c.project_id == project_id, c.app_id == conversation_id)
        .scalar_subquery()
    )


def _created_or(project_id: Any, conversation_id: Any, now: Any) -> Any:
    """When the conversation was created, or ``now`` for one never registered."""
    return sa.func.coalesce(_created(project_id, conversation_id), sa.type_coerce(now, Instant))


def _next_shown(project_id: Any, conversation_id: Any) -> Any:
    other = branches.alias("other")
    return (
        sa.select(sa.func.coalesce(sa.func.max(other.c.shown), 0) + 1)
        .where(other.c.project_id == project_id, other.c.conversation_id == conversation_id)
        .scalar_subquery()
    )


def _of_conversation(d: Dialect, app_id: sa.ColumnElement, conversation_id: str) -> Any:
    return sa.or_(app_id == conversation_id, d.forks_of(app_id, conversation_id))


@functools.cache
def _turn_statements(d: Dialect) -> tuple[sa.Executable, ...]:
    """The upserts of every turn's branch row and boundary row, built once (they are the
    group commit's); one statement where the database chains writes (``chains_writes``)."""
    p, c, now = sa.bindparam("b_project"), sa.bindparam("b_conversation"), d.commit_time()
    row = d.insert(branches).values(
        app_id=sa.bindparam("b_app"), parent_app_id=None, fork_sequence_id=None,
        diverges_at=0, created=sa.bindparam("b_created"), shown=0,
        items=sa.bindparam("b_items"),
        created_at=_created_or(p, c, now), project_id=p, conversation_id=c,
    )  # fmt: skip
    branch = row.on_conflict_do_update(
        index_elements=["project_id", "app_id"], set_={"items": row.excluded["items"]}
    )
    row = d.insert(boundaries).values(written_at=now)
    boundary = row.on_conflict_do_update(
        index_elements=["project_id", "app_id", "sequence_id"],
        set_={name: row.excluded[name] for name in _BOUNDARY_VALUES},
    )
    return (boundary.add_cte(branch.cte("branch")),) if d.chains_writes else (branch, boundary)


def write_turns(conn: Connection, d: Dialect, turns: Sequence[TurnRows], now: Any) -> None:
    """The branch and boundary rows of a group commit's turns (inside its transaction)."""
    rows = []
    for t in turns:
        branch = {
            "b_project": t.project_id,
            "b_conversation": t.conversation_id,
            "b_app": t.app_id,
            "b_created": t.created,
            "b_items": t.items,
            "now": now,
        }
        rows.append(
            {
                "project_id": t.project_id,
                "app_id": t.app_id,
                "sequence_id": t.sequence_id,
                "items": t.items,
                "position": t.position,
                "status": t.status,
                "digest": t.digest,
                "rest": t.rest,
                **branch,
            }
        )
        if t.new_branch is not None:
            rows.append({**_record_fork(conn, d, t, now), **branch})
    for statement in _turn_statements(d):
        conn.execute(statement, rows)


def _record_fork(conn: Connection, d: Dialect, t: TurnRows, now: Any) -> dict:
    """A new branch's row (and its original's, for a conversation older than branching);
    answers the boundary row of the state it was forked from."""
    fork, p, c = t.new_branch, t.project_id, t.conversation_id
    assert fork is not None
    original = d.insert(branches).values(
        app_id=c, parent_app_id=None, fork_sequence_id=None, diverges_at=0, created=0, shown=0,
        items=sa.func.coalesce(_latest(d, d.history_length(st.state), p, c), 0),
        created_at=_created_or(p, c, d.now()), project_id=p, conversation_id=c,
    )  # fmt: skip
    conn.execute(original.on_conflict_do_nothing())
    new = d.insert(branches).values(
        app_id=t.app_id, parent_app_id=fork.parent_app_id,
        fork_sequence_id=fork.fork_sequence_id, diverges_at=fork.diverges_at,
        created=t.created, shown=_next_shown(p, c), items=t.items, created_at=d.now(),
        project_id=p, conversation_id=c,
    )  # fmt: skip
    conn.execute(new.on_conflict_do_nothing())
    # The state it was forked from: the parent's boundary row, else the parent's snapshot
    # (a conversation older than branching), else the start.
    parent, at = fork.parent_app_id, fork.fork_sequence_id
    source = first(
        conn,
        sa.select(bd.position, bd.status, bd.rest).where(
            bd.project_id == p, bd.app_id == parent, bd.sequence_id == at
        ),
    ) or first(
        conn,
        sa.select(st.position, st.status, d.without_history(st.state)).where(
            st.partition_key == p, st.app_id == parent, st.sequence_id == at
        ),
    )
    position, status, rest = source or (START_POSITION, START_STATUS, EMPTY_REST)
    return {
        "project_id": p, "app_id": t.app_id, "sequence_id": fork.fork_sequence_id,
        "items": fork.fork_items, "position": position, "status": status,
        "digest": t.fork_digest, "rest": rest, "now": now,
    }  # fmt: skip


def delete_conversation(
    conn: Connection, d: Dialect, project_id: str, conversation_id: str
) -> None:
    """Every branch's states, boundaries, digests and rows (inside the caller's transaction)."""
    for table, project in ((states, st.partition_key), (history_digests, None), (boundaries, None)):
        project = project if project is not None else table.c.project_id
        of_it = _of_conversation(d, table.c.app_id, conversation_id)
        conn.execute(table.delete().where(project == project_id, of_it))
    conn.execute(
        branches.delete().where(br.project_id == project_id, br.conversation_id == conversation_id)
    )


def load_boundary(
    conn: Connection, d: Dialect, partition_key: str, app_id: str, sequence_id: int
) -> PersistedStateData | None:
    """The state at a boundary whose snapshot was pruned (or -1, the start), else None."""
    if sequence_id == START_SEQUENCE_ID:
        if _has_states(conn, partition_key, app_id):
            return start_state(partition_key, app_id)
        return None
    row = first(
        conn,
        sa.select(
            bd["items"], bd.position, bd.status, bd.rest, bd.written_at,
            _latest(d, d.history(st.state), partition_key, app_id),
        ).where(
            bd.project_id == partition_key, bd.app_id == app_id, bd.sequence_id == sequence_id
        ),
    )  # fmt: skip
    if row is None:
        return None
    items, position, status, rest, written_at, latest = row
    history = orjson.loads(latest) if latest is not None else []
    if len(history) < items:  # not this branch's prefix: nothing sound to load
        return None
    return boundary_state(
        partition_key, app_id, sequence_id, rest=rest, latest_history=history, items=items,
        position=position, status=status, created_at=written_at,
    )  # fmt: skip


def first(conn: Connection, query: sa.Executable) -> Any:
    """The first row of a query, or None (a select asks for one row only)."""
    return (conn.execute(query.limit(1) if isinstance(query, sa.Select) else query)).first()


def _has_states(conn: Connection, partition_key: str, app_id: str) -> bool:
    one = sa.select(sa.literal(1)).where(st.partition_key == partition_key, st.app_id == app_id)
    return first(conn, one.limit(1)) is not None


def branch_records(
    conn: Connection, d: Dialect, project_id: str, conversation_id: str
) -> list[BranchRecord]:
    rows = conn.execute(
        sa.select(*_BRANCH_COLUMNS)
        .where(br.project_id == project_id, br.conversation_id == conversation_id)
        .order_by(br.created, br.app_id)
    )
    records = [BranchRecord(*row[:7], created_at=row[7]) for row in rows]
    if records:
        return records
    # A conversation stored before branching: its original alone, from its latest state.
    items, created_at = first(
        conn,
        sa.select(
            _latest(d, d.history_length(st.state), project_id, conversation_id),
            _created(project_id, conversation_id),
        ),
    )
    if items is None:
        return []
    return [BranchRecord(conversation_id, None, None, 0, 0, 0, items, created_at=created_at)]


def shown_query(project_id: str, conversation_id: Any) -> sa.Select:
    return (
        sa.select(br.app_id)
        .where(br.project_id == project_id, br.conversation_id == conversation_id)
        .order_by(br.shown.desc(), br.created.desc())
        .limit(1)
    )


def show_branch(
    conn: Connection, d: Dialect, project_id: str, conversation_id: str, app_id: str
) -> bool:
    """Inside a write transaction: the switch, and the listing's title and turn count
    taken from the branch now shown."""
    if conversation_of(app_id) != conversation_id:
        return False
    switched = conn.execute(
        branches.update()
        .where(
            br.project_id == project_id,
            br.conversation_id == conversation_id,
            br.app_id == app_id,
        )
        .values(shown=_next_shown(project_id, conversation_id))
    )
    if switched.rowcount == 0:
        if app_id != conversation_id or first(conn, shown_query(project_id, app_id)):
            return False
        # A conversation older than branching has one branch, its original, shown already.
        return _has_states(conn, project_id, conversation_id)
    (history,) = first(conn, sa.select(_latest(d, d.history(st.state), project_id, app_id)))
    if history is not None:
        title, turns = summarise(orjson.loads(history))
        c = conversations.c
        conn.execute(
            conversations.update()
            .where(c.project_id == project_id, c.app_id == conversation_id)
            .values(title=title, turns=turns)
        )
    return True


def boundary(
    conn: Connection, d: Dialect, project_id: str, app_id: str, items: int
) -> Boundary | None:
    own = (bd.project_id == project_id, bd.app_id == app_id)
    found = first(
        conn,
        sa.select(bd.sequence_id).where(*own, bd["items"] == items).order_by(bd.sequence_id.desc()),
    )
    if found is None:
        # Snapshots without a boundary row (written before branching, or by Burr itself).
        has_row = sa.exists().where(*own, bd.sequence_id == st.sequence_id)
        found = first(
            conn,
            sa.select(st.sequence_id)
            .where(st.partition_key == project_id, st.app_id == app_id, ~has_row)
            .where(d.history_length(st.state) == items)
            .order_by(st.sequence_id.desc()),
        )
    if found is not None:
        return Boundary(app_id, found.sequence_id, items)
    if items == 0 and _has_states(conn, project_id, app_id):
        return Boundary(app_id, START_SEQUENCE_ID, 0)
    return None


def find_boundary(
    conn: Connection, d: Dialect, project_id: str, conversation_id: str, digest: str
) -> Boundary | None:
    row = first(
        conn,
        sa.select(bd.app_id, bd.sequence_id, bd["items"])
        .where(bd.project_id == project_id, bd.digest == digest)
        .where(_of_conversation(d, bd.app_id, conversation_id))
        .order_by(bd.written_at.desc(), bd.sequence_id.desc()),
    )
    return Boundary(*row) if row else None
