"""Server-Sent Events framing for the chat stream, and the response that carries it.

Frames are built as bytes directly: a delta frame is a constant prefix, the
``orjson``-encoded text and a constant suffix, with no dict built per token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from chatbot.turn import Turn, TurnEnd

_DELTA_HEAD = b'data: {"type":"delta","value":'
_FRAME_TAIL = b"}\n\n"

SSE_HEADERS = {
    "Cache-Control": "no-cache",
    # Reverse proxies (nginx) must pass frames on as they come, not buffer the response.
    "X-Accel-Buffering": "no",
}


# Burr's demo page splits each network chunk on "data: " before parsing JSON, so that
# text must never occur inside a payload; "\u0020" is the same space to any JSON parser.
_MARKER = b"data: "
_ESCAPED = b"data:\\u0020"


def frame(frame_type: str, value: Any) -> bytes:
    payload = orjson.dumps({"type": frame_type, "value": value})
    if _MARKER in payload:
        payload = payload.replace(_MARKER, _ESCAPED)
    return b"data: " + payload + b"\n\n"


def delta_frame(text: str) -> bytes:
    encoded = orjson.dumps(text)
    if _MARKER in encoded:
        encoded = encoded.replace(_MARKER, _ESCAPED)
    return _DELTA_HEAD + encoded + _FRAME_TAIL


async def turn_frames(turn: Turn) -> AsyncIterator[bytes]:
    """The contract's frame order: history, deltas as they come, then ``end`` or ``error``."""
    yield frame("chat_history", turn.history)
    async for delta in turn.deltas():
        yield delta_frame(delta)
    outcome = turn.outcome
    if isinstance(outcome, TurnEnd):
        yield frame("end", outcome.as_dict())
    elif outcome is not None:
        yield frame("error", outcome.as_dict())


class EventStreamResponse(StreamingResponse):
    """A streaming response that always runs ``on_close``, even if the body never started.

    Starlette cancels the body when the client disconnects; if that happens before the
    first frame, the body generator never runs and could not release what it holds.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        content: AsyncIterator[bytes],
        *,
        on_close: Callable[[], Awaitable[None]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(content, headers={**SSE_HEADERS, **(headers or {})})
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self._on_close is not None:
                await self._on_close()
