"""How each error code is answered, one table per protocol family.

A route raises; the table of the protocol the request speaks says with which status, and
whether with a ``Retry-After``. Four families hear errors, each in its own shape
(``server.error_handlers`` writes the bodies):

* our API (``/api/v0/streaming_chatbot/…``): ``{"error": {"code", "message"}}``;
* the AI SDK's routes (``/api/chat``): the same body (``useChat`` shows it as its
  error's message), but a turn the request re-asks that is not there is ``turn_not_found``;
* OpenAI's (``/v1``): OpenAI's body and OpenAI's statuses, which its SDKs turn into their
  exception classes;
* the WebSocket channel: an error frame; whether sending again may work (``retryable``)
  is read from the status our API would answer.

A table has two halves: *refusals*, a request refused before anything ran, by the code
of the domain error raised (``chatbot.domain.errors``); and *failures*, a turn that
failed before its client read any text (``ReplyFailed``), by the turn's error code.
Errors the HTTP layer raises itself (``ApiError``) carry their status.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from chatbot.domain.branch_tree import BranchInputError
from chatbot.domain.errors import (
    BRANCH_NOT_FOUND,
    INVALID_REQUEST,
    ITEM_NOT_BRANCHABLE,
    ITEM_NOT_FOUND,
    VERSION_NOT_FOUND,
    QuotaExceeded,
)
from chatbot.runtime import ConversationNotFound, Overloaded, ShuttingDown
from chatbot.store import ConversationBusy, StoreUnavailable

# The domain's errors a client hears, each with its ``code`` (a class attribute, or per
# instance for BranchInputError): what the handlers are registered for.
DOMAIN_ERRORS: Final = (
    ConversationNotFound,
    ConversationBusy,
    StoreUnavailable,
    Overloaded,
    ShuttingDown,
    BranchInputError,
    QuotaExceeded,
)


@dataclass(frozen=True, slots=True)
class Answer:
    """How one code is answered."""

    status: int
    # Seconds a client should wait before trying again (the Retry-After header).
    retry_after_s: int | None = None
    # The sentence for errors whose own text is not for clients (a database's message).
    message: str | None = None
    # The protocol's own name for the error, where it is not the error's code.
    code: str | None = None


@dataclass(frozen=True, slots=True)
class ErrorTable:
    refusals: Mapping[str, Answer]
    failures: Mapping[str, Answer]
    # The answer to a failed turn whose code is not listed (the upstream_* family...).
    failure_default: Callable[[str], Answer]

    def refusal(self, code: str) -> Answer:
        return self.refusals[code]

    def failure(self, code: str) -> Answer:
        return self.failures.get(code) or self.failure_default(code)


_BUSY: Final = (
    "A reply is being written in this conversation; wait for it to end (or stop it), "
    "then try again."
)

REFUSALS: Final[Mapping[str, Answer]] = {
    "conversation_not_found": Answer(404),
    "conversation_busy": Answer(409, message=_BUSY),
    "storage_unavailable": Answer(503, 2, "The database is not answering; try again in a moment."),
    "overloaded": Answer(
        503, 1, "The server is streaming as many replies as it allows; try again in a moment."
    ),
    "server_shutting_down": Answer(503, 5, "The server is restarting; try again in a few seconds."),
    # A request that names an item, a version or a branch the conversation does not have
    # (404), or an item that cannot be branched there (409): schema-valid requests that
    # the conversation's state refuses.
    ITEM_NOT_FOUND: Answer(404),
    VERSION_NOT_FOUND: Answer(404),
    BRANCH_NOT_FOUND: Answer(404),
    ITEM_NOT_BRANCHABLE: Answer(409),
    INVALID_REQUEST: Answer(422),
    # A user's quota (chatbot.users.quotas); the error says how long to wait.
    QuotaExceeded.code: Answer(429),
}

# POST /reply: a reply that could not be stored, or was cut by a shutdown, is the server's
# trouble (503); any other failure is the model's or the turn's (502: a bad gateway).
API: Final = ErrorTable(
    refusals=REFUSALS,
    failures={"storage_error": Answer(503), "server_shutting_down": Answer(503)},
    failure_default=lambda code: Answer(502),
)

_TURN_NOT_FOUND: Final = Answer(409, code="turn_not_found")
# The AI SDK's request re-asks the client's n-th turn, not an item: a turn the
# conversation no longer has (it changed meanwhile) is the turn_not_found of
# server.protocols.ai_sdk_request.
AI_SDK: Final = ErrorTable(
    refusals={
        **REFUSALS,
        ITEM_NOT_FOUND: _TURN_NOT_FOUND,
        ITEM_NOT_BRANCHABLE: _TURN_NOT_FOUND,
    },
    failures=API.failures,
    failure_default=API.failure_default,
)


def _openai_failure(code: str) -> Answer:
    # The model behind this server failed: a bad gateway, not a bad request.
    return Answer(502 if code.startswith("upstream_") else 500)


OPENAI: Final = ErrorTable(
    # OpenAI's own code for a rate limit, which its SDKs raise as RateLimitError.
    refusals={**REFUSALS, QuotaExceeded.code: Answer(429, code="rate_limit_exceeded")},
    failures={
        "upstream_rate_limited": Answer(429),  # the upstream's own 429 stays one
        "upstream_timeout": Answer(504),
        "storage_error": Answer(503),
        "server_shutting_down": Answer(503),
        "reply_stopped": Answer(409),
        "conversation_deleted": Answer(409),
    },
    failure_default=_openai_failure,
)

# The WebSocket channel's names where they are not the HTTP routes' ones: a stop that
# could not be confirmed is a conversation still busy.
SOCKET_CODES: Final[Mapping[str, str]] = {"stop_unconfirmed": "conversation_busy"}
_RETRYABLE_CODES: Final = frozenset({"conversation_busy", "rate_limited", QuotaExceeded.code})


def socket_retryable(code: str, status: int) -> bool:
    """Whether a refused socket message may work when sent again: the server's own
    trouble (5xx), a rate limit, or a conversation busy with another reply."""
    return status >= 500 or code in _RETRYABLE_CODES
