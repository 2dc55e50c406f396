"""One prompt run through the graph, told as typed events (``chatbot.domain.events``).

A ``Turn`` knows nothing of storage, leases or HTTP: it drives the Burr application
and turns what happens into events, ending with exactly one outcome that carries the
state to store. The consistency rules it encodes:

* completed: the history gains the user's item and the reply;
* failed (upstream or internal error): the history gains the user's item, the text
  the user already saw (an assistant item marked ``interrupted``) if any, and an
  ``error`` item saying what went wrong;
* interrupted (ended from outside): the user's item and the partial reply, marked
  ``interrupted``.

Storing the outcome is the runtime's job (``chatbot.turns.live_turn``).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from burr.core import Application, State
from burr.core.application import PRIOR_STEP

from chatbot.domain.chat_items import (
    ChatHistory,
    ChatItem,
    as_history,
    error_item,
    interrupted_item,
    user_item,
)
from chatbot.domain.errors import INTERNAL_ERROR, TurnError
from chatbot.domain.events import (
    StepStarted,
    Timings,
    TurnCompleted,
    TurnEvent,
    TurnFailed,
    TurnInterrupted,
    TurnStarted,
)
from chatbot.domain.modes import RESPONSE_ACTIONS, reply_item_type

logger = logging.getLogger(__name__)

_HALT_AFTER = list(RESPONSE_ACTIONS)


class Turn:
    """Iterate ``events()`` once; if iteration ends early, ``interrupted()`` tells the outcome."""

    def __init__(
        self,
        app: Application,
        prompt: str,
        *,
        started: float | None = None,
        inputs: Mapping[str, Any] | None = None,
    ) -> None:
        self.app = app
        self.prompt = prompt
        # Burr inputs besides the prompt (a client's instructions, sampling options).
        self._inputs = {**(inputs or {}), "prompt": prompt}
        self.history: ChatHistory = as_history(app.state.get("chat_history"))
        self.mode: str | None = None
        self._parts: list[str] = []
        self._started = time.perf_counter() if started is None else started

    async def events(self) -> AsyncGenerator[TurnEvent, None]:
        yield TurnStarted(self.history, self.prompt)
        failure: TurnError | None = None
        first_delta_at: float | None = None
        try:
            action, container = await self.app.astream_result(
                halt_after=_HALT_AFTER, inputs=self._inputs
            )
            self.mode = action.name
            yield StepStarted(action.name)
            parts = self._parts
            async for result in container:
                delta = result["delta"]
                if first_delta_at is None:
                    first_delta_at = time.perf_counter()
                parts.append(delta)
                yield delta
            result, state = await container.get()
        except TurnError as exc:
            logger.warning("turn of %s failed: %s", self.app.uid, exc)
            forget_frames(exc)
            failure = exc.with_traceback(None)  # the outcome must not hold this frame
        except Exception as exc:
            logger.exception("turn of %s failed", self.app.uid)
            forget_frames(exc)
            failure = INTERNAL_ERROR
        if failure is not None:
            yield self._failed(failure)
            return
        finished_at = time.perf_counter()
        yield TurnCompleted(
            item=result["response"],
            mode=self.mode,
            timings=Timings(
                first_delta_ms=None
                if first_delta_at is None
                else _ms(first_delta_at - self._started),
                total_ms=_ms(finished_at - self._started),
            ),
            usage=result.get("usage"),
            finish_reason=result.get("finish_reason") or "stop",
            state=_restartable(state),
        )

    def interrupted(self, error: TurnError | None = None) -> TurnInterrupted:
        """The outcome of a turn ended from outside, keeping what the user saw."""
        state, history = self._base_state()
        partial = self._partial()
        if partial is not None:
            history = history.plus(partial)
            state = _with(state, chat_history=history, response=partial)
        else:
            state = _with(state, chat_history=history)
        return TurnInterrupted(partial=partial, mode=self.mode, error=error, state=state)

    def _failed(self, error: TurnError) -> TurnFailed:
        state, history = self._base_state()
        partial = self._partial()
        item = error_item(error.message)
        history = history.plus(partial, item) if partial is not None else history.plus(item)
        return TurnFailed(
            error=error,
            mode=self.mode,
            partial=partial,
            state=_with(state, chat_history=history, response=item),
        )

    def _partial(self) -> ChatItem | None:
        if not self._parts:
            return None
        return interrupted_item("".join(self._parts), reply_item_type(self.mode))

    def _base_state(self) -> tuple[State, ChatHistory]:
        state = self.app.state
        history = as_history(state.get("chat_history", self.history))
        if len(history) == len(self.history):  # ended before the prompt step ran
            history = history.plus(user_item(self.prompt))
        return state, history


def _with(state: State, **values: object) -> State:
    """``state`` with ``values`` set, ready to be the start of the next turn."""
    merged = {**state.get_all(), **values}
    merged.pop(PRIOR_STEP, None)
    return State(merged, typing_system=state.typing_system)


def _restartable(state: State) -> State:
    """Stored states carry no prior step, so the next turn always starts at ``prompt``."""
    return _with(state)


def forget_frames(exc: BaseException) -> None:
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
