"""The relay's rows: how a process asks another one about a reply it is writing.

Written only when a client reaches a process other than the one running its
conversation's reply (``chatbot.relay`` has the protocol; this module only stores the
JSON text it encodes). ``chatbot_reply_signals`` holds a request (``watch`` or ``stop``)
about a conversation and, on the same row, the answer of the process holding the reply;
the asker deletes it once answered, and rows of dead processes are swept.
``chatbot_reply_events`` holds a reply's events mirrored for readers elsewhere, one row
per batch (a range of event indexes, as one JSON array). A dialect only wakes the other
processes up after a write (PostgreSQL's notifications).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chatbot.database.dialect import Change, Dialect, clock_params
from chatbot.database.prepared import Prepared
from chatbot.database.tables import conversations, leases, reply_events, signals

SIGNALS_TABLE = signals.name
EVENTS_TABLE = reply_events.name
SignalKind = Literal["watch", "stop"]


class Signal(NamedTuple):
    """A request some process made about a conversation, waiting for its holder."""

    id: int
    project_id: str
    app_id: str
    kind: SignalKind


class WatchAnswer(NamedTuple):
    """Which reply a watcher should read, and whether it is still being written.

    ``rank`` orders the answers of several processes (a newer reply higher, the one
    being written highest); an answer only replaces a lower one.
    """

    reply_id: str
    running: bool
    rank: int


class StopAnswer(NamedTuple):
    """How far the holder of a reply has got with a stop signal.

    ``taken`` is written before the holder stops the reply and ``outcome`` (JSON;
    ``null``: nothing stopped) once the stopped turn is stored, so an asker that sees the
    lease released while the stop is taken waits for the outcome rather than mistake the
    stop's own release for a turn that ended by itself.
    """

    taken: bool
    outcome: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class MirroredBatch:
    """Events ``first_index`` to ``next_index - 1`` of one reply, as a JSON array;
    ``done``: the reply's last batch."""

    project_id: str
    app_id: str
    reply_id: str
    first_index: int
    next_index: int
    done: bool
    payload: str


class Activity(NamedTuple):
    """What the database says about a conversation before anyone is asked about it: a
    live turn lease (some process writes a reply, or died doing so), the turns stored,
    and whether one was stored within the window asked about (its reply may be readable)."""

    turn_running: bool
    stored_turns: int
    recently_stored: bool


_BATCH = [reply_events.c[name] for name in MirroredBatch.__dataclass_fields__]
_WANTS_ANSWER = sa.or_(
    sa.and_(signals.c.kind == "watch", sa.or_(signals.c.running.is_(None), ~signals.c.running)),
    sa.and_(signals.c.kind == "stop", signals.c.outcome.is_(None)),
)
_ROWS_PER_STATEMENT = 100  # well under SQLite's limit on bound parameters


