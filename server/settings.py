"""The HTTP server's settings: the chatbot's, plus what only the web layer needs.

Same sources and prefix as ``chatbot.settings.Settings`` (environment, ``.env``,
``CHATBOT_``), so one set of variables configures the whole process.
"""

from __future__ import annotations

import ipaddress
from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator

from chatbot.settings import Settings

AUTH_SOURCES = frozenset({"none", "keys", "oidc", "proxy"})
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ServerSettings(Settings):
    # --- the browser UIs --------------------------------------------------------------
    # /v1's and the AI SDK's chats live here; a project id like any other (no ":").
    ui_project_id: str = Field(default="demo_streaming_chatbot", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    ui_dist_dir: Path | None = None
    burr_ui_enabled: bool = True
    # Off by default: Burr's bundled examples would otherwise patch the openai SDK globally.
    otel_instrument_openai: bool = False

    # --- security and limits ----------------------------------------------------------
    # Who may ask, a comma-separated list of sources: `none` (the default: everyone is the
    # `local` user), `keys` (per-user keys from `chatbot keys create`), `proxy` (a trusted
    # auth proxy's header names the user).
    auth: str = "none"
    # `oidc`: the OpenID provider (discovery at {issuer}/.well-known/openid-configuration),
    # this server's client there, the `aud` API clients' tokens must carry (default: the
    # client id), the claim that names the user, and the claim and values that make an admin.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_audience: str | None = None
    oidc_user_claim: str = "sub"
    oidc_admin_claim: str | None = None
    oidc_admin_values: str = ""
    oidc_scopes: str = "openid email profile"
    # `proxy`: the header the auth proxy names the user in, and optionally one whose
    # comma-separated values (groups) make an admin; believed only from these addresses
    # or networks (comma-separated).
    proxy_user_header: str | None = None
    proxy_admin_header: str | None = None
    proxy_admin_values: str = ""
    trusted_proxies: str = ""
    # When set, every API route needs `Authorization: Bearer <key>` (or the session cookie);
    # with `keys` too, this key stays valid as the `local` user's, an admin.
    api_key: SecretStr | None = None
    # With `keys`: signs browser sessions made with a user's key, so that reading the
    # database is not enough to forge one. Set it (the same on every replica) in production.
    session_secret: SecretStr | None = None
    cors_origins: list[str] = Field(default_factory=list)
    max_prompt_chars: int = Field(default=16_000, ge=1)
    max_body_bytes: int = Field(default=262_144, ge=1024)
    # Per-client prompts per minute; 0 turns the limiter off.
    rate_limit_per_minute: int = Field(default=0, ge=0)
    rate_limit_burst: int = Field(default=10, ge=1)
    # On SIGTERM, in-flight replies get this long to finish before they are ended.
    shutdown_grace_s: float = Field(default=10.0, ge=0)

    @field_validator("auth", mode="after")
    @classmethod
    def _known_sources(cls, value: str) -> str:
        sources = {part.strip().lower() for part in value.split(",") if part.strip()}
        unknown = sources - AUTH_SOURCES
        if unknown or not sources:
            raise ValueError(
                f"unknown source {', '.join(sorted(unknown)) or '(none given)'}: "
                f"use one or more of {', '.join(sorted(AUTH_SOURCES))}"
            )
        if len(sources) > 1 and "none" in sources:
            raise ValueError("'none' cannot be combined with another source")
        return ",".join(sorted(sources))

    @field_validator("trusted_proxies", mode="after")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip():
                try:
                    ipaddress.ip_network(part.strip(), strict=False)
                except ValueError:
                    raise ValueError(f"{part.strip()!r} is not an address or a network") from None
        return value

    @model_validator(mode="after")
    def _sources_complete(self) -> ServerSettings:
        if self.auth_proxy and not (self.proxy_user_header and self.trusted_networks):
            raise ValueError(
                "CHATBOT_AUTH=proxy needs CHATBOT_PROXY_USER_HEADER and CHATBOT_TRUSTED_PROXIES"
            )
        secret = self.oidc_client_secret.get_secret_value() if self.oidc_client_secret else ""
        if self.auth_oidc and not (self.oidc_issuer and self.oidc_client_id and secret):
            raise ValueError(
                "CHATBOT_AUTH=oidc needs CHATBOT_OIDC_ISSUER, CHATBOT_OIDC_CLIENT_ID and "
                "CHATBOT_OIDC_CLIENT_SECRET"
            )
        return self

    @property
    def per_user_keys(self) -> bool:
        return "keys" in self.auth.split(",")

    @property
    def auth_proxy(self) -> bool:
        return "proxy" in self.auth.split(",")

    @property
    def auth_oidc(self) -> bool:
        return "oidc" in self.auth.split(",")

    @property
    def trusted_networks(self) -> tuple[Network, ...]:
        parts = (part.strip() for part in self.trusted_proxies.split(","))
        return tuple(ipaddress.ip_network(part, strict=False) for part in parts if part)

    @field_validator("ui_dist_dir", mode="after")
    @classmethod
    def _expand_ui(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @property
    def admin_key(self) -> str | None:
        if self.api_key is None:
            return None
        return self.api_key.get_secret_value() or None

    @property
    def auth_required(self) -> bool:
        return self.admin_key is not None or self.per_user_keys or self.auth_proxy or self.auth_oidc

    @cached_property
    def resolved_ui_dist_dir(self) -> Path:
        if self.ui_dist_dir is not None:
            return self.ui_dist_dir
        return Path(__file__).resolve().parent.parent / "ui" / "dist"
