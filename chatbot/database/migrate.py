"""Schema migrations with Alembic, run from code (``migrations/``; no ``alembic.ini``).

An empty database gets the newest schema (``tables``) and revision; one written before
migrations (tables, no ``alembic_version``) is stamped at the baseline, 0001, and
upgraded. The server migrates at start, in one transaction that first takes a lock
(PostgreSQL's advisory lock, SQLite's write lock): processes starting at once migrate one
after the other. ``chatbot db upgrade`` does the same without serving. A database
migrated by a newer release is refused (``SchemaTooNew``), never downgraded.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chatbot.database.dialect import Dialect
from chatbot.database.errors import SchemaTooNew
from chatbot.database.tables import metadata

SCRIPTS = Path(__file__).with_name("migrations")
BASELINE = "0001"  # the schema of the releases before migrations
logger = logging.getLogger(__name__)
# Alembic logs its plugins as it is imported (hence imported late) and each step, at INFO.
logging.getLogger("alembic").setLevel(logging.WARNING)

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["connection"] = connection
    return config


def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def head() -> str:
    """The newest revision this release knows."""
    return _scripts().get_current_head() or ""


def _current(conn: Connection) -> tuple[str, ...]:
    """The database's revisions; refuses one this release does not know."""
    from alembic.runtime.migration import MigrationContext

    revisions = MigrationContext.configure(conn).get_current_heads()
    known = {script.revision for script in _scripts().walk_revisions()}
    unknown = [revision for revision in revisions if revision not in known]
    if unknown:
        raise SchemaTooNew(
            f"the database schema is at revision {', '.join(unknown)}, newer than this "
            f"release knows (its newest is {head()}): run a newer release of the chatbot "
            "on it, or restore a backup made before the upgrade"
        )
    return tuple(revisions)


def _upgrade(conn: Connection) -> None:
    from alembic import command

    found = _current(conn)
    if found == (head(),):
        return
    config = _config(conn)
    if not found:
        # As Alembic's cookbook has it: an empty database gets the newest schema at once;
        # one written before migrations (78b97e7) is at the baseline, with any table its
        # older versions lacked created first.
        tables = [t for t in metadata.sorted_tables if conn.dialect.name in t.info["dialects"]]
        legacy = {t.name for t in tables} & set(sa.inspect(conn).get_table_names())
        metadata.create_all(conn, tables=tables)
        command.stamp(config, BASELINE if legacy else "head")
    command.upgrade(config, "head")
    logger.info("database schema upgraded from %s to %s", found or "none", head())


async def upgrade(d: Dialect) -> None:
    """Bring the schema to this release's revision, one process at a time."""

    def locked(conn: Connection) -> None:
        d.lock_schema(conn)
        _upgrade(conn)

    await d.run(locked, write=True)


async def current(d: Dialect) -> str:
    """The database's revision ("" for an empty database); refuses an unknown one."""
    return ", ".join(await d.run(_current))
