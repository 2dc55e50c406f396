"""Reading Burr's tracking back from the conversation database, for Burr's UI on any
replica (the server's Burr backend turns these rows into Burr's own models).

Every read can be limited to one owner's runs (``owner``: the owner token of the storage
projects, ``chatbot.domain.owners``), so a user's UI shows only their conversations.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chatbot.database.dialect import Dialect
from chatbot.database.tables import tracking_apps, tracking_entries, tracking_graphs

_apps = tracking_apps.c


@dataclass(frozen=True, slots=True)
class TrackedProject:
    project_id: str
    apps: int
    created: dt.datetime
    last_written: dt.datetime


@dataclass(frozen=True, slots=True)
class TrackedApp:
    project_id: str
    app_id: str
    partition_key: str | None
    parent_app_id: str | None
    parent_sequence_id: int | None
    steps: int
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class TrackedLog:
    """An application, its graph (Burr's JSON), its entries as lines of Burr's
    ``log.jsonl``, and the applications forked from it."""

    app: TrackedApp
    graph: str
    entries: list[bytes]
    children: list[TrackedApp]


_APP_COLUMNS = [_apps[name] for name in TrackedApp.__dataclass_fields__]


def _owned(query: sa.Select, owner: str | None) -> sa.Select:
    return query if owner is None else query.where(_apps.owner == owner)


class TrackingRecords:
    """The tracking rows on one database."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect

    async def projects(self, owner: str | None) -> list[TrackedProject]:
        """Every project with tracked runs (of ``owner``'s, when given), newest first."""
        last = sa.func.max(_apps.updated_at)
        query = _owned(
            sa.select(_apps.project_id, sa.func.count(), sa.func.min(_apps.created_at), last)
            .group_by(_apps.project_id)
            .order_by(last.desc()),
            owner,
        )
        rows = await self._dialect.run(lambda conn: conn.execute(query).all())
        return [TrackedProject(*row) for row in rows]

    async def apps(
        self,
        project_id: str,
        partition_key: str | None,
        owner: str | None,
        *,
        limit: int,
        offset: int,
    ) -> tuple[list[TrackedApp], int]:
        """A page of a project's runs, most recently written first, and how many there are."""
        chosen = _owned(sa.select(*_APP_COLUMNS).where(_apps.project_id == project_id), owner)
        if partition_key is not None:
            chosen = chosen.where(_apps.partition_key == partition_key)
        page = chosen.order_by(_apps.updated_at.desc(), _apps.app_id).limit(limit).offset(offset)
        total = sa.select(sa.func.count()).select_from(chosen.subquery())

        def read(conn: Connection) -> tuple[list[TrackedApp], int]:
            apps = [TrackedApp(*row) for row in conn.execute(page)]
            return apps, conn.execute(total).scalar_one()

        return await self._dialect.run(read)

    async def log(self, project_id: str, app_id: str, owner: str | None) -> TrackedLog | None:
        """One run's log, or None when there is none (or it is not ``owner``'s)."""
        app = _owned(
            sa.select(*_APP_COLUMNS, tracking_graphs.c.graph)
            .join(tracking_graphs, tracking_graphs.c.id == _apps.graph_id)
            .where(_apps.project_id == project_id, _apps.app_id == app_id),
            owner,
        )
        e = tracking_entries.c
        entries = (
            sa.select(e.entry).where(e.project_id == project_id, e.app_id == app_id).order_by(e.id)
        )
        children = sa.select(*_APP_COLUMNS).where(
            _apps.project_id == project_id, _apps.parent_app_id == app_id
        )

        def read(conn: Connection) -> TrackedLog | None:
            row = conn.execute(app).first()
            if row is None:
                return None
            return TrackedLog(
                TrackedApp(*row[:-1]),
                row[-1],
                [entry.encode() for entry in conn.execute(entries).scalars()],
                [TrackedApp(*child) for child in conn.execute(children.order_by(_apps.created_at))],
            )

        return await self._dialect.run(read)
