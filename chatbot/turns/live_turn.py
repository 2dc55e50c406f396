"""A turn as the runtime runs it: lease held, outcome stored before anyone hears of it.

``LiveTurn`` wraps a ``Turn``'s events and settles its outcome (stores the state,
releases the conversation's lease, closes the tracker, counts it) before passing the
outcome event on, so no client ever sees ``end`` for a turn that is not stored.

Settling runs in a task of its own, shielded: a request cancelled while it waits (its
client went away) still leaves the conversation consistent and unlocked. A turn whose
consumer stops early (disconnect, ``aclose``) is settled as interrupted, keeping the
partial reply; ``stop`` ends it on purpose and still lets the consumer send the reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from chatbot.domain.chat_items import ChatHistory
from chatbot.domain.errors import STORAGE_ERROR, TurnError
from chatbot.domain.events import OUTCOMES, TurnCompleted, TurnEvent, TurnFailed, TurnOutcome
from chatbot.store import ConversationStore, NewBranch, TurnLease
from chatbot.tracking.client import OffloopTrackingClient
from chatbot.turns.turn import Turn, forget_frames

if TYPE_CHECKING:
    from chatbot.metrics import Metrics

logger = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]]


class LiveTurn:
    """Created by ``TurnRegistry.admit`` holding the lease; iterate ``events()`` once.

    ``conversation_id`` is the conversation (what clients, replies, leases and metrics know);
    ``branch_app_id`` the Burr application the turn runs and is stored under, one of the
    conversation's branches (``chatbot.domain.branch_ids``). A branch's first turn carries
    ``new_branch``, so that storing it also records the branch, in one transaction.
    """

    def __init__(
        self,
        turn: Turn,
        *,
        project_id: str,
        conversation_id: str,
        store: ConversationStore,
        lease: TurnLease,
        tracker: OffloopTrackingClient | None,
        metrics: Metrics,
        spawn: Spawn,
        on_settled: Callable[[LiveTurn], None],
        branch_app_id: str | None = None,
        new_branch: NewBranch | None = None,
    ) -> None:
        self.project_id = project_id
        self.conversation_id = conversation_id
        self.branch_app_id = branch_app_id or conversation_id
        self.new_branch = new_branch
        self.outcome: TurnOutcome | None = None
        self.settled = asyncio.Event()
        self._turn = turn
        # The sequence id the turn's application was loaded at (None: nothing stored).
        self._loaded_sequence_id = turn.app.sequence_id
        self._store = store
        self._lease = lease
        self._tracker = tracker
        self._metrics = metrics
        self._spawn = spawn
        self._on_settled = on_settled
        self._settling = False
        self._stream: AsyncGenerator[TurnEvent, None] | None = None
        self._consumer: asyncio.Task[Any] | None = None
        # Set by stop(): the metric label, and the error the outcome names (None when
        # nobody is left to tell, e.g. its client went away and disconnects cancel).
        self._stop_label: str | None = None
        self._stop_error: TurnError | None = None

    @property
    def history(self) -> ChatHistory:
        """The conversation before this turn."""
        return self._turn.history

    @property
    def mode(self) -> str | None:
        return self._turn.mode

    def events(self) -> AsyncGenerator[TurnEvent, None]:
        if self._stream is None:
            self._stream = self._run()
        return self._stream

    def stop(self, error: TurnError | None, label: str = "stopped") -> bool:
        """End the turn now, keeping its partial reply; the consumer still receives a
        ``TurnInterrupted`` naming ``error``. False when it had already ended."""
        if self._stop_label is not None or self._settling:
            return False
        self._stop_label = label
        self._stop_error = error
        if self._consumer is not None and not self._consumer.done():
            self._consumer.cancel()
        return True

    async def aclose(self) -> None:
        """End the turn wherever it is; a response calls this however it ended.

        A client that left before the first event leaves nothing stored and its
        conversation unlocked; one that left mid-reply leaves the partial reply.
        """
        if self._stream is not None:
            await self._stream.aclose()
        if not self._settling:
            await self._settle(None, "abandoned")

    async def _run(self) -> AsyncGenerator[TurnEvent, None]:
        self._consumer = asyncio.current_task()
        if self._stop_label is not None:  # stopped before anyone listened
            yield await self._stopped()
            return
        try:
            try:
                async for event in self._turn.events():
                    if isinstance(event, OUTCOMES):
                        label = "completed" if isinstance(event, TurnCompleted) else "failed"
                        yield await self._settled(event, label)
                        return
                    yield event
            except asyncio.CancelledError as exc:
                forget_frames(exc)
                if self._stop_label is None:
                    raise  # cancelled from outside: `finally` keeps the partial reply
                if self._consumer is not None:
                    self._consumer.uncancel()
                yield await self._stopped()
        finally:
            if not self._settling:
                await self._settle(self._turn.interrupted(), "interrupted")

    async def _stopped(self) -> TurnOutcome:
        assert self._stop_label is not None
        return await self._settled(self._turn.interrupted(self._stop_error), self._stop_label)

    async def _settled(self, outcome: TurnOutcome, label: str) -> TurnOutcome:
        """Settle ``outcome`` and return what the client should hear (storage may fail)."""
        if await self._settle(outcome, label, heard=True):
            self.outcome = outcome
        else:
            self.outcome = TurnFailed(STORAGE_ERROR, outcome.mode)
        return self.outcome

    async def _settle(
        self, outcome: TurnOutcome | None, label: str, *, heard: bool = False
    ) -> bool:
        """Store ``outcome`` and release the lease in a shielded task; True once stored.

        ``heard``: a client is told this outcome, so it becomes ``self.outcome`` (a turn
        whose consumer left keeps its partial reply stored but has no outcome to tell).
        """
        self._settling = True
        self._metrics.turns.labels(label).inc()
        if isinstance(outcome, TurnCompleted) and outcome.timings.first_delta_ms is not None:
            self._metrics.first_delta.observe(outcome.timings.first_delta_ms / 1000)
        task = self._spawn(self._store_and_release(outcome, heard=heard))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            raise
        except Exception:
            return False  # already logged by the task
        return True

    def _stored_sequence_id(self) -> int:
        """The sequence id the turn is stored at: its last step's, and in any case one past
        the state it started from. A turn ended before its first step ran still adds a
        state (its prompt), which must not take the id of the state it started from: each
        stored turn is a boundary of its branch of its own (a fork's first turn may start
        at -1, the state before any step)."""
        current = self._turn.app.sequence_id
        loaded = self._loaded_sequence_id
        if loaded is None:
            return current if current is not None else 0
        return current if current is not None and current > loaded else loaded + 1

    async def _store_and_release(self, outcome: TurnOutcome | None, *, heard: bool) -> None:
        stored = False
        try:
            if outcome is not None and outcome.state is not None:
                await self._store.save(
                    self.project_id,
                    self.branch_app_id,
                    self._stored_sequence_id(),
                    self._turn.mode or "decide_mode",
                    outcome.state,
                    "completed" if isinstance(outcome, TurnCompleted) else "failed",
                    new_branch=self.new_branch,
                    ends_turn=True,  # its commit releases the lease too
                )
            stored = True
        except Exception:
            logger.exception("could not store turn of %s/%s", self.project_id, self.branch_app_id)
            raise
        finally:
            # Whoever waits on ``settled`` (a stop) reads ``outcome`` at once: it must be
            # set before, here, not when the consumer's task gets round to ``_settled``
            # (which asyncio does not promise to schedule first).
            if heard and outcome is not None:
                self.outcome = outcome if stored else TurnFailed(STORAGE_ERROR, outcome.mode)
            try:
                await self._lease.release()
            finally:
                if self._tracker is not None:
                    self._tracker.close()
                self.settled.set()
                self._on_settled(self)
