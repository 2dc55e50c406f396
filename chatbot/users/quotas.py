"""Per-user quotas, counted in the shared database so that every process agrees.

Three limits, each off at 0 (``CHATBOT_USER_*``): prompts a minute, replies being written
at once, and tokens a day (as the upstream reported them for completed turns; the
offline model reports them too). Prompts and tokens are rows of ``chatbot_user_usage``,
one per user and calendar minute or UTC day: a prompt is counted, or refused, in one
statement. Replies at once are the user's live turn leases, counted and taken in one
transaction (``Leases.acquire``), so a process that dies stops counting when its leases
lapse. The user is the owner of the project a turn is stored under
(``chatbot.domain.owners``); everyone is ``local`` without sign-in, so quotas then
limit the whole server.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chatbot.database.dialect import Dialect, Work, utcnow
from chatbot.database.tables import leases, user_usage
from chatbot.domain.errors import QuotaExceeded
from chatbot.domain.events import Usage
from chatbot.domain.owners import LOCAL_USER, OWNER_SEPARATOR, owner_of

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class QuotaLimits:
    prompts_per_minute: int = 0
    concurrent_replies: int = 0
    tokens_per_day: int = 0


def _minute(now: dt.datetime) -> str:
    return f"minute {now:%Y-%m-%dT%H:%M}"


def _day(now: dt.datetime) -> str:
    return f"day {now:%Y-%m-%d}"


class Quotas:
    """The quotas of every user, on one database."""

    def __init__(self, dialect: Dialect, limits: QuotaLimits) -> None:
        self._dialect = dialect
        self.limits = limits
        u = user_usage.c
        # Counts a prompt unless the minute's row is already at the limit (then no row).
        row = dialect.insert(user_usage).values(
            owner=sa.bindparam("owner"), period=sa.bindparam("period"), prompts=1, tokens=0
        )
        self._count_prompt = row.on_conflict_do_update(
            index_elements=["owner", "period"],
            set_={"prompts": u.prompts + 1},
            where=u.prompts < limits.prompts_per_minute,
        ).returning(u.prompts)
        self._tokens_used = sa.select(u.tokens).where(
            u.owner == sa.bindparam("owner"), u.period == sa.bindparam("period")
        )
        self._forget_minutes = user_usage.delete().where(
            u.owner == sa.bindparam("owner"),
            u.period.startswith("minute ", autoescape=True),
            u.period < sa.bindparam("period"),
        )
        spent = dialect.insert(user_usage).values(
            owner=sa.bindparam("owner"), period=sa.bindparam("period"), prompts=0,
            tokens=sa.bindparam("tokens"),
        )  # fmt: skip
        self._spend = spent.on_conflict_do_update(
            index_elements=["owner", "period"], set_={"tokens": u.tokens + spent.excluded.tokens}
        )

    def replies_at_once(self, project_id: str) -> Work[None] | None:
        """The check a turn of this project runs in its lease's transaction, just before
        the lease is taken (None: no limit): ``QuotaExceeded`` when its owner already has
        as many live leases as they may. One owner at a time (SQLite's write lock,
        PostgreSQL's advisory lock), so two processes cannot both take the last one."""
        limit = self.limits.concurrent_replies
        if not limit:
            return None
        d, owner, project = self._dialect, owner_of(project_id), leases.c.project_id
        if owner == LOCAL_USER:
            mine = ~project.contains(OWNER_SEPARATOR)
        else:  # narrowed in SQL, exact below (a plain owner's suffix may end a longer one)
            mine = project.endswith(f"{OWNER_SEPARATOR}{owner}", autoescape=True)
        live = sa.select(project).where(mine, leases.c.expires_at >= d.now())

        def check(conn: Connection) -> None:
            d.lock(conn, f"chatbot-running:{owner}")
            running = sum(owner_of(p) == owner for (p,) in conn.execute(live))
            if running >= limit:
                raise QuotaExceeded(
                    f"You have {running} replies being written, as many as you may at once; "
                    "wait for one to end (or stop it).",
                    retry_after_s=2,
                )

        return check

    async def admit(self, project_id: str) -> None:
        """Count a prompt of the project's owner, or raise ``QuotaExceeded`` (counting
        nothing) when their minute's prompts or their day's tokens are used up."""
        limits = self.limits
        if not (limits.prompts_per_minute or limits.tokens_per_day):
            return
        owner, now = owner_of(project_id), utcnow()

        def count(conn: Connection) -> None:
            if limits.tokens_per_day:
                used = conn.execute(self._tokens_used, {"owner": owner, "period": _day(now)})
                if (used.scalar() or 0) >= limits.tokens_per_day:
                    midnight = dt.datetime.combine(now.date(), dt.time(), now.tzinfo)
                    raise QuotaExceeded(
                        f"You have used your {limits.tokens_per_day} tokens for today (UTC).",
                        retry_after_s=(midnight + dt.timedelta(days=1) - now).total_seconds(),
                    )
            if limits.prompts_per_minute:
                minute = {"owner": owner, "period": _minute(now)}
                conn.execute(self._forget_minutes, minute)
                if conn.execute(self._count_prompt, minute).first() is None:
                    raise QuotaExceeded(
                        f"You have sent {limits.prompts_per_minute} prompts this minute, as "
                        "many as you may; wait for the next one.",
                        retry_after_s=60 - now.second,
                    )

        await self._dialect.run(count, write=True, side=True)

    async def spend(self, project_id: str, usage: Usage) -> None:
        """Count a completed turn's tokens against its owner's day (kept only when a
        daily limit is set; a failure is logged: the reply is already stored)."""
        if not self.limits.tokens_per_day or not usage.total_tokens:
            return
        params = {"owner": owner_of(project_id), "period": _day(utcnow())}
        params["tokens"] = usage.total_tokens
        try:
            await self._dialect.run(lambda conn: conn.execute(self._spend, params), side=True)
        except Exception:
            logger.warning("could not count the tokens of a turn in %s", project_id, exc_info=True)
