"""Users: per-user API keys and quota counts; conversations stored so far stay the
``local`` user's.

Revision ID: 0003
Revises: 0002

Owners live in the storage project (``chatbot.domain.owners``), and the ``local`` user's
is the bare project every earlier release wrote: nothing stored needs rewriting.
"""

import sqlalchemy as sa
from alembic import op

from chatbot.database.tables import Instant

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

KEYS, USAGE = "chatbot_api_keys", "chatbot_user_usage"


def upgrade() -> None:
    # A database from before migrations got every table of the newest schema before it was
    # stamped at the baseline (``migrate``), these included.
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if KEYS not in existing:
        _create_keys()
    if USAGE not in existing:
        op.create_table(
            USAGE,
            sa.Column("owner", sa.Text, primary_key=True),
            sa.Column("period", sa.Text, primary_key=True),
            sa.Column("prompts", sa.Integer, nullable=False, server_default=sa.text("0")),
            sa.Column("tokens", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        )


def _create_keys() -> None:
    op.create_table(
        KEYS,
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("admin", sa.Boolean(create_constraint=False), nullable=False),
        sa.Column("digest", sa.Text, nullable=False, unique=True),
        sa.Column("created_at", Instant, nullable=False),
        sa.Column("last_used_at", Instant, nullable=True),
    )
    op.create_index("chatbot_api_keys_user", KEYS, ["user_id"])
