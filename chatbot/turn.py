"""One turn of one conversation: run the graph, stream its deltas, store the outcome.

The consistency rules every turn follows (the README's "failure behaviour"):

* completed: the user's item and the assistant's reply are stored before ``end`` is sent;
* failed (upstream error, internal error): the user's item and an ``error`` item saying
  what went wrong are stored, then the ``error`` frame is sent;
* interrupted (client gone, server stopping): the user's item and the partial reply,
  marked ``interrupted``, are stored; a stopping server still sends an ``error`` frame.

Storing and releasing the conversation's lease run in a task of their own, so a
cancelled request (its client went away) still leaves the conversation consistent and
unlocked.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import AsyncGenerator, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from burr.core import Application, State

from chatbot.chat_items import (
    ChatHistory,
    ChatItem,
    as_history,
    error_item,
    interrupted_item,
    user_item,
)
from chatbot.graph import RESPONSE_ACTIONS
from chatbot.llm.errors import UpstreamError
from chatbot.persistence import ConversationStore, TurnLease
from chatbot.state_ops import replace
from chatbot.tracking import OffloopTrackingClient

if TYPE_CHECKING:
    from chatbot.metrics import Metrics

logger = logging.getLogger(__name__)

_HALT_AFTER = list(RESPONSE_ACTIONS)


@dataclass(frozen=True, slots=True)
class TurnEnd:
    item: ChatItem
    mode: str
    first_delta_ms: float | None
    total_ms: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "mode": self.mode,
            "timings": {"first_delta_ms": self.first_delta_ms, "total_ms": self.total_ms},
        }


@dataclass(frozen=True, slots=True)
class TurnFailure:
    error: UpstreamError

    def as_dict(self) -> dict[str, Any]:
        return self.error.as_dict()


Spawn = Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]]

INTERNAL_ERROR = UpstreamError("internal_error", "The reply failed because of an internal error.")
STORAGE_ERROR = UpstreamError(
    "storage_error", "The reply could not be saved; please send your message again."
)
SHUTTING_DOWN = UpstreamError(
    "server_shutting_down",
    "The server is restarting; the reply so far was kept. Send your message again shortly.",
)


class Turn:
    """Created by ``Chatbot.begin_turn`` holding the conversation's lease; iterate ``deltas()``."""

    def __init__(
        self,
        *,
        project_id: str,
        app_id: str,
        prompt: str,
        app: Application,
        history: list[ChatItem],
        store: ConversationStore,
        lease: TurnLease,
        tracker: OffloopTrackingClient | None,
        spawn: Spawn,
        started: float,
        metrics: Metrics,
        on_settled: Callable[[Turn], None],
    ) -> None:
        self.project_id = project_id
        self.app_id = app_id
        self.prompt = prompt
        self.history = history
        self.outcome: TurnEnd | TurnFailure | None = None
        self.mode: str | None = None
        self._app = app
        self._store = store
        self._lease = lease
        self._tracker = tracker
        self._spawn = spawn
        self._started = started
        self._metrics = metrics
        self._on_settled = on_settled
        self._parts: list[str] = []
        self._settled = False
        self._stream: AsyncGenerator[str, None] | None = None
        self._consumer: asyncio.Task[Any] | None = None
        self._stop_error: UpstreamError | None = None

    def deltas(self) -> AsyncGenerator[str, None]:
        """The reply's text as it streams; ``outcome`` is set once this is exhausted."""
        if self._stream is None:
            self._stream = self._run()
        return self._stream

    def stop(self, error: UpstreamError) -> None:
        """End the turn early (the server is stopping): the consumer gets ``error`` as outcome."""
        if self._stop_error is None and not self._settled:
            self._stop_error = error
            if self._consumer is not None and not self._consumer.done():
                self._consumer.cancel()

    async def aclose(self) -> None:
        """End the turn wherever it is: a partial reply is stored as interrupted, the lease freed.

        Called when the response is over for any reason, so a client that left (even
        before the first byte) never leaves its conversation locked.
        """
        if self._stream is not None:
            await self._stream.aclose()
        if not self._settled:
            await self._settle(None, "failed", "abandoned")

    async def _run(self) -> AsyncGenerator[str, None]:
        self._consumer = asyncio.current_task()
        first_delta_at: float | None = None
        try:
            try:
                action, container = await self._app.astream_result(
                    halt_after=_HALT_AFTER, inputs={"prompt": self.prompt}
                )
                self.mode = action.name
                parts = self._parts
                async for result in container:
                    delta = result["delta"]
                    if first_delta_at is None:
                        first_delta_at = time.perf_counter()
                    parts.append(delta)
                    yield delta
                result, state = await container.get()
            except asyncio.CancelledError as exc:
                _forget_frames(exc)
                if self._stop_error is None:
                    raise  # the client went away: `finally` keeps the partial reply
                if self._consumer is not None:
                    self._consumer.uncancel()
                await self._settle(self._interrupted_state(), "failed", "stopped")
                self.outcome = TurnFailure(self._stop_error)
                return
            except UpstreamError as exc:
                logger.warning("turn %s/%s failed: %s", self.project_id, self.app_id, exc)
                _forget_frames(exc)
                failure = exc.with_traceback(None)  # the outcome must not hold this frame
            except Exception as exc:
                logger.exception("turn %s/%s failed", self.project_id, self.app_id)
                _forget_frames(exc)
                failure = INTERNAL_ERROR
            else:
                finished_at = time.perf_counter()
                if await self._settle(state, "completed", "completed"):
                    first_ms = None
                    if first_delta_at is not None:
                        first_ms = _ms(first_delta_at - self._started)
                        self._metrics.first_delta.observe(first_delta_at - self._started)
                    self.outcome = TurnEnd(
                        item=result["response"],
                        mode=self.mode,
                        first_delta_ms=first_ms,
                        total_ms=_ms(finished_at - self._started),
                    )
                else:
                    self.outcome = TurnFailure(STORAGE_ERROR)
                return
            stored = await self._settle(self._failed_state(failure.message), "failed", "failed")
            self.outcome = TurnFailure(failure if stored else STORAGE_ERROR)
        finally:
            if not self._settled:  # cancelled or closed mid-turn: keep what was said
                await self._settle(self._interrupted_state(), "failed", "interrupted")

    # --- outcomes ---------------------------------------------------------------------
    def _base_state(self) -> tuple[State, ChatHistory]:
        state = self._app.state
        history = as_history(state.get("chat_history", self.history))
        if len(history) == len(self.history):  # failed before the prompt step ran
            history = history.plus(user_item(self.prompt))
        return state, history

    def _failed_state(self, message: str) -> State:
        state, history = self._base_state()
        item = error_item(message)
        return replace(state, chat_history=history.plus(item), response=item)

    def _interrupted_state(self) -> State:
        state, history = self._base_state()
        if not self._parts:
            return replace(state, chat_history=history)
        item_type = "code" if self.mode == "generate_code" else "text"
        item = interrupted_item("".join(self._parts), item_type)
        return replace(state, chat_history=history.plus(item), response=item)

    async def _settle(self, state: State | None, status: str, outcome: str) -> bool:
        """Store ``state`` and release the lease in a task of its own; True once stored.

        If this request is cancelled while waiting, the task still completes, so the
        conversation is never left locked or half-written.
        """
        self._settled = True
        self._metrics.turns.labels(outcome).inc()
        task = self._spawn(self._store_and_release(state, status))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            raise
        except Exception:
            return False  # already logged by the task
        return True

    async def _store_and_release(self, state: State | None, status: str) -> None:
        try:
            if state is not None:
                await self._store.save_state(
                    self.project_id,
                    self.app_id,
                    self._app.sequence_id or 0,
                    self.mode or "decide_mode",
                    state,
                    status,
                )
        except Exception:
            logger.exception("could not store turn of %s/%s", self.project_id, self.app_id)
            raise
        finally:
            try:
                await self._lease.release()
            finally:
                if self._tracker is not None:
                    self._tracker.close()
                self._on_settled(self)


def _forget_frames(exc: BaseException) -> None:
    """Drop the locals of the finished frames ``exc`` passed through.

    Burr's stream wrapper keeps the exception that ended a stream in a local of its
    own finished generator frame, a reference cycle through every frame on the
    traceback, this turn's included. Left alone, each failed or interrupted turn (its
    Burr application and whole history) waits for the cycle collector, which an idle
    server may not run for a long time. Frames still running are left untouched.
    """
    traceback.clear_frames(exc.__traceback__)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)
