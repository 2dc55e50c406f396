"""Who is asking: the credentials a server accepts, and the user each one stands for.

Off unless configured: with neither ``CHATBOT_API_KEY`` nor ``CHATBOT_AUTH`` every
request is the ``local`` user's, as on a laptop. Once on, every API route (ours, Burr's,
``/v1``, ``/metrics``) needs a credential:

- With ``oidc`` (``server.oidc``), a browser's sign-in session at the OpenID provider, or
  an API client's ``Authorization: Bearer <JWT>`` from it.
- With ``proxy``, the header a trusted auth proxy (oauth2-proxy, an SSO gateway) names
  the user in, believed only from the proxy's addresses (``CHATBOT_TRUSTED_PROXIES``,
  judged by the peer that connected: ``server.forwarded``). From any other address a
  request carrying it is refused, whatever else it carries: a spoofed header never
  becomes anyone.

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
import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from http.cookies import SimpleCookie

from starlette.types import ASGIApp, Receive, Scope, Send

from chatbot.domain.owners import LOCAL, Caller, ReservedUserId, external_caller
from chatbot.users.api_keys import ApiKeys
from server.error_handlers import send_error_for
from server.forwarded import PEER
from server.oidc import (
    SESSION_USER,
    OidcConfig,
    Provider,
    ProviderUnavailable,
    TokenRefused,
    looks_like_jwt,
)
from server.paths import API_PREFIX, BURR_PREFIX, OPENAI_PREFIX, is_openai_path
from server.settings import Network, ServerSettings

logger = logging.getLogger(__name__)

SESSION_COOKIE = "chatbot_session"
# Where the middleware leaves the caller (None: the request carried no valid credential).
CALLER = "chatbot.caller"
_KEY_MESSAGE_PATHS = f"{API_PREFIX}/ws/"
_PROTECTED_PREFIXES = ("/api/", f"{BURR_PREFIX}/api/", "/metrics", OPENAI_PREFIX)
_BURR_API = f"{BURR_PREFIX}/api/"
_ADMIN_PREFIXES = (_BURR_API, "/metrics")
_OPEN_PATHS = frozenset({f"{API_PREFIX}/info"})
_SESSION_CONTEXT = b"chatbot-session-v1"


def is_protected(path: str) -> bool:
    return path.startswith(_PROTECTED_PREFIXES) and path not in _OPEN_PATHS


def is_admin_only(path: str, *, burr_per_user: bool = False) -> bool:
    """Whether only admins may call ``path``. Burr's UI reading the database shows each
    user their own runs (``server.burr_backend``); reading Burr's files it cannot tell
    whose a run is, so it is an admin's."""
    if burr_per_user and path.startswith(_BURR_API):
        return False
    return path.startswith(_ADMIN_PREFIXES)


def _mac(secret: str, message: bytes = _SESSION_CONTEXT) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class UntrustedHeader(Exception):
    """The auth proxy's user header where it cannot be believed (from an address that is
    not the proxy's, twice, or naming the reserved user); the message says which."""


