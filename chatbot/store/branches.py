"""Branches and boundaries: the rows beside Burr's snapshots that make forking work.

A branch is a Burr application (``chatbot.domain.branch_ids``) whose snapshots are pruned to the
newest few, as each holds the whole history. Forking needs every earlier point between turns, so
each stored turn also leaves a *boundary* row: the state without its history (``rest``) and that
history's length. A branch's history only grows, so its latest snapshot cut to that length is the
boundary's history: any boundary, however old, loads from two small rows and one snapshot. Writes
run in the group commit (``write_turns``); ``Dialect.forks_of`` matches a conversation's forks."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from burr.core import State
from burr.core.persistence import PersistedStateData
from sqlalchemy.engine import Connection

from chatbot.database.dialect import Dialect, utcnow
from chatbot.database.prepared import Prepared
from chatbot.database.tables import Instant, boundaries, branches, conversations, history_digests
from chatbot.database.tables import states as snapshots
from chatbot.domain.branch_ids import branch_number, conversation_of
from chatbot.domain.branch_tree import BranchRecord
from chatbot.domain.chat_items import summarise
from chatbot.domain.client_view import history_digest
from chatbot.store.base import Boundary, NewBranch

HISTORY_KEY = "chat_history"
# The state before a branch's first step: what Burr loads to fork at boundary 0.
START_SEQUENCE_ID = -1
_START = ("prompt", "completed", "{}")  # its position, status and rest
st, bd, br, cv = snapshots.c, boundaries.c, branches.c, conversations.c
_BRANCH_COLUMNS = (br.app_id, br.parent_app_id, br.fork_sequence_id, br.diverges_at, br.created,
                   br.shown, br["items"], br.created_at)  # fmt: skip
_BOUNDARY_VALUES = ("items", "position", "status", "digest", "rest", "written_at")


@dataclass(slots=True)
class TurnRows:
    """What one save writes beside Burr's snapshot row: the turn's boundary row (whose
    parameters carry its branch row's too) and, on a branch's first turn, the fork."""

    row: dict
    new_branch: NewBranch | None = None
    fork_digest: str | None = None  # the digest of the state the branch was forked from

    @classmethod
    def of(cls, project_id: str, app_id: str, sequence_id: int, position: str, status: str,
           values: dict, digest: str, new_branch: NewBranch | None) -> TurnRows:  # fmt: skip
        history = values.get(HISTORY_KEY, [])
        rest = orjson.dumps({k: v for k, v in values.items() if k != HISTORY_KEY}).decode()
        try:
            created = branch_number(app_id)
        except ValueError:  # a Burr application the chatbot did not name
            created = 0
        row = {"project_id": project_id, "app_id": app_id, "sequence_id": sequence_id,
               "items": len(history), "position": position, "status": status, "digest": digest,
               "rest": rest, "b_project": project_id, "b_conversation": conversation_of(app_id),
               "b_app": app_id, "b_created": created, "b_items": len(history)}  # fmt: skip
        at_fork = None if new_branch is None else history_digest(history[: new_branch.fork_items])
        return cls(row, new_branch, at_fork)

    @property
    def conversation_id(self) -> str:
        return self.row["b_conversation"]


def _latest(column: sa.ColumnElement, project_id: Any, app_id: Any) -> Any:
    """``column`` of the branch's latest snapshot, as a scalar subquery."""
    of_branch = sa.select(column).where(st.partition_key == project_id, st.app_id == app_id)
    return of_branch.order_by(st.sequence_id.desc()).limit(1).scalar_subquery()


def _next_shown(project_id: Any, conversation_id: Any) -> Any:
    o = branches.alias("other").c
    theirs = (o.project_id == project_id, o.conversation_id == conversation_id)
    return sa.select(sa.func.coalesce(sa.func.max(o.shown), 0) + 1).where(*theirs).scalar_subquery()


def _of_conversation(d: Dialect, app_id: sa.ColumnElement, conversation_id: str) -> Any:
    return sa.or_(app_id == conversation_id, d.forks_of(app_id, conversation_id))


@functools.cache
def _turn_statements(d: Dialect) -> tuple[Prepared, ...]:
    """The upserts of every turn's branch row and boundary row, built once (they are the
    group commit's); one statement where the database chains writes (``chains_writes``)."""
    p, c, now = sa.bindparam("b_project"), sa.bindparam("b_conversation"), d.commit_time()
    # When the conversation was created, or now for one never registered.
    created = sa.select(cv.created_at).where(cv.project_id == p, cv.app_id == c).scalar_subquery()
    created_at = sa.func.coalesce(created, sa.type_coerce(now, Instant))
    row = d.insert(branches).values(
        app_id=sa.bindparam("b_app"), parent_app_id=None, fork_sequence_id=None, diverges_at=0,
        created=sa.bindparam("b_created"), shown=0, items=sa.bindparam("b_items"), project_id=p,
        conversation_id=c, created_at=created_at)  # fmt: skip
    branch = row.on_conflict_do_update(
        index_elements=["project_id", "app_id"], set_={"items": row.excluded["items"]}
    )
    row = d.insert(boundaries).values(written_at=now)
    boundary = row.on_conflict_do_update(
        index_elements=["project_id", "app_id", "sequence_id"],
        set_={name: row.excluded[name] for name in _BOUNDARY_VALUES},
    )
    if d.chains_writes:
        return (Prepared(boundary.add_cte(branch.cte("branch"))),)
    return Prepared(branch), Prepared(boundary)


def write_turns(conn: Connection, d: Dialect, turns: Sequence[TurnRows], now: Any) -> None:
    """The branch and boundary rows of a group commit's turns (inside its transaction)."""
    rows = []
    for t in turns:
        rows.append({**t.row, "now": now})
        if t.new_branch is not None:
            rows.append({**t.row, **_record_fork(conn, d, t), "now": now})
    for statement in _turn_statements(d):  # the boundary's columns are the rows' keys
        statement.run_many(d, conn, rows, by_keys=True)


def _record_fork(conn: Connection, d: Dialect, t: TurnRows) -> dict:
    """A new branch's row; answers the boundary of the state it was forked from."""
    fork, p, c, app = t.new_branch, t.row["project_id"], t.conversation_id, t.row["app_id"]
    assert fork is not None
    new = d.insert(branches).values(
        app_id=app, parent_app_id=fork.parent_app_id, fork_sequence_id=fork.fork_sequence_id,
        diverges_at=fork.diverges_at, created=t.row["b_created"], shown=_next_shown(p, c),
        items=t.row["items"], created_at=d.now(), project_id=p, conversation_id=c)  # fmt: skip
    conn.execute(new.on_conflict_do_nothing())
    # The state it was forked from: the parent's boundary there, or the start.
    at = fork.fork_sequence_id
    there = (bd.project_id == p, bd.app_id == fork.parent_app_id, bd.sequence_id == at)
    source = first(conn, sa.select(bd.position, bd.status, bd.rest).where(*there))
    position, status, rest = source or _START
    return {"sequence_id": at, "items": fork.fork_items, "position": position, "status": status,
            "digest": t.fork_digest, "rest": rest}  # fmt: skip


def delete_conversation(conn: Connection, d: Dialect, project_id: str, conversation: str) -> bool:
    """The conversation's summary and every branch's states, boundaries, digests and rows
    (inside a write transaction); False if it had no summary."""
    summary = conversations.delete().where(cv.project_id == project_id, cv.app_id == conversation)
    deleted = conn.execute(summary).rowcount > 0
    for table in (snapshots, history_digests, boundaries):
        project = st.partition_key if table is snapshots else table.c.project_id
        of_it = _of_conversation(d, table.c.app_id, conversation)
        conn.execute(table.delete().where(project == project_id, of_it))
    theirs = (br.project_id == project_id, br.conversation_id == conversation)
    conn.execute(branches.delete().where(*theirs))
    return deleted


def load_boundary(
    conn: Connection, d: Dialect, partition_key: str, app_id: str, sequence_id: int
) -> PersistedStateData | None:
    """The state at a boundary whose snapshot was pruned (or -1, the start), else None."""
    if sequence_id == START_SEQUENCE_ID:
        if not _has_states(conn, partition_key, app_id):
            return None
        items, (position, status, rest), written_at, latest = 0, _START, utcnow(), "[]"
    else:
        this = (bd.project_id == partition_key, bd.app_id == app_id, bd.sequence_id == sequence_id)
        row = first(conn, sa.select(
            bd["items"], bd.position, bd.status, bd.rest, bd.written_at,
            _latest(d.history(st.state), partition_key, app_id)).where(*this))  # fmt: skip
        if row is None:
            return None
        items, position, status, rest, written_at, latest = row
    history = orjson.loads(latest) if latest is not None else []
    if len(history) < items:  # not this branch's prefix: nothing sound to load
        return None
    values = {**orjson.loads(rest), HISTORY_KEY: history[:items]}
    return {"partition_key": partition_key, "app_id": app_id, "sequence_id": sequence_id,
            "position": position, "state": State(values), "created_at": written_at,
            "status": status}  # fmt: skip


def first(conn: Connection, query: sa.Executable) -> Any:
    """The first row of a query, or None (a select asks for one row only)."""
    return (conn.execute(query.limit(1) if isinstance(query, sa.Select) else query)).first()


def _has_states(conn: Connection, partition_key: str, app_id: str) -> bool:
    one = sa.select(sa.literal(1)).where(st.partition_key == partition_key, st.app_id == app_id)
    return first(conn, one) is not None


def branch_records(
    conn: Connection, d: Dialect, project_id: str, conversation_id: str
) -> list[BranchRecord]:
    theirs = (br.project_id == project_id, br.conversation_id == conversation_id)
    rows = conn.execute(sa.select(*_BRANCH_COLUMNS).where(*theirs).order_by(br.created, br.app_id))
    return [BranchRecord(*row[:7], created_at=row[7]) for row in rows]


def shown_query(project_id: Any, conversation_id: Any) -> sa.Select:
    theirs = (br.project_id == project_id, br.conversation_id == conversation_id)
    return sa.select(br.app_id).where(*theirs).order_by(br.shown.desc(), br.created.desc()).limit(1)


def show_branch(
    conn: Connection, d: Dialect, project_id: str, conversation_id: str, app_id: str
) -> bool:
    """Inside a write transaction: the switch, and the listing's title and turn count
    taken from the branch now shown."""
    if conversation_of(app_id) != conversation_id:
        return False
    this = (br.project_id == project_id, br.conversation_id == conversation_id, br.app_id == app_id)
    shown = branches.update().where(*this).values(shown=_next_shown(project_id, conversation_id))
    if conn.execute(shown).rowcount == 0:
        return False
    (history,) = first(conn, sa.select(_latest(d.history(st.state), project_id, app_id)))
    if history is not None:
        title, turns = summarise(orjson.loads(history))
        summary = (cv.project_id == project_id, cv.app_id == conversation_id)
        conn.execute(conversations.update().where(*summary).values(title=title, turns=turns))
    return True


def boundary(conn: Connection, project_id: str, app_id: str, items: int) -> Boundary | None:
    this = (bd.project_id == project_id, bd.app_id == app_id, bd["items"] == items)
    found = first(conn, sa.select(bd.sequence_id).where(*this).order_by(bd.sequence_id.desc()))
    if found is not None:
        return Boundary(app_id, found.sequence_id, items)
    if items == 0 and _has_states(conn, project_id, app_id):
        return Boundary(app_id, START_SEQUENCE_ID, 0)
    return None


def find_boundary(
    conn: Connection, d: Dialect, project_id: str, conversation_id: str, digest: str
) -> Boundary | None:
    found = sa.select(bd.app_id, bd.sequence_id, bd["items"]).where(bd.project_id == project_id)
    found = found.where(bd.digest == digest, _of_conversation(d, bd.app_id, conversation_id))
    row = first(conn, found.order_by(bd.written_at.desc(), bd.sequence_id.desc()))
    return Boundary(*row) if row else None
