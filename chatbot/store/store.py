"""The conversation store: a Burr persister (``base`` says how it is used) and the rest.

Saving is a group commit: turns that finish together in one process are written in one
transaction (one fsync on SQLite), in a fixed handful of statements however many they are."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from typing import Any, Literal

import sqlalchemy as sa
from burr.core import State
from burr.core.persistence import AsyncBaseStateLoader, AsyncBaseStateSaver, PersistedStateData
from sqlalchemy.engine import Connection

from chatbot.database import migrate
from chatbot.database.dialect import DATABASE_ERRORS, Dialect, T, Work, reason, utcnow
from chatbot.database.errors import StoreUnavailable
from chatbot.database.prepared import Prepared
from chatbot.database.tables import conversations, history_digests, states
from chatbot.domain.branch_ids import conversation_of
from chatbot.domain.branch_tree import BranchRecord
from chatbot.domain.chat_items import summarise
from chatbot.domain.client_view import history_digest
from chatbot.store import branches as branch_sql
from chatbot.store.base import (
    PARTITION_KEY_DEFAULT,
    SNAPSHOTS_KEPT,
    Boundary,
    ConversationSummary,
    NewBranch,
    TurnLease,
    TurnLeaseLost,
    decode_state,
    encode_state,
)
from chatbot.store.branches import HISTORY_KEY, START_SEQUENCE_ID, TurnRows
from chatbot.store.leases import LeaseCheck, Leases

st, cv = states.c, conversations.c
# The statements of every turn's reads, built once.
_SHOWN = Prepared(branch_sql.shown_query(sa.bindparam("p"), sa.bindparam("c")))
_LOADED = (st.position, st.state, st.sequence_id, st.app_id, st.created_at, st.status)
_LOAD = sa.select(*_LOADED).where(st.partition_key == sa.bindparam("pk"))
_LOAD_ANY = Prepared(_LOAD.order_by(st.created_at.desc(), st.sequence_id.desc()).limit(1))
_LOAD_APP = _LOAD.where(st.app_id == sa.bindparam("app_id"))
_LOAD_LATEST = Prepared(_LOAD_APP.order_by(st.sequence_id.desc()).limit(1))
_LOAD_AT = Prepared(_LOAD_APP.where(st.sequence_id == sa.bindparam("sequence_id")).limit(1))
# A stateless client's turn (/v1) looks its conversation up by the history it sent.
_hd = history_digests.c
_BY_HISTORY = Prepared(
    sa.select(_hd.app_id)
    .where(_hd.project_id == sa.bindparam("p"), _hd.digest == sa.bindparam("digest"))
    .order_by(_hd.updated_at.desc())
    .limit(1)
)


@dataclass(slots=True)
class _PendingSave:
    """One turn waiting for the next group commit."""

    row: dict  # Burr's row
    branch: TurnRows  # its boundary and branch rows
    summary: dict  # its branch's digest and its conversation's summary, if that branch shows
    token: uuid.UUID | None
    check: LeaseCheck  # what the commit does to the lease (``token``)
    done: asyncio.Future


class ConversationStore(AsyncBaseStateLoader, AsyncBaseStateSaver):
    """States in Burr's ``burr_state`` layout, summaries, branches and turn leases."""

    def __init__(self, dialect: Dialect, *, lease_ttl_s: float) -> None:
        self.dialect = dialect
        self._open = False
        self._leases = Leases(dialect, ttl_s=lease_ttl_s)
        self._pending: list[_PendingSave] = []
        # A group commit takes what is pending when its transaction starts (on SQLite, in
        # the connection's thread), so the saves queued meanwhile join it.
        self._pending_lock = threading.Lock()
        self._flushers: set[asyncio.Task[None]] = set()  # the group commits in flight

    def __repr__(self) -> str:
        return f"ConversationStore({self.where!r})"

    @property
    def where(self) -> str:
        """The database, for messages and logs (never with a password)."""
        return self.dialect.where

    async def initialize(self) -> None:
        """Open the database and migrate its schema; raises ``StoreUnavailable`` when that
        is impossible (``SchemaTooNew`` when a newer release migrated it)."""
        d = self.dialect
        try:
            await d.open()
            await migrate.upgrade(d)
            await d.keep_alive()
        except (StoreUnavailable, *DATABASE_ERRORS, ValueError) as exc:  # ValueError: a bad URL
            await d.close()
            if isinstance(exc, StoreUnavailable):
                raise
            if isinstance(exc, DATABASE_ERRORS):
                raise StoreUnavailable(d.unavailable(exc)) from exc
            raise StoreUnavailable(f"invalid database URL {self.where}: {exc}") from exc
        self._leases.start()
        self._open = True

    async def is_initialized(self) -> bool:
        """True once the database is open and has Burr's state table (Burr asks before use)."""
        return self._open and await self.dialect.run(lambda c: sa.inspect(c).has_table(states.name))

    async def close(self) -> None:
        if not self._open:
            return
        self._open = False
        await self._leases.stop()
        await asyncio.gather(*self._flushers, return_exceptions=True)
        await self.dialect.close()

    async def ping(self) -> None:
        """Readiness: one cheap round trip; raise ``StoreUnavailable`` if it does not answer."""
        if not self._open:
            raise StoreUnavailable(f"the store for {self.where} is closed")
        try:
            async with asyncio.timeout(10):
                await self.dialect.run(lambda conn: conn.execute(sa.select(sa.literal(1))))
        except Exception as exc:  # whatever broke the round trip, the answer is "not ready"
            message = f"the database at {self.where} does not answer: {reason(exc)}"
            raise StoreUnavailable(message) from exc

    async def load(
        self,
        partition_key: str | None,
        app_id: str | None,
        sequence_id: int | None = None,
        **kwargs: Any,
    ) -> PersistedStateData | None:
        """The state at ``sequence_id``, or the latest one; with no ``app_id``, the partition's
        most recently written state (Burr's contract). None when there is nothing stored."""
        pk = partition_key if partition_key is not None else PARTITION_KEY_DEFAULT
        return await self._on(_load, pk, app_id, sequence_id, quick=True)

    async def save(
        self,
        partition_key: str | None,
        app_id: str,
        sequence_id: int,
        position: str,
        state: State,
        status: Literal["completed", "failed"],
        new_branch: NewBranch | None = None,
        ends_turn: bool = False,
        cut_turn: bool = False,
        **kwargs: Any,
    ) -> None:
        """Store a turn's final state, its branch's rows and its conversation's summary in the
        next group commit. ``app_id`` is a branch; ``new_branch`` records one on its first turn.
        Raises ``TurnLeaseLost`` when this process holds the conversation's lease no more.

        ``ends_turn``: this is the turn's last write, and the commit that stores it also
        releases the conversation's lease (the lease's ``release`` then has nothing left to
        delete): a turn's writes are two (taking the lease, this commit), not three.
        ``cut_turn``: this stores the turn a dead process cut, under the lease of a turn yet
        to run, whose prompt the lease keeps."""
        if ends_turn and cut_turn:
            raise ValueError("a cut turn's write is never the last of the turn holding the lease")
        project_id = partition_key if partition_key is not None else PARTITION_KEY_DEFAULT
        token = self._leases.fencing_token(project_id, conversation_of(app_id))
        ends_turn = ends_turn and token is not None  # else no lease here to release
        check = (
            LeaseCheck.ENDS if ends_turn else LeaseCheck.KEEPS if cut_turn else LeaseCheck.STORES
        )
        values = state.get_all()
        history = values.get(HISTORY_KEY, [])
        row = {"partition_key": project_id, "app_id": app_id, "sequence_id": sequence_id,
               "position": position, "state": encode_state(state), "status": status}  # fmt: skip
        digest, (title, turns) = history_digest(history), summarise(history)
        branch = TurnRows.of(
            project_id, app_id, sequence_id, position, status, values, digest, new_branch
        )
        summary = {"s_project": project_id, "s_conversation": branch.conversation_id,
                   "s_branch": app_id, "s_title": title, "s_turns": turns,
                   "s_digest": digest}  # fmt: skip
        done = asyncio.get_running_loop().create_future()
        if ends_turn and token is not None:
            self._leases.ending(token)
        with self._pending_lock:
            self._pending.append(_PendingSave(row, branch, summary, token, check, done))
        if len(self._flushers) < self.dialect.parallel_commits:
            self._flushers.add(asyncio.create_task(self._flush()))
        await asyncio.shield(done)

    async def _flush(self) -> None:
        try:
            await self._commit_pending()
        finally:
            # At once, not in a done callback: a save arriving in between would find the
            # flushers all busy, start none, and wait forever.
            self._flushers.discard(asyncio.current_task())  # type: ignore[arg-type]

    async def _commit_pending(self) -> None:
        while self._pending:
            batch: list[_PendingSave] = []
            try:
                lost = await self.dialect.run(partial(self._write, batch=batch), write=True)
            except BaseException as exc:
                error = exc if isinstance(exc, Exception) else RuntimeError(exc)
                for entry in batch or self._take():
                    # Not known to be stored: the lease's ``release`` deletes it as before.
                    self._ended(entry, dropped=False)
                    _settle(entry.done, error)
                if error is not exc:
                    raise
            else:
                for entry in batch:
                    where = f"{entry.row['partition_key']}/{entry.branch.conversation_id}"
                    self._ended(entry, dropped=entry not in lost)
                    _settle(entry.done, TurnLeaseLost(where) if entry in lost else None)

    def _ended(self, entry: _PendingSave, *, dropped: bool) -> None:
        if entry.check is LeaseCheck.ENDS and entry.token is not None:
            key = (entry.row["partition_key"], entry.branch.conversation_id)
            self._leases.ended(key, entry.token, dropped=dropped)

    def _take(self) -> list[_PendingSave]:
        with self._pending_lock:
            taken, self._pending = self._pending, []
        return taken

    def _write(self, conn: Connection, *, batch: list[_PendingSave]) -> list[_PendingSave]:
        """One transaction for what is pending (put in ``batch``); answers the saves not
        written: their lease was lost."""
        batch.extend(self._take())
        d = self.dialect
        checks: dict[LeaseCheck, list[uuid.UUID]] = {}
        for e in batch:
            if e.token is not None:
                checks.setdefault(e.check, []).append(e.token)
        held = self._leases.held(conn, checks)
        written = [e for e in batch if e.token is None or e.token in held]
        lost = [e for e in batch if e.token is not None and e.token not in held]
        if not written:
            return lost
        now = utcnow()  # for SQLite's statements; PostgreSQL's take the database's now()
        burr_row, *per_branch = _commit_statements(d)
        burr_row.run_many(d, conn, [e.row for e in written], by_keys=True)
        branch_sql.write_turns(conn, d, [e.branch for e in written], now)
        # One row per branch: its latest save's (a batch rarely holds two of one branch).
        latest = {(e.row["partition_key"], e.row["app_id"]): e.summary for e in written}
        rows = [{**summary, "now": now} for summary in latest.values()]
        for statement in per_branch:
            statement.run_many(d, conn, rows)
        return lost

    async def list_app_ids(self, partition_key: str, **kwargs: Any) -> list[str]:
        """The app IDs with stored states in a partition, most recently written first."""
        pk = partition_key if partition_key is not None else PARTITION_KEY_DEFAULT
        ids = sa.select(st.app_id).where(st.partition_key == pk).group_by(st.app_id)
        newest = ids.order_by(sa.func.max(st.created_at).desc(), st.app_id)
        return await self.dialect.run(lambda conn: list(conn.execute(newest).scalars()))

    async def load_state(self, project_id: str, app_id: str) -> State | None:
        """The latest stored state of a conversation, or None if it has none yet."""
        loaded = await self.load(project_id, app_id)
        return loaded["state"] if loaded is not None else None

    async def create(self, project_id: str, app_id: str) -> bool:
        """Register a conversation; False if it already existed."""
        d, now = self.dialect, self.dialect.now()
        row = d.insert(conversations).values(
            project_id=project_id, app_id=app_id, title="", turns=0, created_at=now, updated_at=now
        )
        insert = row.on_conflict_do_nothing()
        return await d.run(lambda conn: conn.execute(insert).rowcount > 0, write=True)

    async def exists(self, project_id: str, app_id: str) -> bool:
        found = sa.select(sa.literal(1)).where(cv.project_id == project_id, cv.app_id == app_id)
        return await self.dialect.run(lambda conn: conn.execute(found.limit(1)).first()) is not None

    async def list(
        self, project_id: str, limit: int, offset: int
    ) -> tuple[list[ConversationSummary], int]:
        """A page of conversations, most recently active first, and the total count."""
        total = sa.select(sa.func.count()).where(cv.project_id == project_id)
        page = sa.select(cv.app_id, cv.title, cv.turns, cv.created_at, cv.updated_at)
        page = page.where(cv.project_id == project_id).order_by(cv.updated_at.desc(), cv.app_id)
        page = page.limit(limit).offset(offset)

        def listing(conn: Connection) -> tuple[list[ConversationSummary], int]:
            rows = conn.execute(page)
            return [ConversationSummary(*row) for row in rows], conn.execute(total).scalar_one()

        return await self.dialect.run(listing)

    async def delete(self, project_id: str, app_id: str) -> bool:
        """Remove the conversation and every row of its branches; False if there was none."""
        return await self._on(branch_sql.delete_conversation, project_id, app_id, write=True)

    async def acquire_turn(
        self,
        project_id: str,
        app_id: str,
        *,
        first: Work[None] | None = None,
        prompt: str | None = None,
    ) -> TurnLease:
        """Take the conversation's turn lease or raise ``ConversationBusy`` (or what
        ``first``, run in the same transaction before, raises: ``Leases.acquire``)."""
        return await self._leases.acquire(project_id, app_id, first=first, prompt=prompt)

    async def lapsed_turns(self) -> list[tuple[str, str]]:
        """(project, conversation) of turns cut by their process's death, not yet stored."""
        return await self._leases.lapsed()

    async def find_by_history(self, project_id: str, digest: str) -> str | None:
        """The conversation whose latest stored history has ``digest`` (the most recently
        written one if several have), or None."""
        d, params = self.dialect, {"p": project_id, "digest": digest}
        found = await d.run(lambda conn: _BY_HISTORY.first(d, conn, params), quick=True)
        return found[0] if found is not None else None

    async def branches(self, project_id: str, conversation_id: str) -> list[BranchRecord]:
        """Every branch of a conversation, by creation order; empty if nothing is stored."""
        return await self._on(branch_sql.branch_records, project_id, conversation_id)

    async def shown_branch(self, project_id: str, conversation_id: str) -> str:
        """The Burr app id a turn or ``/history`` loads: the greatest ``shown``, else the
        conversation id itself (one cheap query: it runs once per turn)."""
        d, params = self.dialect, {"p": project_id, "c": conversation_id}
        shown = await d.run(lambda conn: _SHOWN.first(d, conn, params), quick=True)
        return shown[0] if shown is not None else conversation_id

    async def show_branch(self, project_id: str, conversation_id: str, app_id: str) -> bool:
        """Make ``app_id`` the shown branch (the listing shows its title and turn count);
        False if it is no branch of that conversation."""
        return await self._on(
            branch_sql.show_branch, project_id, conversation_id, app_id, write=True
        )

    async def boundary(self, project_id: str, app_id: str, items: int) -> Boundary | None:
        """The branch's stored boundary holding exactly ``items`` items, or None (for 0, the
        state before the branch's first step, sequence id -1, once it has stored turns)."""
        return await self.dialect.run(lambda c: branch_sql.boundary(c, project_id, app_id, items))

    async def find_boundary(
        self, project_id: str, conversation_id: str, digest: str
    ) -> Boundary | None:
        """The most recently written boundary of any branch of the conversation whose
        history digest (``chatbot.domain.client_view.history_digest``) is ``digest``."""
        return await self._on(branch_sql.find_boundary, project_id, conversation_id, digest)

    async def _on(
        self, operation: Callable[..., T], *args: Any, write: bool = False, quick: bool = False
    ) -> T:
        """``operation(connection, dialect, *args)`` on the database."""
        d = self.dialect
        return await d.run(lambda conn: operation(conn, d, *args), write=write, quick=quick)


