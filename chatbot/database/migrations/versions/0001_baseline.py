"""Baseline: the schema of the releases before migrations (up to 78b97e7); nothing to run.

Revision ID: 0001
Revises:
"""

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass
