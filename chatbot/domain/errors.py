"""Errors as stable codes: why a turn did not complete, and why a request was refused.

``TurnError`` is one type for every cause of a failed turn (the upstream model, our
storage, an internal bug, a server that is stopping): clients branch on ``code``, show
``message`` to people, and use ``retryable`` to decide whether sending the same prompt
again may succeed.

Every other exception the domain and the runtime raise for a client to hear carries its
code too, as a ``code`` attribute (``ConversationNotFound.code`` is
``"conversation_not_found"``, ``BranchInputError`` has one per instance); the HTTP
layer's error tables (``server.error_tables``) map a code to a status and a body, once
per protocol, so nothing here knows about HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# Why a request about an item of a conversation (edit, regenerate, versions, switch) names
# something that is not there, or that cannot be done there: ``BranchInputError.code``.
ITEM_NOT_FOUND: Final = "item_not_found"  # no item at that index in the branch shown
VERSION_NOT_FOUND: Final = "version_not_found"  # the item has no version of that number
BRANCH_NOT_FOUND: Final = "branch_not_found"  # no branch of that id in this conversation
# The item exists but cannot be branched there: a reply to edit, a prompt to regenerate,
# a reply that answers no prompt, or no stored state to fork from.
ITEM_NOT_BRANCHABLE: Final = "item_not_branchable"
INVALID_REQUEST: Final = "invalid_request"  # a request that says neither what nor where


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
REPLY_LOST: Final = TurnError(
    "reply_lost",
    "The server writing this reply stopped before it ended; send your message again.",
)
REPLY_STOPPED: Final = TurnError(
    "reply_stopped", "The reply was stopped; what was written so far is kept."
)


class QuotaExceeded(Exception):
    """A user's quota is used up (prompts a minute, replies at once, tokens a day):
    ``retry_after_s`` says when the next prompt may be accepted."""

    code = "quota_exceeded"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s
