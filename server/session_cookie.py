"""The sign-in session cookie, marked ``Secure`` whenever its request came over HTTPS.

Starlette's ``SessionMiddleware`` decides the flag once, at start-up (``https_only``).
This server is reached over plain HTTP on loopback and in tests, and over HTTPS behind a
TLS-terminating proxy; the request's scheme says which (``X-Forwarded-Proto`` from a
trusted proxy has already set it, ``server.forwarded``). So two of Starlette's
middlewares, the same secret and cookie but one of them ``https_only``, and each request
goes through the one its scheme asks for: a cookie set over HTTPS is never sent back in
clear text, and a plain-HTTP deployment still signs in.
"""

from __future__ import annotations

from typing import Any

from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

_SECURE_SCHEMES = frozenset({"https", "wss"})


class SessionCookie:
    """``SessionMiddleware`` with its ``Secure`` flag chosen per request."""

    def __init__(self, app: ASGIApp, **options: Any) -> None:
        options.pop("https_only", None)  # chosen per request, below
        self._plain = SessionMiddleware(app, https_only=False, **options)
        self._secure = SessionMiddleware(app, https_only=True, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        secure = scope.get("scheme") in _SECURE_SCHEMES
        await (self._secure if secure else self._plain)(scope, receive, send)
