"""Server-Sent Events, whatever the protocol: the framing of an event, and the response.

Every protocol here sends its events as ``data: <payload>\\n\\n`` (one ``data:`` line, no
``event:`` line); the framing is spelled in this module only. The hot paths (one event
per token) build their frames as bytes from a constant head and tail: ``DATA_PREFIX``
and ``EVENT_END`` are those pieces.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

DATA_PREFIX: Final = b"data: "
EVENT_END: Final = b"\n\n"
# The sentinel that ends the streams of OpenAI's protocol and the AI SDK's.
DONE: Final = DATA_PREFIX + b"[DONE]" + EVENT_END


def data_event(payload: bytes) -> bytes:
    """One event whose ``data`` is ``payload`` (JSON with no raw newline, as orjson writes)."""
    return DATA_PREFIX + payload + EVENT_END


SSE_HEADERS = {
    "Cache-Control": "no-cache",
    # Reverse proxies (nginx) must pass frames on as they come, not buffer the response.
    "X-Accel-Buffering": "no",
}


class EventStreamResponse(StreamingResponse):
    """A streaming response that always runs ``on_close``, even if the body never started.

    The body is cancelled when the client disconnects; if that happens before the first
    frame, the body generator never runs and could not release what it holds.

    Starlette runs the body and a listener for the disconnect in an anyio task group: a
    task, a cancel scope and their bookkeeping per response, about a twentieth of a short
    turn's CPU in the profile. Here the body runs in the request's own task and one plain
    asyncio task waits for the disconnect and cancels it (hand-rolled for that cost; the
    behaviour is Starlette's).
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
            if scope["type"] == "http":
                await self._stream_until_disconnect(receive, send)
            else:
                await super().__call__(scope, receive, send)
        finally:
            if self._on_close is not None:
                await self._on_close()

    async def _stream_until_disconnect(self, receive: Receive, send: Send) -> None:
        streaming = asyncio.current_task()
        assert streaming is not None
        disconnected = False

        async def listen() -> None:
            nonlocal disconnected
            while (await receive())["type"] != "http.disconnect":
                pass
            disconnected = True
            streaming.cancel()

        listener = asyncio.get_running_loop().create_task(listen())
        try:
            await self.stream_response(send)
        except asyncio.CancelledError:
            # Ours (the client left): the response is over. Anyone else's: pass it on.
            if not disconnected or streaming.uncancel() > 0:
                raise
        finally:
            listener.cancel()
        if self.background is not None:
            await self.background()
