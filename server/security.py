"""API-key authentication and the security headers every response carries.

With ``CHATBOT_API_KEY`` set, the API (ours and Burr's, which exposes every conversation)
needs ``Authorization: Bearer <key>``. Browsers get a session cookie instead once they
have presented the key (``POST …/session``): Burr's UI cannot add a header to its own
calls, and a cookie keeps the key itself out of page scripts. Health probes, the
static pages and ``/info`` (which says whether a key is needed) stay open.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable
from http.cookies import SimpleCookie

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.error_handlers import send_error_for
from server.http_middleware import HttpMiddleware
from server.paths import API_PREFIX, BURR_PREFIX, OPENAI_PREFIX, is_openai_path

SESSION_COOKIE = "chatbot_session"
# Browsers cannot set headers on a WebSocket: the chat socket also takes the key as its first
# message, so its handshake passes without one, marked in the scope under this name.
SOCKET_AUTHORIZED = "chatbot.authorized"
_KEY_MESSAGE_PATHS = f"{API_PREFIX}/ws/"
_PROTECTED_PREFIXES = ("/api/", f"{BURR_PREFIX}/api/", "/metrics", OPENAI_PREFIX)
_OPEN_PATHS = frozenset({f"{API_PREFIX}/info"})


def session_token(api_key: str) -> str:
    """A cookie value derived from the key: it proves knowledge of it without being it."""
    return hmac.new(api_key.encode(), b"chatbot-session-v1", hashlib.sha256).hexdigest()


def key_matches(api_key: str, presented: str) -> bool:
    return hmac.compare_digest(presented.encode(), api_key.encode())


def is_protected(path: str) -> bool:
    return path.startswith(_PROTECTED_PREFIXES) and path not in _OPEN_PATHS


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self._bearer = f"Bearer {api_key}".encode()
        self._session = session_token(api_key).encode()

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization" and hmac.compare_digest(value, self._bearer):
                return True
            if name == b"cookie":
                cookie = SimpleCookie()
                try:
                    cookie.load(value.decode("latin-1"))
                except Exception:
                    continue
                morsel = cookie.get(SESSION_COOKIE)
                if morsel and hmac.compare_digest(morsel.value.encode(), self._session):
                    return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and is_protected(scope["path"]):
            authorized = self._authorized(scope)
            if not authorized and not scope["path"].startswith(_KEY_MESSAGE_PATHS):
                await receive()  # the connect message; a close before accept answers 403
                await send({"type": "websocket.close", "code": 1008})
                return
            scope[SOCKET_AUTHORIZED] = authorized
            await self.app(scope, receive, send)
            return
        if (
            scope["type"] != "http"
            or scope["method"] == "OPTIONS"  # CORS preflight carries no credentials
            or not is_protected(scope["path"])
            or self._authorized(scope)
        ):
            await self.app(scope, receive, send)
            return
        # OpenAI's clients read OpenAI's code for a bad key (and raise AuthenticationError).
        await send_error_for(
            scope,
            send,
            401,
            "invalid_api_key" if is_openai_path(scope["path"]) else "unauthorized",
            "This server needs an API key: send 'Authorization: Bearer <key>'.",
            headers=[(b"www-authenticate", b"Bearer")],
        )


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
