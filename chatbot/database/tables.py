"""The schema, once, as SQLAlchemy metadata (the newest revision's; see ``migrations``).

Four types keep the tables as earlier releases wrote them, on SQLite and PostgreSQL:
``JsonText`` (``TEXT``, ``JSONB``), ``Instant`` (ISO text, ``TIMESTAMPTZ``), ``Clock``
(Unix seconds, ``TIMESTAMPTZ``: what leases and relay rows compare) and ``Token`` (text,
``UUID``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP, UUID
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

metadata = sa.MetaData()
_ZERO = sa.text("0")
BOTH = ("sqlite", "postgresql")


JsonText = sa.Text().with_variant(JSONB(), "postgresql")


class _SQLiteTime(TypeDecorator):
    """An aware datetime as SQLite keeps it: ISO text, or Unix seconds (``REAL``)."""

    impl = sa.Text
    cache_ok = True

    def __init__(self, seconds: bool = False) -> None:
        super().__init__()
        self.seconds = seconds

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine:
        return dialect.type_descriptor(sa.Float() if self.seconds else sa.Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return value.timestamp() if self.seconds else value.isoformat()

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None or isinstance(value, dt.datetime):
            return value
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
            return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return dt.datetime.fromtimestamp(value, dt.UTC)


class _SQLiteToken(TypeDecorator):
    """A lease token as SQLite keeps it: its text."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return value if value is None else str(value)


_TIMESTAMPTZ = TIMESTAMP(timezone=True)
Instant = _SQLiteTime().with_variant(_TIMESTAMPTZ, "postgresql")
Clock = _SQLiteTime(seconds=True).with_variant(_TIMESTAMPTZ, "postgresql")
Token = _SQLiteToken().with_variant(UUID(as_uuid=True), "postgresql")


def _text(name: str, **kwargs: Any) -> sa.Column:
    return sa.Column(name, sa.Text, nullable=kwargs.pop("nullable", False), **kwargs)


def _int(name: str, **kwargs: Any) -> sa.Column:
    return sa.Column(name, sa.Integer, nullable=kwargs.pop("nullable", False), **kwargs)


def _table(name: str, *items: Any, dialects: tuple[str, ...] = BOTH, **kw: Any) -> sa.Table:
    """A table of the schema; ``dialects``: the databases that have it."""
    return sa.Table(name, metadata, *items, info={"dialects": dialects}, **kw)


def _keys(*names: str) -> list[sa.Column]:
    return [_text(name, primary_key=True) for name in names]


# Burr's own ``burr_state`` layout, column for column, so Burr's stock persisters read it.
states = _table(
    "burr_state",
    sa.Column("partition_key", sa.Text, primary_key=True, server_default=""),
    *_keys("app_id"),
    _int("sequence_id", primary_key=True),
    _text("position", primary_key=True),
    _text("status"),
    sa.Column("state", JsonText, nullable=False),
    sa.Column("created_at", sa.DateTime, server_default=sa.text("CURRENT_TIMESTAMP")),
    sa.Index("burr_state_created_at_index", "created_at"),
)
conversations = _table(
    "chatbot_conversations",
    *_keys("project_id", "app_id"),
    _text("title", server_default=""),
    _int("turns", server_default=_ZERO),
    sa.Column("created_at", Instant, nullable=False),
    sa.Column("updated_at", Instant, nullable=False),
    sa.Index("chatbot_conversations_recent", "project_id", sa.text("updated_at DESC"), "app_id"),
)
# One row per branch: the digest of its latest stored history.
history_digests = _table(
    "chatbot_history_digests",
    *_keys("project_id", "app_id"),
    _text("digest"),
    sa.Column("updated_at", Instant, nullable=False),
    sa.Index("chatbot_history_digests_digest", "project_id", "digest", sa.text("updated_at DESC")),
)
branches = _table(
    "chatbot_branches",
    *_keys("project_id", "app_id"),
    _text("conversation_id"),
    _text("parent_app_id", nullable=True),
    _int("fork_sequence_id", nullable=True),
    *(_int(name, server_default=_ZERO) for name in ("diverges_at", "created", "shown", "items")),
    sa.Column("created_at", Instant, nullable=False),
    sa.Index(
        "chatbot_branches_conversation", "project_id", "conversation_id", sa.text("shown DESC")
    ),
)
boundaries = _table(
    "chatbot_turn_boundaries",
    *_keys("project_id", "app_id"),
    _int("sequence_id", primary_key=True),
    _int("items"),
    *(_text(name) for name in ("position", "status", "digest")),
    sa.Column("rest", JsonText, nullable=False),
    sa.Column("written_at", Instant, nullable=False),
    sa.Index("chatbot_turn_boundaries_digest", "project_id", "digest"),
)
leases = _table(
    "chatbot_turn_leases",
    *_keys("project_id", "app_id"),
    sa.Column("token", Token, nullable=False),
    _text("holder"),
    sa.Column("acquired_at", Clock, nullable=False),
    sa.Column("expires_at", Clock, nullable=False),
    # The prompt the holder's turn answers, until the turn is stored; kept, in
    # ``lapsed_prompt``, by whoever takes the row over once it expired (revision 0005).
    _text("prompt", nullable=True),
    _text("lapsed_prompt", nullable=True),
)
# SQLite only: the processes using the file (``sqlite_dialect``).
lease_holders = _table(
    "chatbot_lease_holders",
    _text("id", primary_key=True),
    _text("host"),
    _int("pid"),
    sa.Column("started_at", Clock, nullable=False),
    sa.Column("expires_at", Clock, nullable=False),
    dialects=("sqlite",),
)
signals = _table(
    "chatbot_reply_signals",
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    *(_text(name) for name in ("project_id", "app_id", "kind")),
    sa.Column("created_at", Clock, nullable=False),
    _text("reply_id", nullable=True),
    sa.Column("running", sa.Boolean(create_constraint=False)),
    sa.Column("rank", sa.BigInteger),
    _text("outcome", nullable=True),
    sa.Index("chatbot_reply_signals_created", "created_at"),
    sqlite_autoincrement=True,
)
reply_events = _table(
    "chatbot_reply_events",
    *_keys("project_id", "app_id", "reply_id"),
    _int("first_index", primary_key=True),
    _int("next_index"),
    sa.Column("done", sa.Boolean(create_constraint=False), nullable=False),
    _text("payload"),
    sa.Column("created_at", Clock, nullable=False),
)
# Per-user API keys (``chatbot.users.api_keys``): only a digest of each key is kept.
api_keys = _table(
    "chatbot_api_keys",
    _text("id", primary_key=True),
    _text("user_id"),
    sa.Column("admin", sa.Boolean(create_constraint=False), nullable=False),
    _text("digest", unique=True),
    sa.Column("created_at", Instant, nullable=False),
    sa.Column("last_used_at", Instant, nullable=True),
    sa.Index("chatbot_api_keys_user", "user_id"),
)
# Per-user quotas (``chatbot.users.quotas``): prompts of a minute, tokens of a UTC day.
user_usage = _table(
    "chatbot_user_usage",
    *_keys("owner", "period"),
    _int("prompts", server_default=_ZERO),
    sa.Column("tokens", sa.BigInteger, nullable=False, server_default=_ZERO),
)
# Burr's tracking on the shared database (``chatbot.tracking.database``), which every
# replica's Burr UI reads: the graph once per release, a row per application with its
# fork parent, and the entries of Burr's ``log.jsonl`` as Burr writes them.
tracking_graphs = _table("chatbot_tracking_graphs", *_keys("id"), _text("graph"))
tracking_apps = _table(
    "chatbot_tracking_apps",
    *_keys("project_id", "app_id"),
    _text("owner"),
    _text("partition_key", nullable=True),
    _text("graph_id"),
    _text("parent_app_id", nullable=True),
    _int("parent_sequence_id", nullable=True),
    _int("steps", server_default=_ZERO),
    sa.Column("created_at", Instant, nullable=False),
    sa.Column("updated_at", Instant, nullable=False),
    sa.Index("chatbot_tracking_apps_owner", "owner", "project_id"),
    sa.Index("chatbot_tracking_apps_parent", "project_id", "parent_app_id"),
    sa.Index("chatbot_tracking_apps_updated", "updated_at"),
)
tracking_entries = _table(
    "chatbot_tracking_entries",
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    *(_text(name) for name in ("project_id", "app_id", "entry")),
    sa.Index("chatbot_tracking_entries_app", "project_id", "app_id", "id"),
    sqlite_autoincrement=True,
)
