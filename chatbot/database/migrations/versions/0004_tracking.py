"""Burr's tracking in the database: graphs, applications and their log entries.

Revision ID: 0004
Revises: 0003

Tracking written to files before this revision stays in its files (``CHATBOT_TRACKING=file``
reads them); nothing is copied.
"""

import sqlalchemy as sa
from alembic import op

from chatbot.database.tables import Instant

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _text(name: str, **kwargs: object) -> sa.Column:
    return sa.Column(name, sa.Text, nullable=bool(kwargs.pop("nullable", False)), **kwargs)


def upgrade() -> None:
    # A database from before migrations got every table of the newest schema before it was
    # stamped at the baseline (``migrate``), these included.
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "chatbot_tracking_graphs" not in existing:
        op.create_table("chatbot_tracking_graphs", _text("id", primary_key=True), _text("graph"))
    if "chatbot_tracking_apps" not in existing:
        op.create_table(
            "chatbot_tracking_apps",
            _text("project_id", primary_key=True),
            _text("app_id", primary_key=True),
            _text("owner"),
            _text("partition_key", nullable=True),
            _text("graph_id"),
            _text("parent_app_id", nullable=True),
            sa.Column("parent_sequence_id", sa.Integer, nullable=True),
            sa.Column("steps", sa.Integer, nullable=False, server_default=sa.text("0")),
            sa.Column("created_at", Instant, nullable=False),
            sa.Column("updated_at", Instant, nullable=False),
        )
        op.create_index(
            "chatbot_tracking_apps_owner", "chatbot_tracking_apps", ["owner", "project_id"]
        )
        op.create_index(
            "chatbot_tracking_apps_parent", "chatbot_tracking_apps", ["project_id", "parent_app_id"]
        )
        op.create_index("chatbot_tracking_apps_updated", "chatbot_tracking_apps", ["updated_at"])
    if "chatbot_tracking_entries" not in existing:
        op.create_table(
            "chatbot_tracking_entries",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
            _text("project_id"),
            _text("app_id"),
            _text("entry"),
            sqlite_autoincrement=True,
        )
        op.create_index(
            "chatbot_tracking_entries_app",
            "chatbot_tracking_entries",
            ["project_id", "app_id", "id"],
        )
