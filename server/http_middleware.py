"""The shape of this server's pure ASGI middlewares: HTTP requests only.

A middleware here acts on HTTP requests; a WebSocket or lifespan scope passes through
untouched. Subclasses write ``http`` and never repeat that check.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class HttpMiddleware:
    """A pure ASGI middleware whose ``http`` sees every HTTP request and nothing else."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError
