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

import orjson
from burr.core import State

from chatbot.domain.branch_tree import BranchRecord
from chatbot.domain.chat_items import ChatItem

__all__ = ["BranchRecord"]
TITLE_MAX_CHARS = 80
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


class SchemaTooNew(StoreUnavailable):
    """The database was migrated by a newer release than this one: refuse to touch it."""


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


def encode_state(state: State) -> str:
    """A state as the JSON text of a ``burr_state`` row (orjson: several times ``json``'s speed).

    Chat states hold only JSON values, which is what Burr's own ``State.serialize`` would
    write for them too, so Burr's persisters read these rows unchanged.
    """
    return orjson.dumps(state.get_all()).decode()


def decode_state(payload: str | bytes) -> State:
    return State(orjson.loads(payload))
