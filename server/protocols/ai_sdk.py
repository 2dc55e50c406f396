"""The Vercel AI SDK's UI message stream: what ``useChat`` and ``readUIMessageStream`` read.

Each part is one SSE ``data:`` line of JSON, and the stream ends with ``data: [DONE]``.
A turn is told as one assistant message:

    start (messageId: the reply's id, messageMetadata: {"prompt"}: what the turn answers,
           for a reader that reattached after a reload and has no prompt yet)
    data-route {"mode": <the response action the graph chose>}
    text-start, text-delta…, text-end  (one text part, id "text")
    message-metadata {"outcome", "mode", "timings" | "error"}
    error {errorText}                   (failed turns only)
    finish, or abort when the reply was stopped
    [DONE]

Only part types and fields the AI SDK's own schema defines are sent, none of the optional
ones added in later majors (``finish.finishReason``, ``abort.reason``): clients of older
majors reject what they do not know. Everything of ours rides in the two extension points
the protocol has, ``data-*`` parts and message metadata.

A delta is the one part per token: it is built as bytes from a constant head, the
``orjson``-encoded text and a constant tail, with no dict per token. ``orjson`` escapes
newlines, so a part is always a single ``data:`` line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Final, assert_never

import orjson

from chatbot.domain.errors import REPLY_STOPPED
from chatbot.domain.events import (
    StepStarted,
    TurnCompleted,
    TurnEvent,
    TurnFailed,
    TurnInterrupted,
    TurnOutcome,
    TurnStarted,
)
from server.event_stream import DATA_PREFIX, DONE, EVENT_END, data_event
from server.schemas import TimingsOut, TurnErrorOut, UIMessageMetadataOut

UI_MESSAGE_STREAM_HEADERS: Final = {"x-vercel-ai-ui-message-stream": "v1"}

TEXT_PART_ID: Final = "text"
_DELTA_HEAD: Final = DATA_PREFIX + b'{"type":"text-delta","id":"text","delta":'
_PART_TAIL: Final = b"}" + EVENT_END


def part(part_type: str, **fields: Any) -> bytes:
    return data_event(orjson.dumps({"type": part_type, **fields}))


def delta_part(text: str) -> bytes:
    return _DELTA_HEAD + orjson.dumps(text) + _PART_TAIL


_TEXT_START: Final = part("text-start", id=TEXT_PART_ID)
_TEXT_END: Final = part("text-end", id=TEXT_PART_ID)
_FINISH: Final = part("finish")
_ABORT: Final = part("abort")


def metadata(outcome: TurnOutcome) -> UIMessageMetadataOut:
    """How the turn ended, as the message's metadata."""
    match outcome:
        case TurnCompleted(timings=timings):
            return UIMessageMetadataOut(
                outcome="completed",
                mode=outcome.mode,
                timings=TimingsOut(
                    first_delta_ms=timings.first_delta_ms, total_ms=timings.total_ms
                ),
            )
        case TurnFailed(error=error):
            return UIMessageMetadataOut(
                outcome="failed", mode=outcome.mode, error=TurnErrorOut.of(error)
            )
        case TurnInterrupted(error=None):
            # Its client went away and disconnects cancel: only another reader is told.
            return UIMessageMetadataOut(outcome="interrupted", mode=outcome.mode)
        case TurnInterrupted(error=error) if error.code == REPLY_STOPPED.code:
            return UIMessageMetadataOut(outcome="stopped", mode=outcome.mode)
        case TurnInterrupted(error=error):
            # Ended by the server (shutting down, conversation deleted): the user must know.
            return UIMessageMetadataOut(
                outcome="interrupted", mode=outcome.mode, error=TurnErrorOut.of(error)
            )
        case _:
            assert_never(outcome)


def outcome_parts(outcome: TurnOutcome, text_open: bool) -> list[bytes]:
    """The parts that close the message: its metadata, then why it ended."""
    told = metadata(outcome)
    parts = [_TEXT_END] if text_open else []
    parts.append(part("message-metadata", messageMetadata=told.model_dump(exclude_unset=True)))
    if told.error is not None:
        parts.append(part("error", errorText=told.error.message))
    # Ended from outside with nothing to report (a stop): the AI SDK's own word is abort.
    ended_quietly = told.outcome in ("stopped", "interrupted") and told.error is None
    parts.append(_ABORT if ended_quietly else _FINISH)
    parts.append(DONE)
    return parts


async def ui_message_stream(
    events: AsyncIterator[TurnEvent], message_id: str
) -> AsyncIterator[bytes]:
    """The parts of one turn's events, from its start: every reader (a reconnect too)
    replays the whole message, as the AI SDK's resume expects."""
    text_open = False
    async for event in events:
        if type(event) is str:  # the hot path: one delta, one part
            yield delta_part(event)
            continue
        match event:
            case TurnStarted(prompt=prompt):
                yield part("start", messageId=message_id, messageMetadata={"prompt": prompt})
            case StepStarted(action=action):
                yield part("data-route", id="route", data={"mode": action})
                yield _TEXT_START
                text_open = True
            case TurnCompleted() | TurnFailed() | TurnInterrupted():
                for closing in outcome_parts(event, text_open):
                    yield closing
                return
            case str():
                yield delta_part(event)
            case _:
                assert_never(event)
