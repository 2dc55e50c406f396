"""The chatbot's configuration, read once from the environment (``CHATBOT_`` prefix) and ``.env``.

Only what the domain needs lives here (the upstream model, storage, tracking, how many
turns may run); the HTTP server's own settings extend this class in ``server.settings``.
The ``openai`` SDK's own variables (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``) keep their
names so an existing shell set-up works unchanged; everything else is ours.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "burr-chatbot"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CHATBOT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        # Fields with an environment alias can still be set by name in code.
        populate_by_name=True,
    )

    # --- upstream LLM -------------------------------------------------------------
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY")
    )
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_BASE_URL")
    )
    classifier_model: str = "gpt-4o-mini"
    chat_model: str = "gpt-4o-mini"
    upstream_connect_timeout_s: float = Field(default=10.0, gt=0)
    # The longest silence from the upstream, before or in the middle of a reply.
    upstream_read_timeout_s: float = Field(default=60.0, gt=0)
    # Retries of an upstream call that failed before anything reached the user (the
    # classification, a reply before its first text). The old name is still read.
    upstream_max_retries: int = Field(
        default=2,
        ge=0,
        le=20,
        validation_alias=AliasChoices(
            "CHATBOT_UPSTREAM_MAX_RETRIES",
            "CHATBOT_CLASSIFIER_MAX_RETRIES",
        ),
    )
    upstream_retry_base_s: float = Field(default=0.25, ge=0)  # first backoff, before jitter
    upstream_retry_max_backoff_s: float = Field(default=8.0, ge=0)  # also caps Retry-After
    # A turn's retries must start within this; then the last failure is the turn's error.
    upstream_retry_deadline_s: float = Field(default=20.0, ge=0)
    # The longest one reply may take from its request to its end, however it trickles.
    upstream_reply_deadline_s: float = Field(default=600.0, gt=0)
    max_context_messages: int = Field(default=40, ge=1)

    # --- embedded offline model ---------------------------------------------------
    offline_pace_ms: float = Field(default=30.0, ge=0)
    offline_words_per_chunk: int = Field(default=1, ge=1)
    # Pace of the two canned replies (unsafe, prompt-for-more), which stream like the others.
    canned_pace_ms: float = Field(default=20.0, ge=0)

    # --- storage ------------------------------------------------------------------
    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str | None = None
    # PostgreSQL only: connections per server process.
    database_pool_size: int = Field(default=10, ge=2, le=1000)
    # How long the turn lease of a process that died mid-reply keeps its conversation busy
    # (renewed every third of it), on either database.
    turn_lease_ttl_s: float = Field(default=30.0, ge=1, le=3600)
    # Where Burr's tracking (what ``/burr`` shows) is written: "database" (the conversation
    # database, which every replica's UI reads), "file" (Burr's own files under
    # ``tracking_dir``: this machine's runs) or "off". Unset: the database on PostgreSQL,
    # files on SQLite (``resolved_tracking``).
    tracking: Literal["database", "file", "off"] | None = None
    # The older switch: false is the same as ``tracking="off"``.
    tracking_enabled: bool = True
    tracking_dir: Path | None = None
    # Runs (branches) whose tracking was not written for this many days are pruned; unset
    # keeps them until their conversation is deleted.
    tracking_retention_days: float | None = Field(default=None, gt=0)

    # --- load and replies ----------------------------------------------------------
    # Replies streaming at once in this process; more are refused (503 on HTTP).
    max_concurrent_streams: int = Field(default=1000, ge=1)
    # What a client going away mid-reply does: "continue" (the reply is written and
    # stored all the same; reconnect to read it) or "cancel" (stop the upstream at once,
    # keep the partial reply), for API-only deployments that must not pay for unread replies.
    on_disconnect: Literal["continue", "cancel"] = "continue"
    # How long a finished reply can still be replayed from memory to a reconnecting client.
    reply_retention_s: float = Field(default=30.0, ge=0, le=3600)
    # With several processes on one database: how often a process holding replies looks
    # for requests about them from the others, and how often a mirrored reply is copied
    # out for a reader elsewhere (that reader's lag). PostgreSQL's notifications wake the
    # first at once.
    relay_poll_ms: float = Field(default=100.0, ge=5, le=5000)

    # --- per-user quotas (0: off), counted across every process on the database ------
    user_prompts_per_minute: int = Field(default=0, ge=0)
    user_concurrent_replies: int = Field(default=0, ge=0)
    user_tokens_per_day: int = Field(default=0, ge=0)

    @field_validator("data_dir", "tracking_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @property
    def offline(self) -> bool:
        """True when no key is configured: the embedded offline model answers."""
        return self.openai_api_key is None or not self.openai_api_key.get_secret_value()

    @cached_property
    def resolved_tracking(self) -> Literal["database", "file", "off"]:
        if not self.tracking_enabled:
            return "off"
        if self.tracking is not None:
            return self.tracking
        # SQLite is one machine's file: Burr's files serve its one machine as well, and
        # Burr's stock UI and tools read them.
        return "database" if self.resolved_database_url.startswith("postgres") else "file"

    @cached_property
    def resolved_tracking_dir(self) -> Path:
        return self.tracking_dir or (Path.home() / ".burr")

    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'chatbot.sqlite3'}"
