"""What the chatbot needs from storage, independent of the database behind it.

The stores are Burr persisters (``AsyncBaseStatePersister``): Burr's ``load``/``save``
contract, Burr's table layout, usable with ``ApplicationBuilder.initialize_from``. On top
they keep one summary row per conversation (title, turns, last activity), written in the
same transaction as the state, and they grant the per-conversation turn lease.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from burr.core import State

from chatbot.chat_items import ChatItem

TITLE_MAX_CHARS = 80
STATE_TABLE = "burr_state"
CONVERSATIONS_TABLE = "chatbot_conversations"
# Every turn stores a full snapshot (Burr's model); older ones are pruned past this many.
SNAPSHOTS_KEPT = 5


class ConversationBusy(Exception):
    """Another turn of this conversation is in progress (here or in another process)."""


class StoreUnavailable(Exception):
    """The database cannot be reached or initialised."""


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    app_id: str
    title: str
    turns: int
    created_at: dt.datetime
    updated_at: dt.datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "app_id": self.app_id,
            "title": self.title,
            "turns": self.turns,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


class TurnLease(abc.ABC):
    """The right to run one turn of one conversation; release it exactly once."""

    @abc.abstractmethod
    async def release(self) -> None: ...


def summarise(history: Sequence[ChatItem]) -> tuple[str, int]:
    """Title (the first prompt, trimmed) and turn count (user messages) of a history."""
    title = ""
    turns = 0
    for item in history:
        if item["role"] == "user":
            if not title:
                title = " ".join(item["content"].split())[:TITLE_MAX_CHARS]
            turns += 1
    return title, turns


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ConversationStore(abc.ABC):
    """The operations the server uses; implemented for SQLite and PostgreSQL."""

    @abc.abstractmethod
    async def initialize(self) -> None:
        """Create the schema if needed; raise ``StoreUnavailable`` when that is impossible."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def load_state(self, project_id: str, app_id: str) -> State | None:
        """The latest stored state of a conversation, or None if it has none yet."""

    @abc.abstractmethod
    async def save_state(
        self,
        project_id: str,
        app_id: str,
        sequence_id: int,
        position: str,
        state: State,
        status: str,
    ) -> None:
        """Store a turn's final state and the conversation's summary, atomically."""

    @abc.abstractmethod
    async def create(self, project_id: str, app_id: str) -> bool:
        """Register a conversation; False if it already existed."""

    @abc.abstractmethod
    async def exists(self, project_id: str, app_id: str) -> bool: ...

    @abc.abstractmethod
    async def list(
        self, project_id: str, limit: int, offset: int
    ) -> tuple[list[ConversationSummary], int]:
        """A page of conversations, most recently active first, and the total count."""

    @abc.abstractmethod
    async def delete(self, project_id: str, app_id: str) -> bool:
        """Remove a conversation and its states; False if there was nothing to delete."""

    @abc.abstractmethod
    async def acquire_turn(self, project_id: str, app_id: str) -> TurnLease:
        """Take the conversation's turn lease or raise ``ConversationBusy``."""

    async def find_by_history(self, project_id: str, digest: str) -> str | None:
        """The conversation whose stored history has ``digest`` (``chatbot.continuation``)."""
        return None


class BurrPersisterBridge:
    """Burr's ``save`` and our ``load_state`` in terms of each store's other half.

    Listed first among a store's bases, so Burr's ``save`` (used by
    ``ApplicationBuilder.with_state_persister``) also keeps the conversation summary.
    """

    async def save(
        self,
        partition_key: str | None,
        app_id: str,
        sequence_id: int,
        position: str,
        state: State,
        status: str,
        **kwargs: Any,
    ) -> None:
        await self.save_state(  # type: ignore[attr-defined]
            partition_key or "", app_id, sequence_id, position, state, status
        )

    async def load_state(self, project_id: str, app_id: str) -> State | None:
        loaded = await self.load(project_id, app_id)  # type: ignore[attr-defined]
        return loaded["state"] if loaded else None
