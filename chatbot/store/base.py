"""What the chatbot needs from storage, independent of the database behind it.

The stores are Burr persisters, used the way Burr means them (a decision; every store
follows it):

- **Loading is Burr's.** A turn's application is built with
  ``ApplicationBuilder().initialize_from(store, resume_at_next_action=False,
  default_state=…, default_entrypoint="prompt")`` and ``abuild()``, so Burr reads the
  conversation through ``load``. ``load`` honours ``sequence_id``, which is what Burr's
  ``fork_from_app_id``/``fork_from_sequence_id`` ask for when a conversation is forked.
- **Saving is Burr's ``save``, called once per turn**, with the turn's final state, not
  through ``with_state_persister``. Burr's persister hook saves after every step: that
  would store a prompt before its reply (a half-written turn if the process dies between
  the two steps) and pay one fsync per step instead of one per turn.
- **The rows are Burr's.** States go to Burr's own ``burr_state`` table layout, so Burr's
  stock persisters read what we write and the other way round. On top, ``save`` writes the
  conversation's summary (title, turns, last activity) in the same transaction, and refuses
  to write for a turn whose lease another process has taken over.

Turn leases (one turn at a time per conversation, across every process sharing the
database) are part of the store because they live in the same database; so is the relay
table, through which a process reads or stops a reply that another one is writing.

Each conversation's history digest (``chatbot.conversations.continuation``) is kept
beside its summary, written in the same transaction, so a stateless client's resent
messages find their conversation from any process.

A conversation is a tree of branches (``chatbot.domain.branch_ids``), each a Burr application
forked with Burr's own ``fork_from_app_id``/``fork_from_sequence_id``. The summary and the
turn lease stay the conversation's; states, digests and *boundaries* (one small row per
stored turn, never pruned, so every earlier point between turns stays loadable: see
``branch_rows``) are the branch's.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import orjson
from burr.core import State
from burr.core.persistence import AsyncBaseStateLoader, AsyncBaseStateSaver, PersistedStateData

from chatbot.domain.branch_tree import BranchRecord
from chatbot.domain.chat_items import ChatItem

if TYPE_CHECKING:
    from chatbot.store.relay import RelayTable

TITLE_MAX_CHARS = 80
STATE_TABLE = "burr_state"
CONVERSATIONS_TABLE = "chatbot_conversations"
# One row per conversation: the digest of its latest stored history.
HISTORY_DIGESTS_TABLE = "chatbot_history_digests"
LEASES_TABLE = "chatbot_turn_leases"
# One row per branch of a conversation (``chatbot.domain.branch_ids``): its parent and
# which is shown.
BRANCHES_TABLE = "chatbot_branches"
# One row per stored turn of a branch (and its fork point): what a pruned snapshot held.
BOUNDARIES_TABLE = "chatbot_turn_boundaries"
# Every turn stores a full snapshot (Burr's model); older ones are pruned past this many.
SNAPSHOTS_KEPT = 5
# Burr's persisters store a missing partition key as the empty string; so do we.
PARTITION_KEY_DEFAULT = ""
DEFAULT_LEASE_TTL_S = 30.0


class ConversationBusy(Exception):
    """Another turn of this conversation is in progress (here or in another process)."""

    code = "conversation_busy"


class StoreUnavailable(Exception):
    """The database cannot be reached or initialised."""

    code = "storage_unavailable"


class TurnLeaseLost(Exception):
    """This process's lease on a conversation lapsed and another turn may have started."""


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """One row of the conversation listing (the routes shape its JSON, not this class)."""

    app_id: str
    title: str
    turns: int
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Boundary:
    """A point between turns of a branch: its state after ``sequence_id`` holds ``items``."""

    app_id: str
    sequence_id: int
    items: int


@dataclass(frozen=True, slots=True)
class NewBranch:
    """What ``save`` needs to record a branch on its first turn."""

    parent_app_id: str
    fork_sequence_id: int
    fork_items: int  # j: items in the state it was forked from
    diverges_at: int


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


def parse_timestamp(value: str) -> dt.datetime:
    """A time SQLite stored as ISO text (``utcnow().isoformat()``), as an aware datetime."""
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def encode_state(state: State) -> str:
    """A state as the JSON text of a ``burr_state`` row (orjson: several times ``json``'s speed).

    Chat states hold only JSON values, which is what Burr's own ``State.serialize`` would
    write for them too, so Burr's persisters read these rows unchanged.
    """
    return orjson.dumps(state.get_all()).decode()


def decode_state(payload: str | bytes) -> State:
    return State(orjson.loads(payload))


