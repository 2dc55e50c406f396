"""A scripted stand-in for ``ChatModel`` and an in-memory store, for running turns in-process.

The turn's unit tests need neither a socket nor a database: the graph is the real one,
only the model's two calls and the store's write are replaced.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from burr.core import State

from chatbot.domain.errors import TurnError
from chatbot.domain.events import Usage
from chatbot.llm.usage import StreamReport


@dataclass
class FakeModel:
    """Answers the classifier with ``mode`` and streams ``tokens``, failing as scripted."""

    mode: str = "answer_question"
    tokens: list[str] = field(default_factory=lambda: ["It ", "is ", "so."])
    # Raised after this many tokens were streamed (None: never).
    fail_after: int | None = None
    error: BaseException = field(
        default_factory=lambda: TurnError("upstream_stream_cut", "The reply was cut off.")
    )
    # Set to block the stream after this many tokens until released.
    hold_after: int | None = None
    released: asyncio.Event = field(default_factory=asyncio.Event)
    streamed_messages: list[list[dict[str, str]]] = field(default_factory=list)
    classified_messages: list[list[dict[str, str]]] = field(default_factory=list)
    stream_options: list[Mapping[str, Any] | None] = field(default_factory=list)
    # What the upstream reports spending on each call, and why a reply ended.
    classifier_usage: Usage | None = None
    reply_usage: Usage | None = None
    finish_reason: str = "stop"

    async def complete(
        self,
        messages: list[dict[str, str]],
        *,
        on_usage: Callable[[Usage], None] | None = None,
    ) -> str:
        self.classified_messages.append(messages)
        if on_usage is not None and self.classifier_usage is not None:
            on_usage(self.classifier_usage)
        return self.mode

    async def stream(
        self,
        messages: list[dict[str, str]],
        *,
        options: Mapping[str, Any] | None = None,
        report: StreamReport | None = None,
    ) -> AsyncIterator[str]:
        self.streamed_messages.append(messages)
        self.stream_options.append(options)
        for index, token in enumerate(self.tokens):
            if index == self.fail_after:
                raise self.error
            if index == self.hold_after:
                await self.released.wait()
            yield token
        if self.fail_after is not None and self.fail_after >= len(self.tokens):
            raise self.error
        if report is not None:
            report.usage = self.reply_usage
            report.finished(self.finish_reason)


class MemoryLease:
    def __init__(self) -> None:
        self.released = 0

    async def release(self) -> None:
        self.released += 1


@dataclass
class MemoryStore:
    """Keeps saved turn states in a list; ``fail`` makes the next save raise."""

    saved: list[tuple[str, str, str, State, str]] = field(default_factory=list)
    fail: bool = False

    async def save(
        self,
        project_id: str,
        app_id: str,
        sequence_id: int,
        position: str,
        state: State,
        status: str,
        **kwargs: Any,
    ) -> None:
        await asyncio.sleep(0)
        if self.fail:
            raise OSError("disk full")
        self.saved.append((project_id, app_id, position, state, status))

    @property
    def last_history(self) -> list[dict[str, Any]]:
        return list(self.saved[-1][3]["chat_history"])
