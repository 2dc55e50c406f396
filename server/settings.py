"""The HTTP server's settings: the chatbot's, plus what only the web layer needs.

Same sources and prefix as ``chatbot.settings.Settings`` (environment, ``.env``,
``CHATBOT_``), so one set of variables configures the whole process.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from chatbot.settings import Settings

AUTH_SOURCES = frozenset({"none", "keys"})


class ServerSettings(Settings):
    # --- the browser UIs --------------------------------------------------------------
    ui_project_id: str = "demo_streaming_chatbot"
    ui_dist_dir: Path | None = None
    burr_ui_enabled: bool = True
    # Off by default: Burr's bundled examples would otherwise patch the openai SDK globally.
    otel_instrument_openai: bool = False

    # --- security and limits ----------------------------------------------------------
    # Who may ask, a comma-separated list of sources: `none` (the default: everyone is the
    # `local` user) or `keys` (per-user keys from `chatbot keys create`).
    auth: str = "none"
    # When set, every API route needs `Authorization: Bearer <key>` (or the session cookie);
    # with `keys` too, this key stays valid as the `local` user's, an admin.
    api_key: SecretStr | None = None
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
                f"use {' or '.join(sorted(AUTH_SOURCES))}"
            )
        if len(sources) > 1 and "none" in sources:
            raise ValueError("'none' cannot be combined with another source")
        return ",".join(sorted(sources))

    @property
    def per_user_keys(self) -> bool:
        return "keys" in self.auth.split(",")

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
        return self.admin_key is not None or self.per_user_keys

    @cached_property
    def resolved_ui_dist_dir(self) -> Path:
        if self.ui_dist_dir is not None:
            return self.ui_dist_dir
        return Path(__file__).resolve().parent.parent / "ui" / "dist"
