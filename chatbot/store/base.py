"""What the chatbot needs from storage, whichever database is behind it.

The store is a Burr persister used through ``initialize_from``: Burr reads a conversation
with ``load`` (honouring ``sequence_id``, as ``fork_from_app_id`` asks) and ``save`` stores
the turn's final state once; not ``with_state_persister``, which saves after every step (a
prompt without its reply if the process dies in between, and an fsync per step). States are
rows of Burr's ``burr_state``, which its stock persisters read. Beside each, in the same
transaction: the conversation's summary, its history digest and the turn's boundary
(``branches``). A conversation is a tree of branches, each a Burr application."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

import orjson
from burr.core import State

# Every turn stores a full snapshot (Burr's model); older ones are pruned past this many.
SNAPSHOTS_KEPT = 5
# Burr's persisters store a missing partition key as the empty string; so do we.
PARTITION_KEY_DEFAULT = ""
DEFAULT_LEASE_TTL_S = 30.0


class ConversationBusy(Exception):
    """Another turn of this conversation is in progress (here or in another process)."""

    code = "conversation_busy"


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


class TurnLease(Protocol):
    """The right to run one turn of one conversation; release it exactly once.

    ``lapsed_prompt``: the prompt of a turn whose process died before storing it, found
    in the expired lease this one took over (None almost always)."""

    lapsed_prompt: str | None

    async def release(self) -> None: ...


def encode_state(state: State) -> str:
    """A state as a ``burr_state`` row's JSON, with orjson: chat states hold only JSON
    values, which Burr's own ``State.serialize`` would write the same way."""
    return orjson.dumps(state.get_all()).decode()


def decode_state(payload: str | bytes) -> State:
    return State(orjson.loads(payload))
