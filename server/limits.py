"""Request limits: body size, and an optional per-client rate limit on prompts."""

from __future__ import annotations

import time
from collections import OrderedDict

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.error_handlers import send_error_for
from server.errors import ApiError, retry_after

# Requests of these methods carry no body worth reading; every other method is limited.
BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with 413 before the app reads them.

    The body is read here (bounded) and replayed to the app, so a chunked upload
    without ``Content-Length`` is limited too. Later ``receive`` calls pass through,
    which keeps disconnect detection of streaming responses working.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in BODYLESS_METHODS:
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.max_bytes:
                    await self._refuse(scope, send)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client left before sending its body
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._refuse(scope, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        await send_error_for(
            scope,
            send,
            413,
            "payload_too_large",
            f"The request body is over the {self.max_bytes}-byte limit.",
        )


class RateLimiter:
    """Token buckets per client address: ``per_minute`` prompts, bursts up to ``burst``.

    Kept in this process's memory; with several processes each enforces its own share.
    """

    def __init__(self, per_minute: int, burst: int, max_clients: int = 10_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def check(self, client: str, now: float | None = None) -> float:
        """Take one token for ``client``; returns 0 if allowed, else seconds to wait."""
        now = time.monotonic() if now is None else now
        tokens, updated = self._buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - updated) * self.rate)
        if tokens >= 1:
            self._buckets[client] = (tokens - 1, now)
            wait = 0.0
        else:
            self._buckets[client] = (tokens, now)
            wait = (1 - tokens) / self.rate
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait


async def rate_limit(request: Request) -> None:
    """Dependency for the prompt routes; a no-op unless the limiter is configured.

    ``async`` although it never awaits: FastAPI runs a plain ``def`` dependency on a
    worker thread, a thread round trip for every prompt to look up a dict.
    """
    limiter: RateLimiter | None = request.app.state.rate_limiter
    if limiter is None:
        return
    client = request.client.host if request.client else "unknown"
    wait = limiter.check(client)
    if wait > 0:
        raise ApiError(
            429,
            "rate_limited",
            "Too many prompts from this client; wait a moment and try again.",
            headers=retry_after(wait),
        )
