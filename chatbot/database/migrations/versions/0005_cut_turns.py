"""Turn leases keep their turn's prompt, so a turn cut by its process's death is stored.

Revision ID: 0005
Revises: 0004

Two nullable columns on ``chatbot_turn_leases``; nothing is rewritten, and a release
before this one (which writes neither) keeps working beside it during a rolling upgrade.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_COLUMNS = ("prompt", "lapsed_prompt")


def upgrade() -> None:
    # A database from before migrations got the newest schema's columns before it was
    # stamped at the baseline (``migrate``): add only what is missing.
    existing = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("chatbot_turn_leases")}
    for name in _COLUMNS:
        if name not in existing:
            op.add_column("chatbot_turn_leases", sa.Column(name, sa.Text, nullable=True))
