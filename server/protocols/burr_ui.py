"""The Burr demo page's SSE dialect: ``chat_history``, ``delta``s, then ``end`` or ``error``.

Each frame is ``data: <json>\\n\\n`` with no ``id:`` line, comment or ``[DONE]``: Burr's
page ``JSON.parse``s everything after each ``data: ``. A delta frame is built as bytes
(a constant prefix, the ``orjson``-encoded text, a constant suffix): it is the one frame
per token, so no dict is built for it. The once-per-turn frames are shaped by the
response models in ``server.schemas``.

The JSON of each frame (``payload``, ``event_payload``) is also what the WebSocket channel
sends as its messages, so a frame is shaped here once for both transports.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, assert_never

import orjson

from chatbot.domain import events
from chatbot.turns.replies import Reply
from server.event_stream import DATA_PREFIX, EVENT_END, data_event
from server.schemas import CHAT_HISTORY, TurnEndOut, TurnErrorOut

_DELTA_JSON_HEAD = b'{"type":"delta","value":'
_DELTA_HEAD = DATA_PREFIX + _DELTA_JSON_HEAD
_FRAME_TAIL = b"}" + EVENT_END

# Burr's demo page splits each network chunk on "data: " before parsing JSON, so that
# text must never occur inside a payload; "\u0020" is the same space to any JSON parser.
_MARKER = DATA_PREFIX
_ESCAPED = b"data:\\u0020"


def payload(frame_type: str, value: Any) -> bytes:
    """The JSON of one frame, ``{"type": …, "value": …}``."""
    data = orjson.dumps({"type": frame_type, "value": value})
    if _MARKER in data:
        data = data.replace(_MARKER, _ESCAPED)
    return data


def frame(frame_type: str, value: Any) -> bytes:
    return data_event(payload(frame_type, value))


def _delta_text(text: str) -> bytes:
    encoded = orjson.dumps(text)
    if _MARKER in encoded:
        encoded = encoded.replace(_MARKER, _ESCAPED)
    return encoded


def delta_payload(text: str) -> bytes:
    return _DELTA_JSON_HEAD + _delta_text(text) + b"}"


def delta_frame(text: str) -> bytes:
    return _DELTA_HEAD + _delta_text(text) + _FRAME_TAIL


def event_payload(event: events.TurnEvent) -> bytes | None:
    """The JSON of the frame for one event, or None for an event this dialect does not carry."""
    if type(event) is str:
        return delta_payload(event)
    match event:
        case events.TurnStarted():
            # Stored items are already the wire shape of ChatItemOut.
            return payload(CHAT_HISTORY, event.history)
        case events.StepStarted():
            return None  # the page knows no such frame; the mode comes with `end`
        case events.TurnCompleted():
            return payload("end", TurnEndOut.of(event).model_dump(exclude_unset=True))
        case events.TurnFailed():
            return payload("error", TurnErrorOut.of(event.error).model_dump())
        case events.TurnInterrupted():
            # A client that went away hears nothing; a stopped turn says why it ended.
            if event.error is None:
                return None
            return payload("error", TurnErrorOut.of(event.error).model_dump())
        case str():
            return delta_payload(event)
        case _:
            assert_never(event)


def event_frame(event: events.TurnEvent) -> bytes | None:
    """The SSE frame for one event, or None for an event this dialect does not carry."""
    if type(event) is str:
        return delta_frame(event)
    data = event_payload(event)
    return None if data is None else data_event(data)


async def resumable_frames(reply: Reply, start: int) -> AsyncIterator[bytes]:
    """The same frames from event ``start`` on, each with an SSE ``id:`` naming its event.

    For clients that reconnect (``Last-Event-ID``); never on the demo page's own route,
    whose reader would take the ``id:`` line for part of the JSON.

    A reader that reattaches needs two things the demo page's dialect leaves out: the
    running turn's prompt (the history frame is the history before it) and the step that
    answers. They come as extension frames (``prompt``, ``step``), which a Burr-UI-style
    reader ignores.
    """
    prefix = f"id: {reply.id}.".encode()
    async for index, event in reply.log.read_indexed(start):
        if isinstance(event, events.TurnStarted):
            # The history frame carries no id of its own: it is the same for every reader.
            yield frame(CHAT_HISTORY, event.history)
            data: bytes | None = frame("prompt", event.prompt)
        elif isinstance(event, events.StepStarted):
            data = frame("step", event.action)
        else:
            data = event_frame(event)
        if data is not None:
            yield b"%s%d\n%s" % (prefix, index, data)


async def burr_ui_frames(stream: AsyncIterator[events.TurnEvent]) -> AsyncIterator[bytes]:
    async for event in stream:
        if type(event) is str:  # the hot path: one delta, one frame
            yield delta_frame(event)
            continue
        data = event_frame(event)
        if data is not None:
            yield data
