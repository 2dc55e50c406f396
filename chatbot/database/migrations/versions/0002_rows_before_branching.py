"""Branch and boundary rows for the conversations stored before branching existed.

Revision ID: 0002
Revises: 0001

Releases before branching stored Burr's snapshots and a summary; the store used to make
up the rest on every read. Here each such conversation gets the row of its one branch,
and each kept snapshot the boundary row every stored turn now leaves.
"""

import datetime as dt

import orjson
import sqlalchemy as sa
from alembic import op
from sqlalchemy.types import TypeEngine

from chatbot.database.tables import Instant, JsonText
from chatbot.domain.branch_ids import BRANCH_SEPARATOR
from chatbot.domain.client_view import history_digest

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

HISTORY = "chat_history"


def _table(name: str, columns: str, **typed: TypeEngine) -> sa.TableClause:
    """The table as this revision knows it (never the newest schema, which may change)."""
    untyped = map(sa.column, columns.split())
    return sa.table(name, *untyped, *(sa.column(c, type_) for c, type_ in typed.items()))


_states = _table(
    "burr_state", "partition_key app_id sequence_id position status created_at", state=JsonText
)
_branches = _table(
    "chatbot_branches", "project_id app_id conversation_id items", created_at=Instant
)
_boundaries = _table(
    "chatbot_turn_boundaries",
    "project_id app_id sequence_id items position status digest",
    rest=JsonText,
    written_at=Instant,
)
_conversations = _table("chatbot_conversations", "project_id app_id created_at")


def _instant(value: object) -> dt.datetime:
    """Burr's ``created_at``: a datetime, or SQLite's ``CURRENT_TIMESTAMP`` text (UTC)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        return dt.datetime.now(dt.UTC)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def upgrade() -> None:
    conn = op.get_bind()
    s, b, d = _states.c, _branches.c, _boundaries.c
    own_rows = sa.exists().where(b.project_id == s.partition_key, b.conversation_id == s.app_id)
    bounded = sa.exists().where(
        d.project_id == s.partition_key, d.app_id == s.app_id, d.sequence_id == s.sequence_id
    )
    # The snapshots of conversations without branch rows (whose ids name no branch).
    rows = conn.execute(
        sa.select(s.partition_key, s.app_id, s.sequence_id, s.position, s.status, s.state)
        .add_columns(s.created_at, bounded)
        .where(~own_rows, ~s.app_id.contains(BRANCH_SEPARATOR))
        .order_by(s.partition_key, s.app_id, s.sequence_id)
    ).all()
    latest: dict[tuple[str, str], tuple[int, dt.datetime]] = {}
    for project, app, sequence_id, position, status, state, created_at, has_row in rows:
        values = orjson.loads(state)
        history = values.pop(HISTORY, [])
        latest[(project, app)] = (len(history), _instant(created_at))
        if has_row:
            continue
        conn.execute(
            _boundaries.insert().values(
                project_id=project, app_id=app, sequence_id=sequence_id, items=len(history),
                position=position, status=status, digest=history_digest(history),
                rest=orjson.dumps(values).decode(), written_at=_instant(created_at),
            )
        )  # fmt: skip
    c = _conversations.c
    for (project, app), (items, written_at) in latest.items():
        created = conn.execute(
            sa.select(c.created_at).where(c.project_id == project, c.app_id == app)
        ).scalar()
        conn.execute(
            _branches.insert().values(
                project_id=project, app_id=app, conversation_id=app, items=items,
                created_at=_instant(created) if created is not None else written_at,
            )
        )  # fmt: skip
