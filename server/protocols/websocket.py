"""The WebSocket channel's messages: JSON client messages in, the SSE route's frames out.

A client sends ``{"type": "prompt", "prompt": …}``, ``{"type": "stop"}`` or (first, for
browsers, which cannot set headers on a WebSocket) ``{"type": "auth", "key": …}``. The
server answers with exactly the frames ``POST /response`` streams (``chat_history``,
``delta``s, ``end`` or ``error``), one JSON text message each, built by the Burr-UI
adapter so a frame's JSON is shaped in one place. A message it does not act on is
answered by an ``error`` frame naming it (``reply_to``), which ends nothing.

Pure functions: the route (``server.routes.websocket``) does the I/O.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import get_args

from pydantic import TypeAdapter, ValidationError

from chatbot.domain.events import TurnEvent
from server.error_tables import API, SOCKET_CODES, socket_retryable
from server.errors import ApiError, describe
from server.protocols.burr_ui import event_payload
from server.schemas import (
    SocketAuthIn,
    SocketErrorFrame,
    SocketMessageIn,
    SocketPromptIn,
    SocketStopIn,
    TurnErrorOut,
)

SocketMessage = SocketPromptIn | SocketStopIn | SocketAuthIn

_MESSAGES: TypeAdapter[SocketMessage] = TypeAdapter(SocketMessageIn)
# The message types, from the models' ``type`` literals: ("prompt", "stop", "auth").
_TYPES: tuple[str, ...] = tuple(
    get_args(model.model_fields["type"].annotation)[0] for model in get_args(SocketMessage)
)


@dataclass(eq=False)
class MessageRefused(Exception):
    """A client message the server will not act on, and why (sent back as an error frame)."""

    code: str
    message: str
    _: KW_ONLY
    reply_to: str | None
    retryable: bool = False

    def __post_init__(self) -> None:
        super().__init__(self.message)


def refusal_of(exc: Exception, reply_to: str) -> MessageRefused:
    """A refused request (an ``ApiError`` or a domain error) as this channel's error frame:
    the code our API answers (``SOCKET_CODES`` where the channel has its own name), and
    whether sending again may work, from the status our API would answer with."""
    told = describe(exc)
    if isinstance(exc, ApiError):
        status, message = exc.status, exc.message
    else:
        answer = API.refusal(told.code)
        status, message = answer.status, answer.message or told.message or str(exc)
    code = SOCKET_CODES.get(told.code, told.code)
    return MessageRefused(
        code, message, reply_to=reply_to, retryable=socket_retryable(code, status)
    )


def parse_message(data: str | bytes) -> SocketMessage:
    """The client message in ``data``, or ``MessageRefused`` saying what is wrong with it."""
    try:
        return _MESSAGES.validate_json(data)
    except ValidationError as exc:
        raise _refusal(exc) from None


def _refusal(exc: ValidationError) -> MessageRefused:
    error = exc.errors(include_url=False)[0]
    kind = error["type"]
    location = error["loc"]
    reply_to = location[0] if location and location[0] in _TYPES else None
    if kind == "json_invalid":
        return MessageRefused("invalid_json", "The message is not valid JSON.", reply_to=None)
    if kind == "union_tag_invalid":
        got = error.get("ctx", {}).get("tag", "")
        return MessageRefused(
            "unknown_type",
            f"Unknown message type {got!r}; send one of {', '.join(_TYPES)}.",
            reply_to=None,
        )
    if reply_to is None:  # not an object, or one without a type
        return MessageRefused(
            "invalid_message",
            'Send a JSON object with a "type": one of ' + ", ".join(_TYPES) + ".",
            reply_to=None,
        )
    field = ".".join(str(part) for part in location[1:]) or "message"
    return MessageRefused(
        "invalid_message", f"{field}: {error.get('msg', 'is invalid')}", reply_to=reply_to
    )


def refusal_message(refused: MessageRefused) -> str:
    frame = SocketErrorFrame(
        value=TurnErrorOut(code=refused.code, message=refused.message, retryable=refused.retryable),
        reply_to=refused.reply_to,
    )
    return frame.model_dump_json()


def event_message(event: TurnEvent) -> str | None:
    """The text message for one turn event, or None for an event the channel does not carry."""
    data = event_payload(event)
    return None if data is None else data.decode()
