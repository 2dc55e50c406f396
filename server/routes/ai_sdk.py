"""``useChat``'s backend: ``POST /api/chat`` and its resume route, in the AI SDK's protocol.

Served at the root (the AI SDK's default ``api`` is ``/api/chat``) and under the API
prefix. A chat id is a conversation of the UI's project (``CHATBOT_UI_PROJECT_ID``), so
the same conversation can be read with ``GET …/history`` and stopped with ``POST …/stop``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Body, Path, Response

from chatbot.turns.replies import Reply
from server.deps import ID_PATTERN, ConversationsDep, DefaultProject, SettingsDep, TurnsDep
from server.event_stream import EventStreamResponse
from server.openapi import error, event_stream
from server.protocols.ai_sdk import UI_MESSAGE_STREAM_HEADERS, ui_message_stream
from server.protocols.ai_sdk_request import branch_point, prompt_of
from server.routes.chat import check_prompt, on_close, streamed_prompt_route
from server.routes.documented import (
    INVALID_JSON,
    NOT_JSON,
    RATE_LIMITED,
    START_REFUSED,
    STORAGE_UNAVAILABLE,
)
from server.schemas import UIChatRequestIn, UIMessagePartOut

router = APIRouter(tags=["ai-sdk"])

_STREAM = {
    **event_stream(
        UIMessagePartOut,
        "The UI message stream: each `data:` one part, then `data: [DONE]`.",
        sentinel="[DONE]",
    ),
    "headers": {
        name: {"required": True, "schema": {"const": value}}
        for name, value in UI_MESSAGE_STREAM_HEADERS.items()
    },
}
_ERRORS = {
    400: INVALID_JSON,
    404: error("The conversation was deleted meanwhile (conversation_not_found)."),
    409: error(
        "A reply is already being written (conversation_busy), or the regenerated or "
        "edited turn is not one the conversation has (turn_not_found)."
    ),
    415: NOT_JSON,
    422: error(
        "The chat id or the messages are invalid (invalid_request, with error.details), a "
        "user message has no text (empty_prompt) or a file (unsupported_part), the last "
        "message is not the user's (last_message_not_from_user), or the prompt is over "
        "CHATBOT_MAX_PROMPT_CHARS characters (prompt_too_long)."
    ),
    429: RATE_LIMITED,
    503: START_REFUSED,
}
ChatId = Annotated[str, Path(pattern=ID_PATTERN, description="The chat (conversation) id.")]


@streamed_prompt_route(
    router,
    "/chat",
    responses={200: _STREAM, **_ERRORS},
    summary="useChat's endpoint: send a message, regenerate a reply or edit a message",
)
async def chat(
    body: Annotated[UIChatRequestIn, Body()],
    conversations: ConversationsDep,
    turns: TurnsDep,
    settings: SettingsDep,
    project_id: DefaultProject,
) -> EventStreamResponse:
    """The reply streams as the AI SDK's UI message stream. Like every reply, it is written
    to its end even if the client goes away (a fetch abort is a disconnect, not a stop).

    A regenerate, or a message sent with the ``messageId`` of an edited one, branches the
    conversation at the turn it re-asks (``POST /regenerate`` and ``POST /edit`` do the
    same): the turns after it stay in the branch it leaves, one switch away."""
    prompt = check_prompt(prompt_of(body.messages), settings.max_prompt_chars)
    point = None
    if body.trigger == "regenerate-message" or body.messageId is not None:
        stored = await conversations.history(project_id, body.id) or []
        point = branch_point(body, stored, prompt)
    if point is None:
        reply = await conversations.start_reply(project_id, body.id, prompt)
    else:
        # The turn was read from the history before the lease was taken: a conversation
        # that changed meanwhile no longer has it (turn_not_found, server.error_tables).
        reply = await conversations.start_branch(
            project_id, body.id, index=point.index, prompt=point.prompt
        )
    return _ui_stream(reply, on_close(turns, reply))


@router.get(
    "/chat/{chat_id}/stream",
    response_class=EventStreamResponse,
    status_code=200,
    responses={
        200: _STREAM,
        204: {"description": "No reply is being written in this chat."},
        503: STORAGE_UNAVAILABLE,
    },
    summary="useChat's resume: the reply being written, replayed from its start",
)
async def resume_chat(chat_id: ChatId, turns: TurnsDep, project_id: DefaultProject) -> Response:
    """A finished reply answers 204 like no reply at all: the client already has it, or
    reads it from the history, and a replay would show it twice."""
    reply = await turns.find(project_id, chat_id)
    if reply is None or reply.done:
        return Response(status_code=204)
    return _ui_stream(reply)


def _ui_stream(
    reply: Reply, closed: Callable[[], Awaitable[None]] | None = None
) -> EventStreamResponse:
    """The reply as a UI message stream, from its start."""
    return EventStreamResponse(
        ui_message_stream(reply.log.read(), reply.id),
        headers=UI_MESSAGE_STREAM_HEADERS,
        on_close=closed,
    )
