"""Baseline: the schema of the releases before migrations (up to 78b97e7).

Revision ID: 0001
Revises:

Nothing to run: ``chatbot.store.migrate`` stamps a database those releases wrote at this
revision, and creates an empty one from ``chatbot.store.tables`` at the newest. Every
change of the schema from here on is a revision of its own.
"""

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass
