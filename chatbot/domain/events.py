"""What a turn tells the world, as typed events: every wire protocol is built from these.

A turn yields, in order: one ``TurnStarted`` (the history before it), one ``StepStarted``
(the Burr action that is answering, so the routing is visible), zero or more deltas,
and exactly one outcome (``TurnCompleted``, ``TurnFailed`` or ``TurnInterrupted``).

A delta is the text itself, a plain ``str``: it is the one event per token, and a
wrapper object per token would be an allocation on the hot path that carries nothing.
Adapters tell it apart with ``type(event) is str``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from burr.core import State

from chatbot.domain.chat_items import ChatItem
from chatbot.domain.errors import TurnError


@dataclass(frozen=True, slots=True)
class TurnStarted:
    history: Sequence[ChatItem]
    prompt: str


@dataclass(frozen=True, slots=True)
class StepStarted:
    action: str


@dataclass(frozen=True, slots=True)
class Timings:
    # From the request's arrival: None when the reply had no text.
    first_delta_ms: float | None
    total_ms: float


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens the upstream reported for the turn's calls (classifier and reply together)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass(frozen=True, slots=True)
class TurnCompleted:
    item: ChatItem
    mode: str
    timings: Timings
    usage: Usage | None = None
    # "stop", or "length" when a client's token limit cut the reply short.
    finish_reason: str = "stop"
    # The state to store; the runtime settles it before passing the event on.
    state: State | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class TurnFailed:
    error: TurnError
    mode: str | None
    # The text the user had already seen when the failure came, kept as interrupted.
    partial: ChatItem | None = None
    state: State | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class TurnInterrupted:
    """Ended from outside: its client went away, or it was stopped (``error`` says why)."""

    partial: ChatItem | None
    mode: str | None
    error: TurnError | None = None
    state: State | None = field(default=None, repr=False, compare=False)


TurnOutcome = TurnCompleted | TurnFailed | TurnInterrupted
OUTCOMES = (TurnCompleted, TurnFailed, TurnInterrupted)
TurnEvent = TurnStarted | StepStarted | str | TurnOutcome
