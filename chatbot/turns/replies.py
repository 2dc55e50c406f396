"""Replies that belong to their conversation, not to the connection that asked for them.

Each turn runs in a task of its own and writes its events into a ``ReplyLog``. Any
number of readers (the request that started it, a reload, another tab, a WebSocket)
read that log from any point and follow it live: a reader that goes away costs the
turn nothing, and one that comes back gets exactly what it missed. A finished turn's
log is kept for a short window so a client that reconnects just after the end still
gets the end; after that only the stored history remains. The registry of running turns
(``chatbot.turns.registry``) starts each reply and keeps it by conversation.

Why a log and not a queue per reader: readers come and go at any point of the turn,
and each needs the same prefix of events. One list of events shared by all readers
(the events are immutable) costs one reference per event, however many read it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chatbot.domain.events import OUTCOMES, TurnEvent, TurnOutcome

if TYPE_CHECKING:
    from chatbot.turns.live_turn import LiveTurn


class ReplyLog:
    """The events of one turn, appended by its runner, read by anyone from any index."""

    __slots__ = ("_waiters", "done", "events")

    def __init__(self) -> None:
        self.events: list[TurnEvent] = []
        self.done = False
        # One future per reader that has caught up, so cancelling one reader (its client
        # left) never cancels another's wait; made only when a reader has to wait.
        self._waiters: list[asyncio.Future[None]] = []

    def append(self, event: TurnEvent) -> None:
        self.events.append(event)
        if self._waiters:
            self._wake()

    def finish(self) -> None:
        self.done = True
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def read(self, start: int = 0) -> AsyncIterator[TurnEvent]:
        """Events from index ``start`` on, live until the turn's outcome."""
        index = start
        events = self.events
        while True:
            while index < len(events):
                event = events[index]
                index += 1
                yield event
            if self.done:
                return
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    async def read_indexed(self, start: int = 0) -> AsyncIterator[tuple[int, TurnEvent]]:
        """As ``read``, with each event's index (what a reader resumes after)."""
        index = start
        async for event in self.read(start):
            yield index, event
            index += 1


@dataclass(eq=False)
class Reply:
    """A running (or just finished) turn of one conversation and the log of what it said."""

    project_id: str
    conversation_id: str
    # None once the turn has settled: a finished reply keeps its log, not the turn (its
    # Burr application and tracker), for the retention window.
    turn: LiveTurn | None
    log: ReplyLog
    # Distinguishes this turn's event ids from another turn's of the same conversation.
    id: str
    task: asyncio.Task[None] | None = None

    @property
    def done(self) -> bool:
        return self.log.done

    @property
    def outcome(self) -> TurnOutcome | None:
        last = self.log.events[-1] if self.log.events else None
        return last if isinstance(last, OUTCOMES) else None

    def resume_index(self, last_event_id: str | None) -> int:
        """Where a reader that last saw ``last_event_id`` continues (0: from the start)."""
        if not last_event_id:
            return 0
        reply_id, _, index = last_event_id.rpartition(".")
        if reply_id != self.id or not index.isdigit():
            return 0  # an id of another turn: this one is all new to the reader
        return min(int(index) + 1, len(self.log.events))
