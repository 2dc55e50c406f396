"""Turn leases in the database: one turn at a time per conversation, in every process.

A lease is a row, taken by one statement that succeeds only when no live lease exists:
no connection is held while a reply streams (an advisory lock would pin one per stream).
Its expiry is pushed back every third of the TTL by one task per process, so a dead
process's leases lapse; its random token fences the final write, so a turn whose lease
was taken over (its process stalled past the expiry) cannot store its state.

A turn's lease also carries its prompt until the turn is stored (the final write clears
it, in the statement that checks the token). A row that expires with a prompt in it is a
turn whose process died before storing it: whoever takes the row over gets that prompt
back (``lapsed_prompt``), in the same statement, to store the cut turn
(``chatbot.conversations.leases``). That write is made under the taker's lease, which
then carries the taker's own prompt: it keeps it (``LeaseCheck.KEEPS``), so a taker that
dies in turn leaves its own turn to be stored as cut too.

A turn's own final write goes further: the statement that checks its token deletes the
row, so the commit that stores the turn also releases its lease, with no write of its own
(``ending``). A turn then writes twice: taking its lease, and that commit.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chatbot.database.dialect import Dialect, Work, clock_params
from chatbot.database.prepared import Prepared
from chatbot.database.tables import Token, leases
from chatbot.store.base import ConversationBusy, TurnLease, TurnLeaseLost

logger = logging.getLogger(__name__)

LeaseKey = tuple[str, str]  # (project_id, app_id)
# Renewal ticks between sweeps of the leases dead processes left, expired this long ago.
SWEEP_EVERY_TICKS, _SWEPT_AFTER_S = 100, 3600.0
_LAPSED_PER_LOOK = 20


class LeaseCheck(enum.Enum):
    """What a write's commit does to the lease row it checks (and locks)."""

    STORES = "stores"  # a turn is stored: its prompt leaves the row
    ENDS = "ends"  # a turn's last write: the row goes, the lease released with the commit
    KEEPS = "keeps"  # a cut turn stored under the lease of a turn yet to run: the row stays


class _Lease:
    """One turn lease of this process (a ``TurnLease``)."""

    __slots__ = ("_key", "_keeper", "lapsed_prompt", "token")

    def __init__(
        self, keeper: Leases, key: LeaseKey, token: uuid.UUID, lapsed_prompt: str | None
    ) -> None:
        self._keeper: Leases | None = keeper
        self._key = key
        self.token = token
        self.lapsed_prompt = lapsed_prompt

    async def release(self) -> None:
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            await keeper._release(self._key, self.token)


