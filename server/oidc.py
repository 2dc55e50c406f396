"""OpenID Connect (``CHATBOT_AUTH=oidc``): browsers sign in at the provider, API clients
send its tokens.

Browsers go through the authorization-code flow with PKCE, state and nonce (Authlib's
Starlette client does the flow and checks the ID token); the user it names is kept in a
signed, HttpOnly, SameSite=Lax session cookie (Starlette's ``SessionMiddleware``; Secure
when the request came over HTTPS: ``server.session_cookie``), which ``POST /auth/logout``
clears. API clients (the ``openai`` SDK, the AI SDK, WebSocket) send ``Authorization:
Bearer <JWT>``: joserfc checks its signature against the provider's JWKS (fetched once,
again when a token names a key it does not hold), the algorithm (the provider's
asymmetric ones only), ``iss``, ``aud`` (``CHATBOT_OIDC_AUDIENCE``), and ``exp``/``nbf``
with a small leeway.

The provider's discovery document is read on first use, so a server starts while its
provider is still starting; until it answers, sign-in answers 503.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from chatbot.domain.owners import LOCAL_USER, Caller, external_caller
from server.settings import ServerSettings

logger = logging.getLogger(__name__)

SESSION_USER = "chatbot_user"  # the signed-in user, in the session cookie
OIDC_SESSION_COOKIE = "chatbot_signin"
OIDC_SESSION_MAX_AGE_S = 12 * 3600  # a working day; then the provider is asked again
LEEWAY_S = 30
# Never HMAC (the client secret is no signing key for API tokens) and never "none".
ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
# A token naming a key the cached set lacks refetches the set, at most this often.
REFRESH_AFTER_S = 10.0


class TokenRefused(Exception):
    """A bearer token that is a JWT but not a valid one from our provider (the reason)."""


class ProviderUnavailable(Exception):
    """The provider's discovery document or keys could not be read."""


@dataclass(frozen=True, slots=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str
    audience: str
    user_claim: str
    admin_claim: str | None
    admin_values: frozenset[str]

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> OidcConfig | None:
        if not settings.auth_oidc:
            return None
        assert settings.oidc_issuer and settings.oidc_client_id
        secret = settings.oidc_client_secret
        return cls(
            issuer=settings.oidc_issuer.rstrip("/"),
            client_id=settings.oidc_client_id,
            client_secret=secret.get_secret_value() if secret else "",
            audience=settings.oidc_audience or settings.oidc_client_id,
            user_claim=settings.oidc_user_claim,
            admin_claim=settings.oidc_admin_claim,
            admin_values=frozenset(
                v.strip() for v in settings.oidc_admin_values.split(",") if v.strip()
            ),
        )

    def session_secret(self) -> str:
        """The key the session cookie is signed with: derived from the client secret, which
        every replica shares already and nobody else holds."""
        return hmac.new(
            self.client_secret.encode(), b"chatbot-oidc-session", hashlib.sha256
        ).hexdigest()

    def caller(self, claims: dict[str, Any]) -> Caller | None:
        user = claims.get(self.user_claim)
        if not isinstance(user, str) or not user or user == LOCAL_USER:
            return None  # ("local" is the server's own user: chatbot.domain.owners)
        granted = claims.get(self.admin_claim) if self.admin_claim else None
        values = {granted} if isinstance(granted, str) else set(granted or ())
        return external_caller(user, admin=not self.admin_values.isdisjoint(values))


def looks_like_jwt(value: str) -> bool:
    return value.count(".") == 2 and value.startswith("ey")


class Provider:
    """What this server knows of its OpenID provider: metadata and signing keys."""

    def __init__(self, config: OidcConfig) -> None:
        self.config = config
        self._http = httpx.AsyncClient(timeout=10, trust_env=False)
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._keys_read_at = 0.0
        self._lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def metadata_url(self) -> str:
        return f"{self.config.issuer}/.well-known/openid-configuration"

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            async with self._lock:
                if self._metadata is None:
                    self._metadata = await self._get(self.metadata_url)
        return self._metadata

    async def _get(self, url: str) -> dict[str, Any]:
        try:
            response = await self._http.get(url)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderUnavailable(f"{url}: {exc}") from exc
        if not isinstance(document, dict):
            raise ProviderUnavailable(f"{url}: not a JSON object")
        return document

    async def _key_set(self, metadata: dict[str, Any], refresh: bool) -> KeySet:
        now = time.monotonic()
        stale = refresh and now - self._keys_read_at > REFRESH_AFTER_S
        if self._keys is None or stale:
            async with self._lock:
                if self._keys is None or (refresh and now - self._keys_read_at > REFRESH_AFTER_S):
                    if not isinstance(metadata.get("jwks_uri"), str):
                        raise ProviderUnavailable("the discovery document has no jwks_uri")
                    try:
                        self._keys = KeySet.import_key_set(await self._get(metadata["jwks_uri"]))
                    except (JoseError, ValueError, KeyError, TypeError) as exc:
                        raise ProviderUnavailable(f"the provider's keys: {exc}") from exc
                    self._keys_read_at = time.monotonic()
        assert self._keys is not None
        return self._keys

    async def verify(self, token: str) -> Caller:
        """The user a bearer token is for; ``TokenRefused`` says why it is not valid."""
        metadata = await self.metadata()
        offered = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = [alg for alg in offered if alg in ASYMMETRIC]
        if not algorithms:  # joserfc would fall back to its defaults, HMAC among them
            raise TokenRefused("the provider offers no asymmetric signing algorithm")
        try:
            try:
                keys = await self._key_set(metadata, refresh=False)
                decoded = jwt.decode(token, keys, algorithms=algorithms)
            except InvalidKeyIdError:
                # A key we have not seen: the provider may have rotated; read its keys again.
                keys = await self._key_set(metadata, refresh=True)
                decoded = jwt.decode(token, keys, algorithms=algorithms)
            jwt.JWTClaimsRegistry(
                leeway=LEEWAY_S,
                iss={"essential": True, "value": metadata.get("issuer", self.config.issuer)},
                aud={"essential": True, "value": self.config.audience},
                exp={"essential": True},
            ).validate(decoded.claims)
        except JoseError as exc:
            raise TokenRefused(str(exc).rstrip(": ")) from exc
        except ValueError as exc:
            raise TokenRefused(str(exc)) from exc
        caller = self.config.caller(decoded.claims)
        if caller is None:
            raise TokenRefused(f"the token has no {self.config.user_claim!r} claim")
        return caller


def oidc_client(provider: Provider, scopes: str) -> StarletteOAuth2App:
    """Authlib's client for the browser flow (``server.routes.sign_in``)."""
    config = provider.config
    oauth = OAuth()
    return oauth.register(
        "oidc",
        client_id=config.client_id,
        client_secret=config.client_secret,
        server_metadata_url=provider.metadata_url,
        client_kwargs={"scope": scopes, "code_challenge_method": "S256"},
    )
