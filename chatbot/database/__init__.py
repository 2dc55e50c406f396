"""The database every part of the chatbot stores in: SQLite or PostgreSQL, one schema.

``dialect`` and its two implementations open the engines and say what the databases do
differently; ``prepared`` runs a hot statement on the driver; ``tables`` is the schema of
every table (conversations, relay, users, tracking) and ``migrate`` with ``migrations/``
its Alembic revisions. The parts that write rows keep their statements with them: the
conversation store (``chatbot.store``), the relay, users and tracking each build theirs
on this package, which knows none of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlparse

from chatbot.database.dialect import DATABASE_ERRORS, Dialect
from chatbot.database.errors import SchemaTooNew as SchemaTooNew
from chatbot.database.errors import StoreUnavailable as StoreUnavailable


def dialect_for(database_url: str, *, pool_size: int | None, holder_ttl_s: float) -> Dialect:
    """The dialect of a ``sqlite:///path`` or ``postgresql://…`` URL (not yet opened);
    raises ``StoreUnavailable`` for any other. ``holder_ttl_s``: how long a SQLite file
    counts a process that stopped renewing as one of its users."""
    scheme = urlparse(database_url).scheme
    if scheme == "sqlite":
        if not database_url.startswith("sqlite:///"):
            raise StoreUnavailable("a SQLite URL is sqlite:///relative.db or sqlite:////abs.db")
        from chatbot.database.sqlite_dialect import SQLiteDialect

        path = Path(database_url.removeprefix("sqlite:///")).expanduser()
        return SQLiteDialect(path, ttl_s=holder_ttl_s)
    if scheme in ("postgresql", "postgres"):
        from chatbot.database.postgres_dialect import DEFAULT_POOL_SIZE, PostgresDialect

        return PostgresDialect(database_url, pool_size=pool_size or DEFAULT_POOL_SIZE)
    raise StoreUnavailable(
        f"unsupported CHATBOT_DATABASE_URL scheme {scheme!r}: use sqlite:///path or postgresql://…"
    )


@contextlib.asynccontextmanager
async def opened(database_url: str, *, upgrade: bool = True) -> AsyncIterator[Dialect]:
    """The database alone, without the store around it (the command line's tools), its
    schema migrated first unless ``upgrade`` is false; failures are ``StoreUnavailable``."""
    from chatbot.database import migrate

    dialect = dialect_for(database_url, pool_size=None, holder_ttl_s=0.0)
    try:
        await dialect.open()
        if upgrade:
            await migrate.upgrade(dialect)
        yield dialect
    except DATABASE_ERRORS as exc:
        raise StoreUnavailable(dialect.unavailable(exc)) from exc
    finally:
        await dialect.close()


async def schema_revision(database_url: str, *, upgrade: bool = False) -> tuple[str, str, str]:
    """The database, its schema revision ("" for none) and this release's newest revision;
    with ``upgrade``, migrated first (``chatbot db upgrade``; ``current`` changes nothing)."""
    from chatbot.database import migrate

    async with opened(database_url, upgrade=upgrade) as dialect:
        return dialect.where, await migrate.current(dialect), migrate.head()