@dataclass(frozen=True, slots=True)
class TrustedProxy:
    """``CHATBOT_AUTH=proxy``: whose header names the user, and from where."""

    user_header: bytes
    admin_header: bytes | None
    admin_values: frozenset[str]
    networks: tuple[Network, ...]

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> TrustedProxy | None:
        if not settings.auth_proxy or settings.proxy_user_header is None:
            return None
        admin = settings.proxy_admin_header
        return cls(
            settings.proxy_user_header.lower().encode(),
            admin.lower().encode() if admin else None,
            frozenset(v.strip() for v in settings.proxy_admin_values.split(",") if v.strip()),
            settings.trusted_networks,
        )

    def caller(self, scope: Scope) -> Caller | None:
        """The user the header names (None: no header); ``UntrustedHeader`` when the
        peer is not a trusted proxy."""
        users = [v for n, v in scope["headers"] if n == self.user_header]
        admins = [v for n, v in scope["headers"] if n == self.admin_header]
        if not users:
            return None
        header = self.user_header.decode()
        if not self._trusts(scope.get(PEER, scope.get("client"))):
            raise UntrustedHeader(f"The {header} header is accepted from the auth proxy only.")
        if len(users) > 1 or len(admins) > 1:
            # A proxy that appends its header rather than replacing the client's: which
            # copy is whose cannot be told, so neither is believed.
            raise UntrustedHeader(f"The {header} header (or the groups') came more than once.")
        user = users[0].decode("latin-1").strip()
        if not user:
            return None
        groups = {
            part.strip() for part in (admins[0] if admins else b"").decode("latin-1").split(",")
        }
        try:
            return external_caller(user, admin=not self.admin_values.isdisjoint(groups))
        except ReservedUserId as reserved:
            raise UntrustedHeader(f"The {header} header names {reserved}.") from None

    def _trusts(self, peer: tuple[str, int] | None) -> bool:
        try:
            address = ipaddress.ip_address(peer[0]) if peer else None
        except ValueError:  # a Unix socket's peer, say
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # an IPv4 proxy on a dual-stack socket
        return address is not None and any(address in network for network in self.networks)


class Authenticator:
    """The credentials one server accepts. ``api_keys`` is bound once the store is open."""

    def __init__(
        self,
        *,
        admin_key: str | None,
        per_user_keys: bool,
        proxy: TrustedProxy | None = None,
        oidc: Provider | None = None,
        session_secret: str | None = None,
        burr_per_user: bool = False,
    ) -> None:
        self.burr_per_user = burr_per_user
        self._session_secret = session_secret
        self._admin_key = admin_key
        self._admin_session = _mac(admin_key) if admin_key else None
        self.per_user_keys = per_user_keys
        self.proxy = proxy
        self.oidc = oidc
        self._api_keys: ApiKeys | None = None

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> Authenticator:
        return cls(
            admin_key=settings.admin_key,
            per_user_keys=settings.per_user_keys,
            proxy=TrustedProxy.from_settings(settings),
            oidc=Provider(config) if (config := OidcConfig.from_settings(settings)) else None,
            session_secret=(
                settings.session_secret.get_secret_value() if settings.session_secret else None
            ),
            burr_per_user=settings.resolved_tracking == "database",
        )

    @property
    def enabled(self) -> bool:
        sources = (self.proxy, self.oidc)
        return self._admin_key is not None or self.per_user_keys or any(sources)

    def bind(self, api_keys: ApiKeys) -> None:
        self._api_keys = api_keys

    async def from_key(self, key: str) -> Caller | None:
        """The caller a key or token stands for (None: none); ``TokenRefused`` for a JWT
        that is not a valid token of the OpenID provider."""
        if self._is_admin_key(key):
            return LOCAL
        if self.oidc is not None and looks_like_jwt(key):
            return await self.oidc.verify(key)
        if self.per_user_keys and self._api_keys is not None:
            found = await self._api_keys.find(key)
            return found.caller if found is not None else None
        return None

    async def from_session(self, value: str) -> Caller | None:
        presented = value.encode("utf-8", "surrogateescape")  # a cookie may hold anything
        admin_session = self._admin_session
        if admin_session is not None and hmac.compare_digest(presented, admin_session.encode()):
            return LOCAL
        key_id, _, proof = value.partition(".")
        if not (self.per_user_keys and self._api_keys is not None and proof):
            return None
        found = await self._api_keys.get(key_id)
        if found is None:
            return None
        expected = self._key_session(found.id, found.digest).encode()
        if not hmac.compare_digest(value.encode("utf-8", "surrogateescape"), expected):
            return None
        return found.caller

    def _key_session(self, key_id: str, digest: str) -> str:
        """A key's session: its id, and a proof only the server can make. With
        CHATBOT_SESSION_SECRET the proof needs that secret too, so that reading the
        database (where the digest is) is not enough to forge one."""
        secret = (self._session_secret or "") + digest
        return f"{key_id}.{_mac(secret, key_id.encode())}"

    async def session_for(self, key: str) -> str | None:
        """The cookie value for a browser that presented ``key`` (None: not a key)."""
        if self._is_admin_key(key):
            return self._admin_session
        if self.per_user_keys and self._api_keys is not None:
            found = await self._api_keys.find(key)
            if found is not None:
                return self._key_session(found.id, found.digest)
        return None

    async def caller(self, scope: Scope) -> Caller | None:
        """Who a request (or a socket's handshake) is from: the auth proxy's header, else
        its key or session. Raises ``UntrustedHeader`` (see the module)."""
        if self.proxy is not None and (named := self.proxy.caller(scope)) is not None:
            return named
        if self.oidc is not None and (user := (scope.get("session") or {}).get(SESSION_USER)):
            return Caller(user["id"], admin=bool(user.get("admin")))
        return await self.from_headers(scope["headers"])

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


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_OTHER_SITES = frozenset({b"cross-site", b"same-site"})


