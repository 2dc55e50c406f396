"""The schema of the releases before migrations (up to 78b97e7), created where absent.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from chatbot.store.tables import Clock, Instant, JsonText, Token

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _text(name: str, nullable: bool = False, **kwargs: object) -> sa.Column:
    return sa.Column(name, sa.Text, nullable=nullable, **kwargs)


def _int(name: str, nullable: bool = False, **kwargs: object) -> sa.Column:
    return sa.Column(name, sa.Integer, nullable=nullable, **kwargs)


def _pk(*names: str) -> list[sa.Column]:
    return [_text(name, primary_key=True) for name in names]


def _tables() -> dict[str, tuple[list[sa.Column], list[tuple[str, list]]]]:
    """Each table's columns and indexes (name, columns), as 78b97e7 created them."""
    desc = sa.text
    return {
        "burr_state": (
            [
                sa.Column("partition_key", sa.Text, primary_key=True, server_default=""),
                *_pk("app_id"),
                _int("sequence_id", primary_key=True),
                _text("position", primary_key=True),
                _text("status"),
                sa.Column("state", JsonText, nullable=False),
                sa.Column("created_at", sa.DateTime, server_default=sa.text("CURRENT_TIMESTAMP")),
            ],
            [("burr_state_created_at_index", ["created_at"])],
        ),
        "chatbot_conversations": (
            [
                *_pk("project_id", "app_id"),
                _text("title", server_default=""),
                _int("turns", server_default="0"),
                sa.Column("created_at", Instant, nullable=False),
                sa.Column("updated_at", Instant, nullable=False),
            ],
            [("chatbot_conversations_recent", ["project_id", desc("updated_at DESC"), "app_id"])],
        ),
        "chatbot_history_digests": (
            [*_pk("project_id", "app_id"), _text("digest"),
             sa.Column("updated_at", Instant, nullable=False)],
            [("chatbot_history_digests_digest", ["project_id", "digest", desc("updated_at DESC")])],
        ),
        "chatbot_branches": (
            [
                *_pk("project_id", "app_id"),
                _text("conversation_id"),
                _text("parent_app_id", nullable=True),
                _int("fork_sequence_id", nullable=True),
                *(_int(n, server_default="0") for n in ("diverges_at", "created", "shown", "items")),  # noqa: E501
                sa.Column("created_at", Instant, nullable=False),
            ],
            [("chatbot_branches_conversation", ["project_id", "conversation_id", desc("shown DESC")])],  # noqa: E501
        ),
        "chatbot_turn_boundaries": (
            [
                *_pk("project_id", "app_id"),
                _int("sequence_id", primary_key=True),
                _int("items"),
                *(_text(n) for n in ("position", "status", "digest")),
                sa.Column("rest", JsonText, nullable=False),
                sa.Column("written_at", Instant, nullable=False),
            ],
            [("chatbot_turn_boundaries_digest", ["project_id", "digest"])],
        ),
        "chatbot_turn_leases": (
            [*_pk("project_id", "app_id"), sa.Column("token", Token, nullable=False),
             _text("holder"), sa.Column("acquired_at", Clock, nullable=False),
             sa.Column("expires_at", Clock, nullable=False)],
            [],
        ),
        "chatbot_reply_signals": (
            [
                sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                          primary_key=True),
                *(_text(n) for n in ("project_id", "app_id", "kind")),
                sa.Column("created_at", Clock, nullable=False),
                _text("reply_id", nullable=True),
                sa.Column("running", sa.Boolean(create_constraint=False)),
                sa.Column("rank", sa.BigInteger),
                _text("outcome", nullable=True),
            ],
            [("chatbot_reply_signals_created", ["created_at"])],
        ),
        "chatbot_reply_events": (
            [*_pk("project_id", "app_id", "reply_id"), _int("first_index", primary_key=True),
             _int("next_index"), sa.Column("done", sa.Boolean(create_constraint=False),
                                           nullable=False),
             _text("payload"), sa.Column("created_at", Clock, nullable=False)],
            [],
        ),
    }  # fmt: skip


def upgrade() -> None:
    bind = op.get_bind()
    tables = _tables()
    if bind.dialect.name == "sqlite":  # the processes sharing the file (SQLite only)
        tables["chatbot_lease_holders"] = (
            [_text("id", primary_key=True), _text("host"), _int("pid"),
             sa.Column("started_at", Clock, nullable=False),
             sa.Column("expires_at", Clock, nullable=False)],
            [],
        )  # fmt: skip
    existing = set(sa.inspect(bind).get_table_names())
    for name, (columns, indexes) in tables.items():
        if name in existing:  # written by a release before migrations: kept as it is
            continue
        options = {"sqlite_autoincrement": True} if name == "chatbot_reply_signals" else {}
        op.create_table(name, *columns, **options)
        for index, index_columns in indexes:
            op.create_index(index, name, index_columns)
