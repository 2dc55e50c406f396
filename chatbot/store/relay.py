"""The relay's rows: how a process asks another one about a reply it is writing.

Two small tables, written only when a client reaches a process other than the one
running its conversation's reply (``chatbot.relay`` has the protocol):

- ``chatbot_reply_signals``: a request (``watch`` or ``stop``) about one conversation,
  and, on the same row, the answer of the process that holds the reply. The asker
  deletes its row once answered; rows left by a process that died are swept.
- ``chatbot_reply_events``: a reply's events mirrored for readers elsewhere, one row per
  batch (a range of event indexes, as one JSON array), written by the reply's process.

The rows hold JSON text the relay encodes; this module and the two databases' versions
(``sqlite_relay``, ``postgres_relay``) know nothing of what it says.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

SIGNALS_TABLE = "chatbot_reply_signals"
EVENTS_TABLE = "chatbot_reply_events"

SignalKind = Literal["watch", "stop"]
# What a waiting part of the relay waits for: new signals (the holders of replies), or
# answers and batches (the readers elsewhere).
Change = Literal["signals", "replies"]


@dataclass(frozen=True, slots=True)
class Signal:
    """A request some process made about a conversation, waiting for its holder."""

    id: int
    project_id: str
    app_id: str
    kind: SignalKind


@dataclass(frozen=True, slots=True)
class WatchAnswer:
    """Which reply a watcher should read: its id, and whether it is still being written.

    ``rank`` orders the answers of several processes: a conversation's newer reply ranks
    higher, and the one being written highest. An answer only replaces a lower one.
    """

    reply_id: str
    running: bool
    rank: int


@dataclass(frozen=True, slots=True)
class StopAnswer:
    """How far the holder of a reply has got with a stop signal.

    ``taken`` is written before the holder stops the reply, ``outcome`` once the stopped
    turn is stored: so an asker that sees the turn's lease released while the stop is
    taken waits for the outcome, instead of taking the stop's own release of the lease
    for a turn that ended by itself.
    """

    taken: bool
    # The stopped turn's outcome (JSON; ``null``: nothing stopped), None until answered.
    outcome: str | None


@dataclass(frozen=True, slots=True)
class MirroredBatch:
    """Events ``first_index`` to ``next_index - 1`` of one reply, as a JSON array.

    ``done`` marks the reply's last batch: nothing follows it.
    """

    project_id: str
    app_id: str
    reply_id: str
    first_index: int
    next_index: int
    done: bool
    payload: str


@dataclass(frozen=True, slots=True)
class Activity:
    """What the database says about a conversation, before anyone is asked about it."""

    # A turn lease is live: some process is writing a reply (or died doing so).
    turn_running: bool
    # The turns stored (user messages in the history; 0 for no conversation at all).
    stored_turns: int
    # A turn was stored within the window asked about: its reply may still be readable.
    recently_stored: bool


class RelayTable(abc.ABC):
    """The relay's statements on one database; every method is one short round trip."""

    async def wait_for_change(self, kind: Change, within_s: float) -> None:
        """Until rows of this kind may have changed, at most ``within_s`` seconds.

        A database that can tell (PostgreSQL's notifications) wakes the caller early;
        the others just let the time pass, and the caller polls.
        """
        await asyncio.sleep(within_s)

    # --- signals ------------------------------------------------------------------------
    @abc.abstractmethod
    async def add_signal(self, project_id: str, app_id: str, kind: SignalKind) -> int:
        """Ask whoever holds the conversation's reply; answers the signal's id."""

    @abc.abstractmethod
    async def pending_signals(self, within_s: float) -> list[Signal]:
        """Signals of the last ``within_s`` seconds that still want an answer (a watch
        answered with a finished reply still does: a reply being written outranks it)."""

    @abc.abstractmethod
    async def answer_watch(self, signal_id: int, answer: WatchAnswer) -> None:
        """Answer a watch, unless an answer of equal or higher rank is already there."""

    @abc.abstractmethod
    async def watch_answer(self, signal_id: int) -> WatchAnswer | None: ...

    @abc.abstractmethod
    async def take_stop(self, signal_id: int, reply_id: str) -> None:
        """Say that this process holds the reply and is stopping it (before it does)."""

    @abc.abstractmethod
    async def answer_stop(self, signal_id: int, outcome: str) -> None:
        """Answer a stop with the stopped turn's outcome (JSON; ``null``: nothing stopped)."""

    @abc.abstractmethod
    async def stop_answer(self, signal_id: int) -> StopAnswer | None:
        """How far the stop has got; None when the signal is gone."""

    @abc.abstractmethod
    async def drop_signal(self, signal_id: int) -> None: ...

    # --- mirrored events ----------------------------------------------------------------
    @abc.abstractmethod
    async def write_batches(self, batches: Sequence[MirroredBatch]) -> None:
        """Insert the batches (of any replies) together."""

    @abc.abstractmethod
    async def read_batches(
        self, project_id: str, app_id: str, reply_id: str, start: int
    ) -> list[MirroredBatch]:
        """In index order: the batches holding events from index ``start`` on, one that
        starts there (even empty), and the last one (marked done) if it is written."""

    @abc.abstractmethod
    async def mirror_exists(self, project_id: str, app_id: str, reply_id: str) -> bool: ...

    @abc.abstractmethod
    async def drop_mirrors(self, replies: Sequence[tuple[str, str, str]]) -> None:
        """Delete the batches of these (project_id, app_id, reply_id)."""

    # --- housekeeping -------------------------------------------------------------------
    @abc.abstractmethod
    async def activity(self, project_id: str, app_id: str, stored_within_s: float) -> Activity:
        """Whether a turn of the conversation is running, how many are stored, and whether
        the last one was stored within ``stored_within_s`` seconds."""

    @abc.abstractmethod
    async def sweep(self, signals_older_than_s: float, mirrors_idle_s: float) -> None:
        """Drop signals older than the first bound, and mirrors whose newest batch is older
        than the second: rows their processes left behind when they died."""
