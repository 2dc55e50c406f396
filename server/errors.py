"""What the HTTP layer raises, and what any error says: a code, a sentence, where.

Routes raise and never build an error response. A domain error carries its code
(``ConversationNotFound``, ``StoreUnavailable``, ``BranchInputError``, ``TurnError``...,
``chatbot.domain.errors``); the two exceptions here are the HTTP layer's own: ``ApiError``
for what only it can refuse (a body that is not JSON, a rate limit, an unknown model),
and ``ReplyFailed`` for a reply that failed before its client read any of it.
``server.error_tables`` says how each code is answered in each protocol and
``server.error_handlers`` answers.
"""

from __future__ import annotations

import math
from dataclasses import KW_ONLY, dataclass
from typing import Any

from chatbot.domain.errors import TurnError


@dataclass(eq=False)
class ApiError(Exception):
    """A request the HTTP layer refuses itself, with the status that says why.

    ``param`` names the request field at fault, as OpenAI's errors do (``/v1`` sends it);
    ``details`` lists invalid parts of the request, as validation errors do (our API).
    A dataclass, not frozen: raising an exception sets attributes on it.
    """

    status: int
    code: str
    message: str
    _: KW_ONLY
    headers: dict[str, str] | None = None
    details: list[dict[str, Any]] | None = None
    param: str | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)


class ReplyFailed(Exception):
    """A reply that ended before its client read any text, answered as an HTTP error
    (``POST /reply``, a ``/v1`` completion): the turn's own error, plus headers the route
    adds (the conversation the request went to)."""

    def __init__(self, error: TurnError, headers: dict[str, str] | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.code = error.code
        self.headers = headers


@dataclass(frozen=True, slots=True)
class Described:
    """An error as every protocol tells it: code, sentence, and what it adds."""

    code: str
    # None: the error's own text is not for clients; its table entry has the sentence.
    message: str | None
    headers: dict[str, str]
    details: list[dict[str, Any]] | None = None
    param: str | None = None
    retry_after_s: float | None = None


def describe(exc: Exception) -> Described:
    """What ``exc`` says to a client, before a protocol's table adds its status."""
    if isinstance(exc, ApiError):
        return Described(exc.code, exc.message, exc.headers or {}, exc.details, exc.param)
    if isinstance(exc, ReplyFailed):
        error = exc.error
        headers = exc.headers or {}
        return Described(error.code, error.message, headers, retry_after_s=error.retry_after_s)
    code: str = exc.code  # type: ignore[attr-defined]  # every registered error has one
    message = getattr(exc, "message", None)
    location = getattr(exc, "location", None)
    details = None if location is None else [{"location": list(location), "message": message}]
    wait = getattr(exc, "retry_after_s", None)  # a quota's, which its error knows
    return Described(code, message, {}, details, retry_after_s=wait)


def retry_after(seconds: float) -> dict[str, str]:
    """The ``Retry-After`` header for a wait of ``seconds`` (whole seconds, at least 1)."""
    return {"Retry-After": str(max(1, math.ceil(seconds)))}