def _forged_from_elsewhere(scope: Scope) -> bool:
    """A change a browser sends on behalf of another site's page (CSRF): the browser says
    so in ``Sec-Fetch-Site``. Only cookies (ours, or an auth proxy's) ride along with such
    requests; a request carrying ``Authorization`` was written by its sender, so it passes,
    as does any client that is not a browser (no such header)."""
    if scope["method"] in _SAFE_METHODS:
        return False
    site = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            return False
        if name == b"sec-fetch-site":
            site = value
    return site in _OTHER_SITES


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
                try:
                    scope[CALLER] = await self.auth.caller(scope)
                except (UntrustedHeader, TokenRefused, ProviderUnavailable):
                    scope[CALLER] = None
            await self.app(scope, receive, send)
            return
        try:
            caller = scope[CALLER] = await self.auth.caller(scope)
        except UntrustedHeader as untrusted:
            await self._unauthorized(scope, receive, send, str(untrusted))
            return
        except TokenRefused as refused:
            message = f"The bearer token was refused: {refused}."
            await self._unauthorized(scope, receive, send, message)
            return
        except ProviderUnavailable:
            logger.warning("the OpenID provider is not answering", exc_info=True)
            message = "The sign-in provider is not answering; try again in a moment."
            await self._unavailable(scope, receive, send, message)
            return
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)  # a CORS preflight carries no credentials
            return
        if caller is not None and scope["type"] == "http" and _forged_from_elsewhere(scope):
            await send_error_for(
                scope,
                send,
                403,
                "cross_site_request",
                "A change sent by another site's page with this browser's cookie is refused; "
                "send it from this site, or with an Authorization header.",
            )
            return
        admin_only = is_admin_only(path, burr_per_user=self.auth.burr_per_user)
        if caller is not None and (caller.admin or not admin_only):
            await self.app(scope, receive, send)
            return
        if caller is None and scope["type"] == "websocket" and path.startswith(_KEY_MESSAGE_PATHS):
            await self.app(scope, receive, send)  # the key comes as the first message
            return
        if caller is not None and scope["type"] == "http":
            await send_error_for(
                scope, send, 403, "forbidden", "This needs an admin's key or session."
            )
            return
        message = "This server needs an API key: send 'Authorization: Bearer <key>'."
        await self._unauthorized(scope, receive, send, message)

    @staticmethod
    async def _unavailable(scope: Scope, receive: Receive, send: Send, message: str) -> None:
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": 1013})  # try again later
            return
        await send_error_for(scope, send, 503, "unavailable", message, [(b"retry-after", b"2")])

    @staticmethod
    async def _unauthorized(scope: Scope, receive: Receive, send: Send, message: str) -> None:
        if scope["type"] == "websocket":
            await receive()  # the connect message; a close before accept answers 403
            await send({"type": "websocket.close", "code": 1008})
            return
        # OpenAI's clients read OpenAI's code for a bad key (and raise AuthenticationError).
        await send_error_for(
            scope,
            send,
            401,
            "invalid_api_key" if is_openai_path(scope["path"]) else "unauthorized",
            message,
            headers=[(b"www-authenticate", b"Bearer")],
        )
