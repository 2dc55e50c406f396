"""OpenAI's chat-completions dialect: ``chat.completion.chunk`` events, or one ``chat.completion``.

A stream is a role chunk (the graph's step has started), one content chunk per delta, a
chunk with the ``finish_reason``, with ``stream_options.include_usage`` a usage chunk whose
``choices`` is empty, and ``data: [DONE]``; exactly what OpenAI sends. A failure after the
stream started is one ``data: {"error": ...}`` event, on which OpenAI's SDKs raise, and
the stream ends there. The role and finish chunks also carry ``chatbot`` (the
conversation and the mode), a field OpenAI's clients ignore.

A content chunk is bytes around the ``orjson``-encoded text, the head and tail built once
per response: it is the one frame per token. The other chunks are shaped by the models
in ``server.openai_schemas``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any, assert_never

import orjson

from chatbot.domain.errors import TurnError
from chatbot.domain.events import (
    StepStarted,
    TurnCompleted,
    TurnEvent,
    TurnFailed,
    TurnInterrupted,
    TurnStarted,
    Usage,
)
from server.error_tables import OPENAI
from server.event_stream import DATA_PREFIX, DONE, EVENT_END, data_event
from server.openai_errors import openai_error_body
from server.openai_schemas import (
    AssistantMessageOut,
    ChatbotOut,
    ChatCompletionChunkOut,
    ChatCompletionOut,
    ChoiceOut,
    ChunkChoiceOut,
    DeltaOut,
    UsageOut,
)

_NO_USAGE = Usage()


def usage_out(usage: Usage | None) -> UsageOut:
    """What the upstream reported for the turn; an upstream that reports nothing counts 0."""
    usage = usage or _NO_USAGE
    return UsageOut(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


def error_frame(error: TurnError) -> bytes:
    """The mid-stream failure event: OpenAI's error object, on which its SDKs raise."""
    body = openai_error_body(OPENAI.failure(error.code).status, error.code, error.message)
    return data_event(orjson.dumps(body))


@dataclass(frozen=True, slots=True)
class CompletionIds:
    """What names one completion, streamed or whole: its id, when it was created, the
    model, and the conversation the request went to (``chatbot.conversation_id``)."""

    completion_id: str
    created: int
    model: str
    conversation_id: str


class ChunkFrames:
    """The frames of one streamed completion; ``delta`` is the hot path."""

    __slots__ = ("_delta_head", "_delta_tail", "_ids", "conversation_id", "include_usage")

    def __init__(self, ids: CompletionIds, *, include_usage: bool) -> None:
        self.conversation_id = ids.conversation_id
        self.include_usage = include_usage
        self._ids = {"id": ids.completion_id, "created": ids.created, "model": ids.model}
        head = orjson.dumps(
            {
                "id": ids.completion_id,
                "object": "chat.completion.chunk",
                "created": ids.created,
                "model": ids.model,
            }
        )[:-1]  # the same keys, in the same order, as the other chunks
        self._delta_head = DATA_PREFIX + head + b',"choices":[{"index":0,"delta":{"content":'
        # With include_usage, OpenAI sends "usage": null on every chunk but the last.
        usage = b',"usage":null' if include_usage else b""
        self._delta_tail = b'},"logprobs":null,"finish_reason":null}]' + usage + b"}" + EVENT_END

    def delta(self, text: str) -> bytes:
        return self._delta_head + orjson.dumps(text) + self._delta_tail

    def role(self, mode: str) -> bytes:
        return self._chunk(
            [ChunkChoiceOut(delta=DeltaOut(role="assistant", content=""))], mode=mode
        )

    def finish(self, outcome: TurnCompleted) -> bytes:
        reason: Any = outcome.finish_reason
        return self._chunk([ChunkChoiceOut(delta=DeltaOut(), finish_reason=reason)], outcome.mode)

    def usage(self, usage: Usage | None) -> bytes:
        return self._chunk([], usage=usage_out(usage))

    def _chunk(
        self,
        choices: list[ChunkChoiceOut],
        mode: str | None = None,
        usage: UsageOut | None = None,
    ) -> bytes:
        chatbot = ChatbotOut(conversation_id=self.conversation_id, mode=mode) if mode else None
        chunk = ChatCompletionChunkOut(**self._ids, choices=choices, usage=usage, chatbot=chatbot)
        data = chunk.model_dump(exclude=None if self.include_usage else {"usage"})
        if chatbot is None:
            del data["chatbot"]
        for choice in data["choices"]:  # OpenAI's deltas carry only what they set
            choice["delta"] = {k: v for k, v in choice["delta"].items() if v is not None}
        return data_event(orjson.dumps(data))


def chunk_frames(
    events: AsyncIterator[TurnEvent], frames: ChunkFrames, *, already: Iterable[TurnEvent] = ()
) -> AsyncIterator[bytes]:
    """The stream's bytes; ``already`` are events the route read before it answered."""
    return _frames(events, frames, tuple(already))


async def _frames(
    events: AsyncIterator[TurnEvent], frames: ChunkFrames, already: tuple[TurnEvent, ...]
) -> AsyncIterator[bytes]:
    for event in already:
        data = event_frames(event, frames)
        if data:
            yield data
    async for event in events:
        if type(event) is str:  # the hot path: one delta, one chunk
            yield frames.delta(event)
            continue
        data = event_frames(event, frames)
        if data:
            yield data


def event_frames(event: TurnEvent, frames: ChunkFrames) -> bytes:
    """The bytes one event becomes (empty for events this dialect does not carry)."""
    if type(event) is str:
        return frames.delta(event)
    match event:
        case TurnStarted():
            return b""  # OpenAI's clients hold the history themselves
        case StepStarted():
            return frames.role(event.action)
        case TurnCompleted():
            data = frames.finish(event)
            if frames.include_usage:
                data += frames.usage(event.usage)
            return data + DONE
        case TurnFailed():
            return error_frame(event.error)
        case TurnInterrupted():
            # A client that went away hears nothing; a stopped turn says why it ended.
            return error_frame(event.error) if event.error is not None else b""
        case str():
            return frames.delta(event)
        case _:
            assert_never(event)


def completion(outcome: TurnCompleted, ids: CompletionIds) -> ChatCompletionOut:
    """The whole reply as one ``chat.completion`` (a request without ``stream``)."""
    reason: Any = outcome.finish_reason
    return ChatCompletionOut(
        id=ids.completion_id,
        created=ids.created,
        model=ids.model,
        choices=[
            ChoiceOut(
                message=AssistantMessageOut(content=outcome.item["content"]),
                finish_reason=reason,
            )
        ],
        usage=usage_out(outcome.usage),
        chatbot=ChatbotOut(conversation_id=ids.conversation_id, mode=outcome.mode),
    )
