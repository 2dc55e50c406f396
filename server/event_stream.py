"""The HTTP response that carries a Server-Sent Events stream, whatever the protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

SSE_HEADERS = {
    "Cache-Control": "no-cache",
    # Reverse proxies (nginx) must pass frames on as they come, not buffer the response.
    "X-Accel-Buffering": "no",
}


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
