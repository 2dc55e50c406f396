"""This process's Burr tracking: the writer thread, where it writes, and its upkeep.

One ``TrackingLogs`` per process (none when tracking is off). It hands each Burr
application a tracking client that writes off the event loop (``chatbot.tracking.client``)
to the process's sink: Burr's files, or the conversation database. It removes the logs of
what no longer exists (a deleted conversation's branches, a branch attempt that was never
stored) after the queued writes have landed, so no late write recreates them, and prunes
the runs older than the retention.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from chatbot.tracking.client import OffloopTrackingClient
from chatbot.tracking.database import DatabaseSink
from chatbot.tracking.sinks import TrackingSink
from chatbot.tracking.writer import TrackingWriter

# How long upkeep waits for queued writes before it removes logs anyway.
FLUSH_TIMEOUT_S = 5.0
# How often old runs are pruned, when a retention is set.
PRUNE_EVERY_S = 3600.0
logger = logging.getLogger(__name__)


class TrackingLogs:
    """The process's Burr tracking, written to ``sink``."""

    def __init__(self, sink: TrackingSink, retention_days: float | None = None) -> None:
        self.sink = sink
        self.writer = TrackingWriter(end_batch=sink.end_batch)
        self.retention_days = retention_days
        self._pruning: asyncio.Task[None] | None = None

    def start(self) -> None:
        """On the event loop: bind a database sink to it and start pruning old runs."""
        if isinstance(self.sink, DatabaseSink):
            self.sink.bind(asyncio.get_running_loop())
        if self.retention_days is not None:
            self._pruning = asyncio.get_running_loop().create_task(self._prune_forever())

    async def _prune_forever(self) -> None:
        assert self.retention_days is not None
        while True:
            try:
                pruned = await self.sink.prune(self.retention_days)
                if pruned:
                    logger.info("pruned the Burr tracking of %d old runs", pruned)
            except Exception:  # upkeep: try again at the next round
                logger.warning("pruning old Burr tracking failed", exc_info=True)
            await asyncio.sleep(PRUNE_EVERY_S)

    def client(self, project_id: str) -> OffloopTrackingClient:
        """A new tracking client for one Burr application of ``project_id``."""
        return OffloopTrackingClient(project_id, self.sink, self.writer)

    async def flush(self) -> None:
        """Wait until every queued write has landed (what Burr's UI reads)."""
        await asyncio.to_thread(self.writer.flush, FLUSH_TIMEOUT_S)

    async def remove_conversation(self, project_id: str, conversation_id: str) -> None:
        """Remove the logs of a conversation's branches."""
        await self.flush()
        await self.sink.remove_conversation(project_id, conversation_id)

    async def remove_branch(self, project_id: str, app_id: str) -> None:
        """Remove what an earlier, never stored attempt at a branch left in its log: Burr
        writes a branch's metadata (its parent) only for an application it has not seen,
        and a new attempt may fork from another parent."""
        await self.flush()
        await self.sink.remove_app(project_id, app_id)

    async def close(self) -> None:
        if self._pruning is not None:
            self._pruning.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruning
        await asyncio.to_thread(self.writer.close)