class Leases:
    """This process's leases in one database: acquire, release, renew, and fence writes
    (taking, renewing and dropping are each one short autocommit statement, but a turn's
    lease is usually dropped by the commit that stores the turn)."""

    def __init__(self, dialect: Dialect, *, ttl_s: float) -> None:
        self._dialect = dialect
        self.ttl_s = float(ttl_s)
        # Conversations with a turn here (held or being acquired): refused with no round trip.
        self._busy: set[LeaseKey] = set()
        self._held: dict[LeaseKey, uuid.UUID] = {}
        self._lost: set[uuid.UUID] = set()
        # Leases whose turn's final write is queued to drop them (``ending``), and those it
        # dropped, which ``release`` then only forgets.
        self._ending: set[uuid.UUID] = set()
        self._dropped: set[uuid.UUID] = set()
        self._renewer: asyncio.Task[None] | None = None
        # A turn's statements, built once.
        now, expires = dialect.lease_clock()
        p, a, token = sa.bindparam("p"), sa.bindparam("a"), sa.bindparam("token", type_=Token)
        c = leases.c
        row = dialect.insert(leases).values(
            project_id=p, app_id=a, token=token, acquired_at=now, expires_at=expires,
            holder=f"{socket.gethostname()}:{os.getpid()}"[:200],  # for people reading it
            prompt=sa.bindparam("prompt", type_=sa.Text),
        )  # fmt: skip
        taken_over = ("token", "holder", "acquired_at", "expires_at", "prompt")
        take = row.on_conflict_do_update(
            index_elements=["project_id", "app_id"],
            # ``c.prompt`` here is the expired row's: the prompt of a turn that was cut.
            set_={**{n: row.excluded[n] for n in taken_over}, "lapsed_prompt": c.prompt},
            where=c.expires_at < now,  # free, or expired
        )
        self._take = Prepared(take.returning(c.token, c.lapsed_prompt))
        drop = leases.delete().where(c.project_id == p, c.app_id == a, c.token == token)
        self._drop = Prepared(drop)
        # The final write's check that its leases are still in place locks their rows (as
        # SELECT ... FOR UPDATE would) and clears their prompts: the turns are stored. A
        # turn's own final write checks its lease by deleting it: the same lock, and the
        # lease is released when the turn is stored. A cut turn's write, made under the
        # lease of a turn yet to run, locks the row and leaves it that turn's prompt.
        self._checks = {
            kind: (Prepared(done.where(c.token == token).returning(c.token)),
                   done.where(dialect.one_of(c.token, "tokens")).returning(c.token))
            for kind, done in (
                (LeaseCheck.STORES, leases.update().values(prompt=None)),
                (LeaseCheck.ENDS, leases.delete()),
                (LeaseCheck.KEEPS, leases.update().values(prompt=c.prompt)),
            )
        }  # fmt: skip
        lapsed = sa.select(c.project_id, c.app_id).where(c.expires_at < now, c.prompt.is_not(None))
        self._lapsed = Prepared(lapsed.order_by(c.expires_at).limit(_LAPSED_PER_LOOK))

    def start(self) -> None:
        self._renewer = asyncio.get_running_loop().create_task(self._renew_forever())

    async def stop(self) -> None:
        renewer, self._renewer = self._renewer, None
        if renewer is not None:
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)

    async def acquire(
        self,
        project_id: str,
        app_id: str,
        *,
        first: Work[None] | None = None,
        prompt: str | None = None,
    ) -> TurnLease:
        """The lease, or ``ConversationBusy``. ``first`` runs in the same transaction just
        before it is taken, and may refuse it by raising (a quota counting leases).
        ``prompt``: the turn's, kept in the row until the turn is stored."""
        key = (project_id, app_id)
        if key in self._busy:
            raise ConversationBusy(f"{project_id}/{app_id}")
        self._busy.add(key)
        d, token, take = self._dialect, uuid.uuid4(), self._take
        params = {"p": project_id, "a": app_id, "token": token, "prompt": prompt}
        params.update(clock_params(self.ttl_s))

        def free(conn: Connection) -> tuple | None:
            return take.first(d, conn, params)

        def checked(conn: Connection) -> tuple | None:
            assert first is not None
            first(conn)
            return free(conn)

        try:
            if first is None:
                granted = await d.run(free, side=True)
            else:
                granted = await d.run(checked, write=True, side=True)
        except BaseException:
            self._busy.discard(key)
            raise
        if granted is None:
            self._busy.discard(key)
            raise ConversationBusy(f"{project_id}/{app_id}")
        self._held[key] = token
        return _Lease(self, key, token, granted[1])

    async def lapsed(self) -> list[LeaseKey]:
        """Conversations whose lease expired with its turn unstored (its process died),
        the longest expired first, a few at a time."""
        d, query, params = self._dialect, self._lapsed, clock_params()
        rows = await d.run(lambda conn: query.rows(d, conn, params), side=True)
        return [(project_id, app_id) for project_id, app_id in rows]

    def held(
        self, conn: Connection, checks: Mapping[LeaseCheck, Sequence[uuid.UUID]]
    ) -> set[uuid.UUID]:
        """Which of these leases are still in place, inside the final write's transaction: no
        taker gets between it and the commit (SQLite's write lock; PostgreSQL's row locks).
        Each is checked as its write asks (``LeaseCheck``)."""
        d = self._dialect
        found: list[Any] = []
        for kind, some in checks.items():
            one, many = self._checks[kind]
            if len(some) == 1:
                found += one.rows(d, conn, {"token": some[0]})
            elif some:
                found += conn.execute(many, {"tokens": list(some)}).all()
        return {uuid.UUID(str(token)) for (token,) in found}

    def ending(self, token: uuid.UUID) -> None:
        """A turn's final write, queued, will drop this lease (``LeaseCheck.ENDS``): until
        it is done, renewal does not take the row's absence for a takeover."""
        self._ending.add(token)

    def ended(self, key: LeaseKey, token: uuid.UUID, *, dropped: bool) -> None:
        """That final write is done; ``dropped``: it was stored and its lease is gone, so
        the lease is renewed no more and its ``release`` has nothing left to delete."""
        self._ending.discard(token)
        if dropped:
            self._dropped.add(token)
            if self._held.get(key) == token:
                del self._held[key]

    def fencing_token(self, project_id: str, app_id: str) -> uuid.UUID | None:
        """The token a final write must find still in place (None without a lease here);
        raises ``TurnLeaseLost`` when renewal already found the lease taken over."""
        token = self._held.get((project_id, app_id))
        if token is not None and token in self._lost:
            raise TurnLeaseLost(f"{project_id}/{app_id}")
        return token

    async def _release(self, key: LeaseKey, token: uuid.UUID) -> None:
        if self._held.get(key) == token:
            del self._held[key]
        self._lost.discard(token)
        d, drop, params = self._dialect, self._drop, {"p": key[0], "a": key[1], "token": token}
        try:
            if token in self._dropped:  # by its turn's final write
                self._dropped.discard(token)
                return
            await d.run(lambda conn: drop.rows(d, conn, params), side=True)
        except Exception:  # it will lapse at its expiry; the turn itself is already stored
            logger.warning("could not release the turn lease of %s/%s", *key, exc_info=True)
        finally:
            self._busy.discard(key)

    async def _renew_forever(self) -> None:
        d, ticks = self._dialect, 0
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            ticks += 1
            try:
                await d.keep_alive()
                if ticks % SWEEP_EVERY_TICKS == 0:
                    await self._sweep()
                await self._renew_once()
            except Exception:
                logger.warning("could not renew turn leases; retrying", exc_info=True)

    async def _sweep(self) -> None:
        """Drop the rows long expired (an expired lease is free: dropping it is safe)."""
        expired = leases.delete().where(leases.c.expires_at < self._dialect.now(-_SWEPT_AFTER_S))
        await self._dialect.run(lambda conn: conn.execute(expired), side=True)

    async def _renew_once(self) -> None:
        """Push back the expiry of this process's leases; those gone were taken over."""
        tokens = [token for token in self._held.values() if token not in self._lost]
        if not tokens:
            return
        renewed = leases.update().where(leases.c.token.in_(tokens)).returning(leases.c.token)
        renewed = renewed.values(expires_at=self._dialect.now(self.ttl_s))
        rows = await self._dialect.run(lambda conn: conn.execute(renewed).all(), side=True)
        held = set(self._held.values())
        for token in set(tokens) - {uuid.UUID(str(token)) for (token,) in rows}:
            if token in held and token not in self._ending:  # not released meanwhile: lost
                self._lost.add(token)
                logger.error("a turn lease lapsed and was taken over; its turn won't be saved")
