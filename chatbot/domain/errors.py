"""Why a turn did not complete, as a stable code and a sentence a user can read.

One type for every cause (the upstream model, our storage, an internal bug, a server
that is stopping): clients branch on ``code``, show ``message`` to people, and use
``retryable`` to decide whether sending the same prompt again may succeed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(eq=False)
class TurnError(Exception):
    code: str
    message: str
    retryable: bool = True
    # Upstream failures only: the HTTP status the model service answered, and how long
    # it asked us to wait.
    status: int | None = None
    retry_after_s: float | None = None

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


INTERNAL_ERROR: Final = TurnError(
    "internal_error", "The reply failed because of an internal error."
)
STORAGE_ERROR: Final = TurnError(
    "storage_error", "The reply could not be saved; please send your message again."
)
SHUTTING_DOWN: Final = TurnError(
    "server_shutting_down",
    "The server is restarting; the reply so far was kept. Send your message again shortly.",
)
CONVERSATION_DELETED: Final = TurnError(
    "conversation_deleted", "The conversation was deleted while this reply was written.", False
)
REPLY_STOPPED: Final = TurnError(
    "reply_stopped", "The reply was stopped; what was written so far is kept."
)