class RelayTable:
    """The relay's statements on one database; every method is one short round trip."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        # The poll every process runs about ten times a second while it holds replies,
        # built once: "since" is "now" less the window (``clock_params``' ``ttl``).
        s, (_, since) = signals.c, dialect.lease_clock()
        pending = sa.select(s.id, s.project_id, s.app_id, s.kind).where(s.created_at > since)
        self._pending = Prepared(pending.where(_WANTS_ANSWER).order_by(s.id))

    async def _run(self, statement: sa.Executable) -> tuple[list[sa.Row], int]:
        """One statement; answers its rows and how many rows it changed."""

        def run(conn: Connection) -> tuple[list[sa.Row], int]:
            result = conn.execute(statement)
            return (result.all() if result.returns_rows else []), result.rowcount

        return await self._dialect.run(run, side=True)

    async def wait_for_change(self, kind: Change, within_s: float) -> None:
        """Until rows of this kind may have changed (PostgreSQL tells), at most ``within_s``."""
        await self._dialect.wait_for_change(kind, within_s)

    # --- signals ------------------------------------------------------------------------
    async def add_signal(self, project_id: str, app_id: str, kind: SignalKind) -> int:
        """Ask whoever holds the conversation's reply; answers the signal's id."""
        added = signals.insert().values(
            project_id=project_id, app_id=app_id, kind=kind, created_at=self._dialect.now()
        )
        ((signal_id,),), _ = await self._run(added.returning(signals.c.id))
        await self._dialect.notify("signals")
        return signal_id

    async def pending_signals(self, within_s: float) -> list[Signal]:
        """Signals of the last ``within_s`` seconds that still want an answer (a watch
        answered with a finished reply still does: a reply being written outranks it)."""
        d, pending, params = self._dialect, self._pending, clock_params(-within_s)
        rows = await d.run(lambda conn: pending.rows(d, conn, params), side=True)
        return [Signal(*row) for row in rows]

    async def answer_watch(self, signal_id: int, answer: WatchAnswer) -> None:
        """Answer a watch, unless an answer of equal or higher rank is already there."""
        s = signals.c
        _, answered = await self._run(
            signals.update()
            .where(s.id == signal_id, sa.or_(s.rank.is_(None), s.rank < answer.rank))
            .values(reply_id=answer.reply_id, running=answer.running, rank=answer.rank)
        )
        if answered:
            await self._dialect.notify("replies")

    async def watch_answer(self, signal_id: int) -> WatchAnswer | None:
        s = signals.c
        rows, _ = await self._run(
            sa.select(s.reply_id, s.running, s.rank).where(
                s.id == signal_id, s.reply_id.is_not(None)
            )
        )
        return WatchAnswer(rows[0].reply_id, bool(rows[0].running), rows[0].rank) if rows else None

    async def take_stop(self, signal_id: int, reply_id: str) -> None:
        """Say that this process holds the reply and is stopping it (before it does)."""
        # No notification: the asker has nothing to do until the answer.
        s = signals.c
        await self._run(
            signals.update()
            .where(s.id == signal_id, s.reply_id.is_(None))
            .values(reply_id=reply_id)
        )

    async def answer_stop(self, signal_id: int, outcome: str) -> None:
        """Answer a stop with the stopped turn's outcome (JSON; ``null``: nothing stopped)."""
        s = signals.c
        _, answered = await self._run(
            signals.update().where(s.id == signal_id, s.outcome.is_(None)).values(outcome=outcome)
        )
        if answered:
            await self._dialect.notify("replies")

    async def stop_answer(self, signal_id: int) -> StopAnswer | None:
        """How far the stop has got; None when the signal is gone."""
        s = signals.c
        rows, _ = await self._run(sa.select(s.reply_id, s.outcome).where(s.id == signal_id))
        return StopAnswer(rows[0].reply_id is not None, rows[0].outcome) if rows else None

    async def drop_signal(self, signal_id: int) -> None:
        await self._run(signals.delete().where(signals.c.id == signal_id))

    # --- mirrored events ----------------------------------------------------------------
    async def write_batches(self, batches: Sequence[MirroredBatch]) -> None:
        """Insert the batches (of any replies) together.

        A batch that starts where an earlier one did holds all of it and more (the
        earlier one was empty): it replaces it.
        """
        if not batches:
            return
        now = self._dialect.now()
        for start in range(0, len(batches), _ROWS_PER_STATEMENT):
            chunk = batches[start : start + _ROWS_PER_STATEMENT]
            rows = self._dialect.insert(reply_events).values(
                [{**dataclasses.asdict(b), "created_at": now} for b in chunk]
            )
            await self._run(
                rows.on_conflict_do_update(
                    index_elements=["project_id", "app_id", "reply_id", "first_index"],
                    set_={
                        c: rows.excluded[c] for c in ("next_index", "done", "payload", "created_at")
                    },
                )
            )
        await self._dialect.notify("replies")

    async def read_batches(
        self, project_id: str, app_id: str, reply_id: str, start: int
    ) -> list[MirroredBatch]:
        """In index order: the batches holding events from index ``start`` on, one that
        starts there (even empty), and the last one (marked done) if it is written."""
        e = reply_events.c
        rows, _ = await self._run(
            sa.select(*_BATCH)
            .where(
                e.project_id == project_id,
                e.app_id == app_id,
                e.reply_id == reply_id,
                sa.or_(e.next_index > start, e.first_index >= start, e.done),
            )
            .order_by(e.first_index)
        )
        return [MirroredBatch(*row[:5], bool(row.done), row.payload) for row in rows]

    async def mirror_exists(self, project_id: str, app_id: str, reply_id: str) -> bool:
        e = reply_events.c
        rows, _ = await self._run(
            sa.select(sa.literal(1))
            .where(e.project_id == project_id, e.app_id == app_id, e.reply_id == reply_id)
            .limit(1)
        )
        return bool(rows)

    async def drop_mirrors(self, replies: Sequence[tuple[str, str, str]]) -> None:
        """Delete the batches of these (project_id, app_id, reply_id)."""
        if not replies:
            return
        key = sa.tuple_(reply_events.c.project_id, reply_events.c.app_id, reply_events.c.reply_id)
        await self._run(reply_events.delete().where(key.in_(list(replies))))

    # --- housekeeping -------------------------------------------------------------------
    async def activity(self, project_id: str, app_id: str, stored_within_s: float) -> Activity:
        """Whether a turn of the conversation is running, how many are stored, and whether
        the last one was stored within ``stored_within_s`` seconds."""
        now, lc, c = self._dialect.now, leases.c, conversations.c
        this = (c.project_id == project_id, c.app_id == app_id)
        ((running, turns, recent),), _ = await self._run(
            sa.select(
                sa.exists().where(
                    lc.project_id == project_id, lc.app_id == app_id, lc.expires_at > now()
                ),
                sa.select(c.turns).where(*this).scalar_subquery(),
                sa.select(c.updated_at > now(-stored_within_s)).where(*this).scalar_subquery(),
            )
        )
        return Activity(bool(running), turns or 0, bool(turns) and bool(recent))

    async def sweep(self, signals_older_than_s: float, mirrors_idle_s: float) -> None:
        """Drop signals older than the first bound, and mirrors whose newest batch is older
        than the second: rows their processes left behind when they died."""
        now, e = self._dialect.now, reply_events.c
        await self._run(signals.delete().where(signals.c.created_at < now(-signals_older_than_s)))
        key = sa.tuple_(e.project_id, e.app_id, e.reply_id)
        idle = (
            sa.select(e.project_id, e.app_id, e.reply_id)
            .group_by(e.project_id, e.app_id, e.reply_id)
            .having(sa.func.max(e.created_at) < now(-mirrors_idle_s))
        )
        await self._run(reply_events.delete().where(key.in_(idle)))
