"""The client's address behind a reverse proxy, and the address that really connected.

uvicorn rewrites a request's client from ``X-Forwarded-For`` when the peer is one it
trusts (``FORWARDED_ALLOW_IPS``, loopback by default): the per-address limits and the
access log then see the real client. Its scheme comes from ``X-Forwarded-Proto`` the same
way, so a request a TLS-terminating proxy received over HTTPS reads as ``https`` (the
sign-in cookie's ``Secure`` flag depends on it: ``server.session_cookie``). An auth
proxy's identity header must be judged by the peer instead, the proxy itself, which that
rewrite hides. So ``chatbot serve`` turns uvicorn's own rewrite off and the app runs the
same middleware itself, after noting the peer in the scope (``PEER``).
"""

from __future__ import annotations

import os

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

# The (host, port) that connected, before any X-Forwarded-For rewrite.
PEER = "chatbot.peer"


class ForwardedClient(ProxyHeadersMiddleware):
    """uvicorn's ``X-Forwarded-For`` handling, keeping the peer it replaces."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app, trusted_hosts=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # type: ignore[override]
        if scope["type"] != "lifespan":
            scope[PEER] = scope.get("client")
        await super().__call__(scope, receive, send)  # type: ignore[arg-type]
