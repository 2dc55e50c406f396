"""One log line per request: method, path, status, time to first byte, total time, bytes.

A pure ASGI middleware rather than uvicorn's access log because a streamed reply's
interesting numbers (first byte, total duration) are only known as the body flows.
It sees every frame of a stream, so its ``send`` is a plain function that hands back
the inner ``send``'s awaitable: counting a frame costs a call, not a coroutine.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable

from starlette.types import Message, Receive, Scope, Send

from server.http_middleware import HttpMiddleware

logger = logging.getLogger("chatbot.access")


class AccessLogMiddleware(HttpMiddleware):
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 0
        first_byte: float | None = None
        sent = 0

        def send_and_measure(message: Message) -> Awaitable[None]:
            nonlocal status, first_byte, sent
            if message["type"] == "http.response.body":
                body = message.get("body", b"")
                if body and first_byte is None:
                    first_byte = time.perf_counter()
                sent += len(body)
            elif message["type"] == "http.response.start":
                status = message["status"]
            return send(message)

        outcome = ""
        try:
            await self.app(scope, receive, send_and_measure)
        except BaseException as exc:
            outcome = f" aborted={type(exc).__name__}"
            raise
        finally:
            total = (time.perf_counter() - started) * 1000
            ttfb = f"{(first_byte - started) * 1000:.1f}ms" if first_byte is not None else "-"
            client = scope.get("client")
            logger.info(
                "%s %s %s %d ttfb=%s total=%.1fms bytes=%d%s",
                client[0] if client else "-",
                scope["method"],
                scope["path"],
                status,
                ttfb,
                total,
                sent,
                outcome,
            )
