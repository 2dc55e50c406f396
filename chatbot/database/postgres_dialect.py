"""PostgreSQL: several server processes on any number of machines. What differs:

- Times are the database's clock (``now()``): machines with skewed clocks agree.
- The final write's lease check locks the lease's row (its ``UPDATE`` or ``DELETE``), ordering
  it against a takeover.
- Data-modifying CTEs chain a group commit's writes into fewer round trips.
- Migrations run under a transaction-level advisory lock, one process after the other.
- The relay is woken by notifications (``chatbot_relay_signals`` after a write of
  signals, ``chatbot_relay_replies`` of answers or batches), heard on a connection of
  each process's own (a pooled one would be pinned for good). Polling stays the rule: a
  notification lost with a dropped connection costs one poll, not an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util import await_only, greenlet_spawn

from chatbot.database.dialect import Change, Dialect, T, Work, reason
from chatbot.domain.branch_ids import BRANCH_SEPARATOR

logger = logging.getLogger(__name__)

DEFAULT_POOL_SIZE = 10
CONNECT_TIMEOUT_S = 10.0
# Serialises migrations of processes that start at once on one database.
_SCHEMA_LOCK_KEY = 0x63686174626F74  # "chatbot"
CHANNELS: dict[Change, str] = {kind: f"chatbot_relay_{kind}" for kind in ("signals", "replies")}
_HISTORY_KEY = sa.literal_column("'chat_history'")
# How often a process whose listening connection was lost tries to open it again.
LISTEN_RETRY_S = 5.0


def display_url(database_url: str) -> str:
    """The URL with its password masked and no query (where libpq's options may hold one)."""
    return sa.engine.make_url(database_url).set(query={}).render_as_string(hide_password=True)


def _text(value: str) -> str:
    return value  # JSON arrives and leaves as text: the store encodes it once, with orjson


class PostgresDialect(Dialect):
    name = "postgresql"
    chains_writes = True  # a turn's branch row rides on its boundary row's statement
    insert = staticmethod(postgresql.insert)

    def __init__(self, database_url: str, *, pool_size: int = DEFAULT_POOL_SIZE) -> None:
        self.database_url = database_url
        self.pool_size = pool_size
        # Turns finishing while a group commit is in flight need not wait for it.
        self.parallel_commits = max(1, pool_size // 2)
        self._listener: asyncpg.Connection | None = None
        self._changed: dict[Change, asyncio.Event] = {}
        # One reconnection at a time, at most one every LISTEN_RETRY_S.
        self._reconnecting: asyncio.Task[None] | None = None
        self._last_attempt = 0.0
        self._warned = False

    @property
    def where(self) -> str:
        return display_url(self.database_url)

    def unavailable(self, exc: BaseException) -> str:
        return f"cannot reach the PostgreSQL database at {self.where}: {reason(exc)}"

    async def _connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.database_url, timeout=CONNECT_TIMEOUT_S)

    async def open(self) -> None:
        # The driver reads the URL itself, so every form asyncpg accepts keeps working.
        self.engine = create_async_engine(
            "postgresql+asyncpg://",
            async_creator=self._connect,
            pool_size=self.pool_size,
            max_overflow=0,
            json_serializer=_text,
            json_deserializer=_text,
            isolation_level="AUTOCOMMIT",  # ``Dialect.run_work`` begins and commits
        )
        # Operations run on the engine's synchronous face, each in one greenlet hop (as
        # ``AsyncConnection.run_sync`` does, without its two extra hops to connect and close).
        self._engine = self.engine.sync_engine
        self._changed = {kind: asyncio.Event() for kind in CHANNELS}
        await self.run(lambda conn: conn.execute(sa.select(1)))  # unreachable: an error
        await self._listen()

    async def close(self) -> None:
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            await asyncio.gather(self._reconnecting, return_exceptions=True)
        if self._listener is not None:
            listener, self._listener = self._listener, None
            with contextlib.suppress(Exception):
                await listener.close(timeout=5)
        engine: AsyncEngine | None = self.__dict__.pop("engine", None)
        if engine is not None:
            await engine.dispose()

    async def run(
        self, work: Work[T], *, write: bool = False, side: bool = False, quick: bool = False
    ) -> T:
        return await greenlet_spawn(self._run, work, write)

    def _run(self, work: Work[T], write: bool) -> T:
        with self._engine.connect() as conn:
            return self.run_work(conn, work, write)

    def driver(self, conn: Connection, sql: str, args: list, many: bool = False) -> list:
        raw = conn.connection.driver_connection
        try:
            return await_only(raw.executemany(sql, args) if many else raw.fetch(sql, *args)) or []
        except Exception as exc:  # which failed cannot be told: a fresh connection next time
            conn.invalidate(exc)
            raise sa.exc.DBAPIError(sql, args, exc, connection_invalidated=True) from exc

    def lock_schema(self, conn: Connection) -> None:
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_SCHEMA_LOCK_KEY)))

    def lock(self, conn: Connection, name: str) -> None:
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(name))))

    def now(self, offset_s: float = 0.0) -> sa.ColumnElement:
        return sa.func.now() + dt.timedelta(seconds=offset_s)

    def lease_clock(self) -> tuple[Any, Any]:
        ttl = sa.func.make_interval(0, 0, 0, 0, 0, 0, sa.bindparam("ttl", type_=sa.Float))
        return sa.func.now(), sa.func.now() + ttl

    def commit_time(self) -> sa.ColumnElement:
        return sa.func.now()

    def history(self, state: sa.ColumnElement) -> sa.ColumnElement:
        return state.op("->")(_HISTORY_KEY)

    def one_of(self, column: sa.ColumnElement, name: str) -> sa.ColumnElement:
        # One array parameter: an expanding IN renders its SQL anew on every execution.
        return column == sa.any_(sa.bindparam(name, type_=postgresql.ARRAY(column.type)))

    def forks_of(self, app_id: sa.ColumnElement, conversation_id: str) -> sa.ColumnElement:
        # Text order depends on the database's collation here: no range over it.
        return sa.func.starts_with(app_id, conversation_id + BRANCH_SEPARATOR)

    # --- relay wake-ups -----------------------------------------------------------------
    async def notify(self, kind: Change) -> None:
        notify = sa.select(sa.func.pg_notify(CHANNELS[kind], ""))
        await self.run(lambda conn: conn.execute(notify))

    async def _listen(self) -> None:
        """Open the listening connection; without it the relay still works, by polling."""
        self._last_attempt = time.monotonic()
        try:
            conn = await self._connect()
            for kind, channel in CHANNELS.items():
                await conn.add_listener(channel, lambda *_, heard=self._changed[kind]: heard.set())
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            if not self._warned:  # once per outage
                logger.warning("relay notifications are off, polling until back: %s", exc)
            self._warned = True
            return
        if self._warned:
            logger.info("relay notifications are back")
        self._warned = False
        self._listener = conn

    async def wait_for_change(self, kind: Change, within_s: float) -> None:
        self._keep_listening()
        changed = self._changed[kind]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), within_s)
        changed.clear()

    def _keep_listening(self) -> None:
        """Reconnect a listening connection that was lost, in the background."""
        if self._listener is not None and not self._listener.is_closed():
            return
        if self._reconnecting is not None and not self._reconnecting.done():
            return
        if time.monotonic() - self._last_attempt < LISTEN_RETRY_S:
            return
        self._listener = None
        self._reconnecting = asyncio.get_running_loop().create_task(self._listen())