def _load(
    conn: Connection, d: Dialect, pk: str, app_id: str | None, sequence_id: int | None
) -> PersistedStateData | None:
    """``load`` on a connection (see there)."""
    if app_id is not None and sequence_id == START_SEQUENCE_ID:
        return branch_sql.load_boundary(conn, d, pk, app_id, sequence_id)
    query = _LOAD_ANY if app_id is None else _LOAD_LATEST if sequence_id is None else _LOAD_AT
    row = query.first(d, conn, {"pk": pk, "app_id": app_id, "sequence_id": sequence_id})
    if row is None:
        if app_id is None or sequence_id is None:
            return None
        # Pruned: rebuilt from the turn's boundary row and the branch's latest snapshot.
        return branch_sql.load_boundary(conn, d, pk, app_id, sequence_id)
    position, state, sequence_id, app_id, created_at, status = row
    return {"partition_key": pk, "app_id": app_id, "sequence_id": sequence_id, "position": position,
            "state": decode_state(state), "created_at": created_at, "status": status}  # fmt: skip


@cache
def _commit_statements(d: Dialect) -> tuple[Prepared, ...]:
    """The group commit's statements, built once: Burr's row (one per turn), then, one row
    per saved branch, the summary (its title and turn count are the shown branch's), the
    digest, and the pruning that keeps the branch's newest SNAPSHOTS_KEPT states: one
    statement where the database chains writes (``chains_writes``)."""
    now, project, branch = d.commit_time(), sa.bindparam("s_project"), sa.bindparam("s_branch")
    conversation = sa.bindparam("s_conversation")
    row = d.insert(states)
    burr_row = row.on_conflict_do_update(
        index_elements=["partition_key", "app_id", "sequence_id", "position"],
        set_={c: row.excluded[c] for c in ("state", "status", "created_at")},
    )
    row = d.insert(conversations).values(
        project_id=project, app_id=conversation, title=sa.bindparam("s_title"),
        turns=sa.bindparam("s_turns"), created_at=now, updated_at=now)  # fmt: skip
    shown = branch_sql.shown_query(project, conversation).scalar_subquery()
    is_shown = sa.func.coalesce(shown, conversation) == branch  # is the saved branch shown?
    from_shown = {c: sa.case((is_shown, row.excluded[c]), else_=cv[c]) for c in ("title", "turns")}
    summary = row.on_conflict_do_update(
        index_elements=["project_id", "app_id"],
        set_={**from_shown, "updated_at": row.excluded.updated_at},
    )
    row = d.insert(history_digests).values(
        project_id=project, app_id=branch, digest=sa.bindparam("s_digest"), updated_at=now
    )
    digest = row.on_conflict_do_update(
        index_elements=["project_id", "app_id"],
        set_={"digest": row.excluded.digest, "updated_at": row.excluded.updated_at},
    )
    this = (st.partition_key == project, st.app_id == branch)
    newest = sa.select(st.sequence_id).where(*this).order_by(st.sequence_id.desc())
    prune = states.delete().where(*this, st.sequence_id.not_in(newest.limit(SNAPSHOTS_KEPT)))
    if d.chains_writes:  # the pruning sees Burr's rows: they were written by an earlier statement
        chained = summary.add_cte(digest.cte("digest")).add_cte(prune.cte("prune"))
        return Prepared(burr_row), Prepared(chained)
    return tuple(Prepared(statement) for statement in (burr_row, summary, digest, prune))


def _settle(done: asyncio.Future, error: Exception | None) -> None:
    if not done.done():
        done.set_exception(error) if error is not None else done.set_result(None)