class ConversationStore(AsyncBaseStateLoader, AsyncBaseStateSaver, abc.ABC):
    """A Burr persister plus what the server needs beyond it; for SQLite and PostgreSQL."""

    @property
    @abc.abstractmethod
    def where(self) -> str:
        """The database, for messages and logs (never with a password)."""

    # --- lifecycle ----------------------------------------------------------------------
    @abc.abstractmethod
    async def initialize(self) -> None:
        """Create the schema if needed; raise ``StoreUnavailable`` when that is impossible."""

    @abc.abstractmethod
    async def is_initialized(self) -> bool:
        """True once the database is open and has Burr's state table (Burr asks before use)."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def cleanup(self) -> None:
        """Burr's name for ``close``."""
        await self.close()

    @abc.abstractmethod
    async def ping(self) -> None:
        """Readiness: one cheap round trip; raise ``StoreUnavailable`` if it does not answer."""

    # --- Burr's persister contract --------------------------------------------------------
    @abc.abstractmethod
    async def load(
        self,
        partition_key: str | None,
        app_id: str | None,
        sequence_id: int | None = None,
        **kwargs: Any,
    ) -> PersistedStateData | None:
        """The state at ``sequence_id``, or the latest one; with no ``app_id``, the partition's
        most recently written state (Burr's contract). None when there is nothing stored."""

    @abc.abstractmethod
    async def save(
        self,
        partition_key: str | None,
        app_id: str,
        sequence_id: int,
        position: str,
        state: State,
        status: Literal["completed", "failed"],
        new_branch: NewBranch | None = None,
        **kwargs: Any,
    ) -> None:
        """Store a turn's final state and the conversation's summary in one transaction.

        ``app_id`` is a branch's Burr app id; the summary and the lease are its
        conversation's. Also writes the turn's boundary and the branch's row, and with
        ``new_branch=NewBranch(...)`` (a branch's first turn) records the branch and the
        state it was forked from. Raises ``TurnLeaseLost`` when this process holds the
        conversation's lease no more.
        """

    @abc.abstractmethod
    async def list_app_ids(self, partition_key: str, **kwargs: Any) -> list[str]:
        """The app IDs with stored states in a partition, most recently written first."""

    # --- conveniences over the contract -------------------------------------------------
    async def load_state(self, project_id: str, app_id: str) -> State | None:
        """The latest stored state of a conversation, or None if it has none yet."""
        loaded = await self.load(project_id, app_id)
        return loaded["state"] if loaded is not None else None

    async def save_state(
        self,
        project_id: str,
        app_id: str,
        sequence_id: int,
        position: str,
        state: State,
        status: Literal["completed", "failed"],
        new_branch: NewBranch | None = None,
    ) -> None:
        """``save`` with the project as Burr's partition key (``new_branch`` on a branch's
        first turn records the branch in the same transaction)."""
        await self.save(
            project_id, app_id, sequence_id, position, state, status, new_branch=new_branch
        )

    # --- conversations --------------------------------------------------------------------
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
        """Remove a conversation and every branch's states; False if there was nothing to
        delete."""

    @abc.abstractmethod
    async def acquire_turn(self, project_id: str, app_id: str) -> TurnLease:
        """Take the conversation's turn lease or raise ``ConversationBusy``."""

    @abc.abstractmethod
    async def find_by_history(self, project_id: str, digest: str) -> str | None:
        """The conversation whose latest stored history has ``digest`` (the most recently
        written one if several have), or None."""

    # --- branches (``chatbot.domain.branch_ids``) ---------------------------------------
    @abc.abstractmethod
    async def branches(self, project_id: str, conversation_id: str) -> list[BranchRecord]:
        """Every branch of a conversation, by creation order; empty if nothing is stored.

        A conversation stored before branching existed answers its original alone,
        synthesised from its latest state.
        """

    @abc.abstractmethod
    async def shown_branch(self, project_id: str, conversation_id: str) -> str:
        """The Burr app id a turn or ``/history`` loads: the greatest ``shown``, else the
        conversation id itself (one cheap query: it runs once per turn)."""

    @abc.abstractmethod
    async def show_branch(self, project_id: str, conversation_id: str, app_id: str) -> bool:
        """Make ``app_id`` the shown branch; False if it is no branch of that conversation."""

    @abc.abstractmethod
    async def boundary(self, project_id: str, app_id: str, items: int) -> Boundary | None:
        """The branch's stored boundary holding exactly ``items`` items, or None.

        ``items == 0`` is the state before the branch's first step (sequence id -1) when
        the branch has stored turns and no boundary of its own with no items.
        """

    @abc.abstractmethod
    async def find_boundary(
        self, project_id: str, conversation_id: str, digest: str
    ) -> Boundary | None:
        """The most recently written boundary of any branch of the conversation whose
        history digest (``chatbot.conversations.continuation.history_digest``) is ``digest``."""

    # --- replies across processes -------------------------------------------------------
    @property
    @abc.abstractmethod
    def relay(self) -> RelayTable:
        """The signal and mirror rows of ``chatbot.relay``, in this database (once open).

        One object rather than a dozen store methods: its statements are one concept of
        their own, which the conversation methods above never use.
        """
