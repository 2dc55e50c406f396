"""A reply's log in batches, both ways: what its process still has to write, and what a
reader elsewhere makes of the batches it reads. No I/O here: these decide, the relay's
tasks do the round trips.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from chatbot.domain.events import TurnEvent, TurnStarted
from chatbot.relay.event_codec import decode_event, encode_event
from chatbot.relay.rows import MirroredBatch
from chatbot.turns.replies import Reply, ReplyLog


def encode_events(events: Sequence[TurnEvent]) -> str:
    return orjson.dumps([encode_event(event) for event in events]).decode()


def decode_events(payload: str) -> list[TurnEvent]:
    return [decode_event(value) for value in orjson.loads(payload)]


class Mirror:
    """One reply being copied out for readers in other processes, a batch at a time.

    The first batch is the backlog (everything logged so far, possibly nothing yet), so a
    reader finds the mirror as soon as it is answered; every later one holds what was
    logged since, and the last one is marked ``done``.
    """

    __slots__ = ("finished_at", "reply", "_started", "_written")

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        # When the batch marked done was taken (a monotonic time), None until then.
        self.finished_at: float | None = None
        self._started = False
        self._written = 0

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    def next_batch(self) -> MirroredBatch | None:
        """The batch to write next, or None when nothing new was logged.

        It counts as written only once ``written`` is called: a batch whose write failed
        is offered again, with whatever was logged since, so no reader ever sees a gap.
        """
        if self.finished_at is not None:
            return None
        log = self.reply.log
        end = len(log.events)
        done = log.done
        if self._started and end == self._written and not done:
            return None
        reply = self.reply
        return MirroredBatch(
            reply.project_id,
            reply.conversation_id,
            reply.id,
            self._written,
            end,
            done,
            encode_events(log.events[self._written : end]),
        )

    def written(self, batch: MirroredBatch, now: float) -> None:
        """``batch`` (from ``next_batch``) is in the database."""
        self._started = True
        self._written = batch.next_index
        if batch.done:
            self.finished_at = now


def apply_batch(log: ReplyLog, batch: MirroredBatch) -> bool:
    """Add a read batch's new events to a reader's copy of the log; True if it grew or
    ended. Events the copy already has (an overlap) are skipped, so none is repeated."""
    have = len(log.events)
    if batch.first_index > have:
        raise ValueError(f"batch {batch.first_index}..{batch.next_index} leaves a gap after {have}")
    grew = False
    if batch.next_index > have:
        for event in decode_events(batch.payload)[have - batch.first_index :]:
            log.append(event)
        grew = True
    if batch.done and not log.done:
        log.finish()
        grew = True
    return grew


def turn_number(reply: Reply) -> int:
    """Which turn of its conversation a reply is (1 for the first): the user messages in
    the history before it, plus its own."""
    events = reply.log.events
    if events and isinstance(events[0], TurnStarted):
        history = events[0].history
    elif reply.turn is not None:
        history = reply.turn.history
    else:
        history = ()
    return sum(1 for item in history if item["role"] == "user") + 1


def rank(reply: Reply) -> int:
    """Orders the replies several processes may hold for one conversation: a later turn
    first, and of one turn, the reply still being written."""
    return 2 * turn_number(reply) + (0 if reply.done else 1)
