"""This process's Burr tracking logs: the writer thread, the directory, and its upkeep.

One ``TrackingLogs`` per process (none when tracking is off). It hands each Burr
application a tracking client that writes off the event loop (``chatbot.tracking.files``)
and removes the logs of what no longer exists: a deleted conversation's branches, or a
branch attempt that was never stored. Removal runs on a thread after the queued writes
have landed, so no late write recreates a removed file.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from chatbot.domain.branch_ids import BRANCH_SEPARATOR
from chatbot.tracking.files import OffloopTrackingClient, TrackingWriter

# How long upkeep waits for queued writes before it removes files anyway.
FLUSH_TIMEOUT_S = 5.0


class TrackingLogs:
    """Burr's local tracking layout under ``directory``: ``<project>/<app id>/``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.writer = TrackingWriter()

    def client(self, project_id: str) -> OffloopTrackingClient:
        """A new tracking client for one Burr application of ``project_id``."""
        return OffloopTrackingClient(
            project=project_id, storage_dir=self.directory, writer=self.writer
        )

    async def flush(self) -> None:
        """Wait until every queued write is on disk (what Burr's UI reads)."""
        await asyncio.to_thread(self.writer.flush, FLUSH_TIMEOUT_S)

    async def remove_conversation(self, project_id: str, conversation_id: str) -> None:
        """Remove the logs of a conversation's branches.

        By name rather than from the branch rows: a branch whose first turn was never
        stored has a directory but no row."""
        await asyncio.to_thread(self._remove_conversation, project_id, conversation_id)

    def _remove_conversation(self, project_id: str, conversation_id: str) -> None:
        self.writer.flush(FLUSH_TIMEOUT_S)
        project_dir = self.directory / project_id
        for app_dir in [
            project_dir / conversation_id,
            *project_dir.glob(f"{conversation_id}{BRANCH_SEPARATOR}*"),
        ]:
            shutil.rmtree(app_dir, True)

    async def remove_branch(self, project_id: str, app_id: str) -> None:
        """Remove what an earlier, never stored attempt at a branch left in its log: Burr
        writes a branch's metadata (its parent) only when the directory has none, and a
        new attempt may fork from another parent."""
        await asyncio.to_thread(self._remove_branch, project_id, app_id)

    def _remove_branch(self, project_id: str, app_id: str) -> None:
        app_dir = self.directory / project_id / app_id
        if app_dir.exists():
            self.writer.flush(FLUSH_TIMEOUT_S)
            shutil.rmtree(app_dir, True)

    async def close(self) -> None:
        await asyncio.to_thread(self.writer.close)
