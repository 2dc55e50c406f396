"""Burr's tracking in the conversation database, so that every replica's ``/burr`` shows
every conversation, whichever replica ran it (``CHATBOT_TRACKING=database``).

The rows are what Burr's files hold (``chatbot.database.tables``: ``chatbot_tracking_*``):
a graph once per release, a row per application with its partition key and fork parent,
and each entry of Burr's ``log.jsonl`` as Burr writes it (steps with their state, stream
timings, spans, attributes). Entries collect on the ``TrackingWriter`` thread, which also
serialises them; at the end of each batch they are written in one transaction, on the
event loop's database engine (the thread waits for it). A batch that cannot be written is
dropped with a warning: a database in trouble loses tracking, never a reply.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from pathlib import Path
from typing import Any

import pydantic
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chatbot.database.dialect import DATABASE_ERRORS, Dialect, utcnow
from chatbot.database.prepared import Prepared
from chatbot.database.tables import Instant, tracking_apps, tracking_entries, tracking_graphs
from chatbot.domain.branch_ids import BRANCH_SEPARATOR
from chatbot.domain.owners import owner_of
from chatbot.tracking.sinks import NewApplication

logger = logging.getLogger(__name__)

# How long the writer thread waits for a batch's transaction before dropping it.
WRITE_TIMEOUT_S = 30.0

_apps = tracking_apps.c
_touch = Prepared(
    tracking_apps.update()
    .where(_apps.project_id == sa.bindparam("p"), _apps.app_id == sa.bindparam("a"))
    .values(
        steps=sa.case(
            (_apps.steps < sa.bindparam("s", type_=sa.Integer), sa.bindparam("s")),
            else_=_apps.steps,
        ),
        updated_at=sa.bindparam("t", type_=Instant),
    )
)
_add_entries = Prepared(tracking_entries.insert())


class DatabaseLog:
    """An application's entries, collected for the sink's next batch."""

    __slots__ = ("_sink", "_key")

    def __init__(self, sink: DatabaseSink, key: tuple[str, str]) -> None:
        self._sink = sink
        self._key = key

    def append(self, entry: pydantic.BaseModel) -> None:
        project, app_id = self._key
        self._sink.entries.append(
            {"project_id": project, "app_id": app_id, "entry": entry.model_dump_json()}
        )
        sequence_id = getattr(entry, "sequence_id", None)
        steps = self._sink.steps
        seen = steps.get(self._key, 0)
        steps[self._key] = max(seen, sequence_id + 1) if sequence_id is not None else seen

    def close(self) -> None:
        pass


class DatabaseSink:
    """Tracking rows on ``dialect``'s database, written from the writer thread."""

    def __init__(self, dialect: Dialect, directory: Path) -> None:
        self.directory = directory  # never written; Burr's client wants one
        self._dialect = dialect
        self._add_graphs = Prepared(dialect.insert(tracking_graphs).on_conflict_do_nothing())
        self._add_apps = Prepared(dialect.insert(tracking_apps).on_conflict_do_nothing())
        self._loop: asyncio.AbstractEventLoop | None = None
        self._graph_ids: dict[str, str] = {}  # graph JSON -> its id, once per process
        self.graphs: list[dict[str, Any]] = []
        self.apps: list[dict[str, Any]] = []
        self.entries: list[dict[str, Any]] = []
        self.steps: dict[tuple[str, str], int] = {}
        self._failing = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop that owns the database's engines (where batches are written)."""
        self._loop = loop

    def open(self, application: NewApplication) -> DatabaseLog:
        graph = application.describe()
        graph_id = self._graph_ids.get(graph)
        if graph_id is None:
            graph_id = self._graph_ids[graph] = hashlib.sha256(graph.encode()).hexdigest()[:32]
            self.graphs.append({"id": graph_id, "graph": graph})
        parent = application.parent
        now = utcnow()
        self.apps.append(
            {
                "project_id": application.project,
                "app_id": application.app_id,
                "owner": owner_of(application.project),
                "partition_key": application.partition_key,
                "graph_id": graph_id,
                "parent_app_id": parent.app_id if parent is not None else None,
                "parent_sequence_id": parent.sequence_id if parent is not None else None,
                "created_at": now,
                "updated_at": now,
            }
        )
        key = (application.project, application.app_id)
        self.steps.setdefault(key, 0)
        return DatabaseLog(self, key)

    def end_batch(self) -> None:
        if not (self.apps or self.entries or self.steps):
            return
        graphs, apps, entries = self.graphs, self.apps, self.entries
        touched = [
            {"p": project, "a": app_id, "s": steps, "t": utcnow()}
            for (project, app_id), steps in self.steps.items()
        ]
        self.graphs, self.apps, self.entries, self.steps = [], [], [], {}
        d = self._dialect

        def write(conn: Connection) -> None:  # statements compiled once, on the driver
            self._add_graphs.run_many(d, conn, graphs, by_keys=True)
            self._add_apps.run_many(d, conn, apps, by_keys=True)
            _add_entries.run_many(d, conn, entries, by_keys=True)
            _touch.run_many(d, conn, touched)

        try:
            if self._loop is None:
                raise RuntimeError("the tracking sink was never bound to an event loop")
            done = asyncio.run_coroutine_threadsafe(
                self._dialect.run(write, write=True, side=True), self._loop
            )
            done.result(WRITE_TIMEOUT_S)
        except (*DATABASE_ERRORS, RuntimeError) as exc:
            if graphs:  # written with the next new application instead
                self._graph_ids.clear()
            self._warn(f"{len(entries)} Burr tracking entries were dropped: {exc}")
            return
        if self._failing:
            self._failing = False
            logger.warning("Burr tracking is written to the database again")

    def _warn(self, message: str) -> None:
        if not self._failing:  # once per outage, not once per batch
            logger.warning(message)
        self._failing = True

    async def remove_conversation(self, project: str, conversation_id: str) -> None:
        prefix = f"{conversation_id}{BRANCH_SEPARATOR}"
        await self._remove(
            project,
            lambda app_id: (app_id == conversation_id) | app_id.startswith(prefix, autoescape=True),
        )

    async def remove_app(self, project: str, app_id: str) -> None:
        await self._remove(project, lambda column: column == app_id)

    async def _remove(self, project: str, chosen: Any) -> None:
        entries, apps = tracking_entries.c, tracking_apps.c

        def delete(conn: Connection) -> None:
            conn.execute(
                tracking_entries.delete().where(
                    entries.project_id == project, chosen(entries.app_id)
                )
            )
            conn.execute(
                tracking_apps.delete().where(apps.project_id == project, chosen(apps.app_id))
            )

        await self._dialect.run(delete, write=True)

    async def prune(self, older_than_days: float) -> int:
        before = utcnow() - dt.timedelta(days=older_than_days)
        old = sa.select(_apps.project_id, _apps.app_id).where(_apps.updated_at < before)
        entries = tracking_entries.c

        def delete(conn: Connection) -> int:
            conn.execute(
                tracking_entries.delete().where(
                    sa.tuple_(entries.project_id, entries.app_id).in_(old)
                )
            )
            return conn.execute(tracking_apps.delete().where(_apps.updated_at < before)).rowcount

        return await self._dialect.run(delete, write=True)
