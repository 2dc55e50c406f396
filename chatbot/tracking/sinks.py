"""Where a process's Burr tracking goes: what ``OffloopTrackingClient`` needs of it.

Two sinks: Burr's own files (``files``, what Burr's stock UI reads) and the conversation
database (``database``, what every replica's UI reads). Both are written on the
``TrackingWriter`` thread only, and both hold Burr's entries (``BeginEntryModel`` and the
rest) exactly as Burr would write them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pydantic
from burr.common.types import ParentPointer


@dataclass(frozen=True, slots=True)
class NewApplication:
    """A Burr application as its tracker is told of it; ``describe`` is its graph's JSON."""

    project: str
    app_id: str
    partition_key: str | None
    parent: ParentPointer | None
    spawning_parent: ParentPointer | None
    describe: Callable[[], str]


class AppLog(Protocol):
    """One application's log, open for appending."""

    def append(self, entry: pydantic.BaseModel) -> None: ...

    def close(self) -> None: ...


class TrackingSink(Protocol):
    """Where applications' logs are kept; ``open``, ``end_batch``: writer thread only."""

    # Burr's tracking client wants a directory; only the file sink writes to it.
    directory: Path

    def open(self, application: NewApplication) -> AppLog:
        """The application's log, created with its graph and parents if it is new."""
        ...

    def end_batch(self) -> None:
        """Make what the batch's jobs appended durable (the writer calls it after each)."""
        ...

    async def remove_conversation(self, project: str, conversation_id: str) -> None:
        """Remove the logs of every branch of a conversation (by name: a branch whose
        first turn was never stored has a log but no branch row)."""
        ...

    async def remove_app(self, project: str, app_id: str) -> None:
        """Remove one application's log (an attempt at a branch that was never stored)."""
        ...

    async def prune(self, older_than_days: float) -> int:
        """Remove the applications not written for that long; answers how many."""
        ...
