"""The security headers every response carries (and the chat UI's page its own policy).

Who may ask is ``server.authentication``'s.
"""

from __future__ import annotations

from collections.abc import Awaitable

from starlette.types import Message, Receive, Scope, Send

from server.http_middleware import HttpMiddleware

# The chat UI is a single origin app with its own bundled scripts and styles only.
UI_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
UI_HEADERS = {
    "Content-Security-Policy": UI_CSP,
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
_COMMON_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


class SecurityHeadersMiddleware(HttpMiddleware):
    """Headers every response gets; the UI's page adds its CSP itself (``server/ui.py``).

    Only ``http.response.start`` needs it, but a stream sends every frame through it: its
    ``send`` is a plain function returning the inner ``send``'s awaitable, so a frame
    passes for the price of a call and one comparison, with no coroutine of its own.
    """

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        def send_with_headers(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *_COMMON_HEADERS]
            return send(message)

        await self.app(scope, receive, send_with_headers)
