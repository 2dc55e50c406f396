"""The HTTP server's settings: the chatbot's, plus what only the web layer needs.

Same sources and prefix as ``chatbot.settings.Settings`` (environment, ``.env``,
``CHATBOT_``), so one set of variables configures the whole process.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from chatbot.settings import Settings


class ServerSettings(Settings):
    # --- the browser UIs --------------------------------------------------------------
    ui_project_id: str = "demo_streaming_chatbot"
    ui_dist_dir: Path | None = None
    burr_ui_enabled: bool = True
    # Off by default: Burr's bundled examples would otherwise patch the openai SDK globally.
    otel_instrument_openai: bool = False

    # --- security and limits ----------------------------------------------------------
    # When set, every API route needs `Authorization: Bearer <key>` (or the session cookie).
    api_key: SecretStr | None = None
    cors_origins: list[str] = Field(default_factory=list)
    max_prompt_chars: int = Field(default=16_000, ge=1)
    max_body_bytes: int = Field(default=262_144, ge=1024)
    # Per-client prompts per minute; 0 turns the limiter off.
    rate_limit_per_minute: int = Field(default=0, ge=0)
    rate_limit_burst: int = Field(default=10, ge=1)
    # On SIGTERM, in-flight replies get this long to finish before they are ended.
    shutdown_grace_s: float = Field(default=10.0, ge=0)

    @field_validator("ui_dist_dir", mode="after")
    @classmethod
    def _expand_ui(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @property
    def auth_required(self) -> bool:
        return self.api_key is not None and bool(self.api_key.get_secret_value())

    @cached_property
    def resolved_ui_dist_dir(self) -> Path:
        if self.ui_dist_dir is not None:
            return self.ui_dist_dir
        return Path(__file__).resolve().parent.parent / "ui" / "dist"
