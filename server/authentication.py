"""Who is asking: the credentials a server accepts, and the user each one stands for.

Off unless configured: with neither ``CHATBOT_API_KEY`` nor ``CHATBOT_AUTH=keys`` every
request is the ``local`` user's, as on a laptop. Once on, every API route (ours, Burr's,
``/v1``, ``/metrics``) needs a credential:

- ``Authorization: Bearer <key>``: ``CHATBOT_API_KEY`` is the ``local`` user, an admin
  (so a deployment that had one key keeps its conversations); with ``keys``, a key from
  ``chatbot keys create`` is its user's.
- The session cookie a browser gets for a key (``POST …/session``): Burr's UI cannot add a
  header to its calls, and an HttpOnly cookie keeps the key out of page scripts. A key's
  cookie names the key and proves it was presented; revoking the key ends its sessions.
- On the chat WebSocket, whose browser clients cannot set headers, the key may instead be
  the first message (``routes/websocket.py``).

The middleware puts the caller in the request's scope (``CALLER``) for the routes'
dependencies; Burr's UI and ``/metrics``, which show every user's data, are for admins.
Health probes, the static pages and ``/info`` stay open.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from http.cookies import SimpleCookie

from starlette.types import ASGIApp, Receive, Scope, Send

from chatbot.domain.owners import LOCAL, Caller
from chatbot.users.api_keys import ApiKeys
from server.error_handlers import send_error_for
from server.paths import API_PREFIX, BURR_PREFIX, OPENAI_PREFIX, is_openai_path

SESSION_COOKIE = "chatbot_session"
# Where the middleware leaves the caller (None: the request carried no valid credential).
CALLER = "chatbot.caller"
_KEY_MESSAGE_PATHS = f"{API_PREFIX}/ws/"
_PROTECTED_PREFIXES = ("/api/", f"{BURR_PREFIX}/api/", "/metrics", OPENAI_PREFIX)
_ADMIN_PREFIXES = (f"{BURR_PREFIX}/api/", "/metrics")
_OPEN_PATHS = frozenset({f"{API_PREFIX}/info"})
_SESSION_CONTEXT = b"chatbot-session-v1"


def is_protected(path: str) -> bool:
    return path.startswith(_PROTECTED_PREFIXES) and path not in _OPEN_PATHS


def is_admin_only(path: str) -> bool:
    return path.startswith(_ADMIN_PREFIXES)


def _mac(secret: str, message: bytes = _SESSION_CONTEXT) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class Authenticator:
    """The credentials one server accepts. ``api_keys`` is bound once the store is open."""

    def __init__(self, *, admin_key: str | None, per_user_keys: bool) -> None:
        self._admin_key = admin_key
        self._admin_session = _mac(admin_key) if admin_key else None
        self.per_user_keys = per_user_keys
        self._api_keys: ApiKeys | None = None

    @property
    def enabled(self) -> bool:
        return self._admin_key is not None or self.per_user_keys

    def bind(self, api_keys: ApiKeys) -> None:
        self._api_keys = api_keys

    async def from_key(self, key: str) -> Caller | None:
        if self._is_admin_key(key):
            return LOCAL
        if self.per_user_keys and self._api_keys is not None:
            found = await self._api_keys.find(key)
            return found.caller if found is not None else None
        return None

    async def from_session(self, value: str) -> Caller | None:
        if self._admin_session is not None and hmac.compare_digest(value, self._admin_session):
            return LOCAL
        key_id, _, proof = value.partition(".")
        if not (self.per_user_keys and self._api_keys is not None and proof):
            return None
        found = await self._api_keys.get(key_id)
        if found is None or not hmac.compare_digest(proof, _mac(found.digest, key_id.encode())):
            return None
        return found.caller

    async def session_for(self, key: str) -> str | None:
        """The cookie value for a browser that presented ``key`` (None: not a key)."""
        if self._is_admin_key(key):
            return self._admin_session
        if self.per_user_keys and self._api_keys is not None:
            found = await self._api_keys.find(key)
            if found is not None:
                return f"{found.id}.{_mac(found.digest, found.id.encode())}"
        return None

    async def from_headers(self, headers: Iterable[tuple[bytes, bytes]]) -> Caller | None:
        """The caller a request's ``Authorization`` header or session cookie names."""
        for name, value in headers:
            if name == b"authorization" and (key := _bearer(value)):
                if caller := await self.from_key(key):
                    return caller
            elif name == b"cookie" and (session := session_cookie(value)):
                if caller := await self.from_session(session):
                    return caller
        return None

    def _is_admin_key(self, key: str) -> bool:
        admin_key = self._admin_key
        return admin_key is not None and hmac.compare_digest(key.encode(), admin_key.encode())


def session_cookie(header: bytes) -> str | None:
    cookie = SimpleCookie()
    try:
        cookie.load(header.decode("latin-1"))
    except Exception:  # a malformed Cookie header is no session, not a server error
        return None
    morsel = cookie.get(SESSION_COOKIE)
    return morsel.value if morsel else None


def _bearer(value: bytes) -> str | None:
    scheme, _, key = value.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return key.strip() or None


def bearer_key(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The key of a request's ``Authorization: Bearer`` header, if it has one."""
    return next((_bearer(v) for n, v in headers if n == b"authorization"), None)


class AuthMiddleware:
    """Resolves the caller of every protected request, or answers 401 (403 for a user who
    is not an admin on an admin's path) in the shape the path's clients read."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.auth = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if not is_protected(path):
            if path in _OPEN_PATHS:  # never refused, but says who is signed in
                scope[CALLER] = await self.auth.from_headers(scope["headers"])
            await self.app(scope, receive, send)
            return
        caller = scope[CALLER] = await self.auth.from_headers(scope["headers"])
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)  # a CORS preflight carries no credentials
            return
        if caller is not None and (caller.admin or not is_admin_only(path)):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            if caller is None and path.startswith(_KEY_MESSAGE_PATHS):
                await self.app(scope, receive, send)  # the key comes as the first message
                return
            await receive()  # the connect message; a close before accept answers 403
            await send({"type": "websocket.close", "code": 1008})
            return
        if caller is not None:
            await send_error_for(
                scope, send, 403, "forbidden", "This needs an admin's key or session."
            )
            return
        # OpenAI's clients read OpenAI's code for a bad key (and raise AuthenticationError).
        await send_error_for(
            scope,
            send,
            401,
            "invalid_api_key" if is_openai_path(path) else "unauthorized",
            "This server needs an API key: send 'Authorization: Bearer <key>'.",
            headers=[(b"www-authenticate", b"Bearer")],
        )
