"""What both databases store about branches, apart from the SQL.

A branch is a Burr application (``chatbot.domain.branch_ids``); its states are Burr's snapshot
rows, pruned to the newest few because each holds the whole history. Forking needs every
earlier point between turns, so each stored turn also leaves a *boundary* row: the state
without its history (``rest``) and the history's length. A branch's history only ever
grows, so its latest snapshot cut to that length is the history the boundary had: any
boundary loads from two small rows and one snapshot, however old it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from burr.core import State
from burr.core.persistence import PersistedStateData

from chatbot.domain.branch_ids import branch_number, conversation_of
from chatbot.domain.client_view import history_digest
from chatbot.store.base import NewBranch
from chatbot.store.dialect import utcnow

HISTORY_KEY = "chat_history"
# The state before a branch's first step: what Burr loads to fork at boundary 0.
START_SEQUENCE_ID = -1
START_POSITION = "prompt"
START_STATUS = "completed"
EMPTY_REST = "{}"


@dataclass(slots=True)
class TurnRows:
    """What one save writes about branches besides Burr's snapshot row."""

    project_id: str
    app_id: str
    conversation_id: str
    sequence_id: int
    position: str
    status: str
    items: int
    digest: str
    rest: str
    created: int  # the n of the branch's app id
    new_branch: NewBranch | None
    fork_digest: str | None  # the digest of the state a new branch was forked from

    @classmethod
    def of(
        cls,
        project_id: str,
        app_id: str,
        sequence_id: int,
        position: str,
        status: str,
        values: dict,
        digest: str,
        new_branch: NewBranch | None,
    ) -> TurnRows:
        history = values.get(HISTORY_KEY, [])
        fork_digest = None
        if new_branch is not None:
            fork_digest = history_digest(history[: new_branch.fork_items])
        return cls(
            project_id,
            app_id,
            conversation_of(app_id),
            sequence_id,
            position,
            status,
            len(history),
            digest,
            encode_rest(values),
            _creation_order(app_id),
            new_branch,
            fork_digest,
        )


def _creation_order(app_id: str) -> int:
    """The n of ``c~n``; 0 for any other id (Burr applications the chatbot did not name)."""
    try:
        return branch_number(app_id)
    except ValueError:
        return 0


def encode_rest(values: dict) -> str:
    """A state's JSON without its history: the small part a boundary keeps."""
    return orjson.dumps({k: v for k, v in values.items() if k != HISTORY_KEY}).decode()


def boundary_state(
    partition_key: str,
    app_id: str,
    sequence_id: int,
    *,
    rest: str | bytes,
    latest_history: list,
    items: int,
    position: str,
    status: str,
    created_at: object,
) -> PersistedStateData:
    """A boundary's state rebuilt: its ``rest`` plus the branch's history cut to its length."""
    values = orjson.loads(rest)
    values[HISTORY_KEY] = latest_history[:items]
    return {
        "partition_key": partition_key,
        "app_id": app_id,
        "sequence_id": sequence_id,
        "position": position,
        "state": State(values),
        "created_at": created_at,
        "status": status,
    }


def start_state(partition_key: str, app_id: str) -> PersistedStateData:
    """Sequence id -1 of a branch with stored turns: nothing said yet."""
    return {
        "partition_key": partition_key,
        "app_id": app_id,
        "sequence_id": START_SEQUENCE_ID,
        "position": START_POSITION,
        "state": State({HISTORY_KEY: []}),
        "created_at": utcnow().isoformat(),
        "status": START_STATUS,
    }
