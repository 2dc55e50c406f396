"""``useChat``'s backend: ``POST /api/chat`` and its resume route, in the AI SDK's protocol.

Served at the root (the AI SDK's default ``api`` is ``/api/chat``) and under the API
prefix. A chat id is a conversation of the UI's project (``CHATBOT_UI_PROJECT_ID``), so
the same conversation can be read with ``GET …/history`` and stopped with ``POST …/stop``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Response

from chatbot.conversations.service import ConversationService
from chatbot.domain.branch_tree import BranchInputError
from chatbot.store import StoreUnavailable
from chatbot.turns.replies import Reply
from server.deps import ID_PATTERN, ConversationsDep, RequireJson, SettingsDep, TurnsDep
from server.errors import ApiError
from server.event_stream import EventStreamResponse
from server.limits import rate_limit
from server.openapi import RETRY_AFTER, error, event_stream
from server.protocols.ai_sdk import UI_MESSAGE_STREAM_HEADERS, ui_message_stream
from server.protocols.ai_sdk_request import branch_point, prompt_of
from server.routes.chat import check_prompt, on_close, reply_start_errors, start_reply
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
    400: error("The body is not valid JSON (code invalid_json)."),
    404: error("The conversation was deleted meanwhile (conversation_not_found)."),
    409: error(
        "A reply is already being written (conversation_busy), or the regenerated or "
        "edited turn is not one the conversation has (turn_not_found)."
    ),
    413: error("The prompt or the body is too large."),
    415: error("The body is sent with a Content-Type other than application/json."),
    422: error(
        "The chat id or the messages are invalid (invalid_request, with error.details), "
        "or the prompt is only whitespace (empty_prompt)."
    ),
    429: error(
        "Too many prompts from this client (only with CHATBOT_RATE_LIMIT_PER_MINUTE set).",
        headers=RETRY_AFTER,
    ),
    503: error("Overloaded, shutting down or the database is not answering.", headers=RETRY_AFTER),
}
ChatId = Annotated[str, Path(pattern=ID_PATTERN, description="The chat (conversation) id.")]


@router.post(
    "/chat",
    response_class=EventStreamResponse,
    status_code=200,
    dependencies=[RequireJson, Depends(rate_limit)],
    responses={200: _STREAM, **_ERRORS},
    summary="useChat's endpoint: send a message, regenerate a reply or edit a message",
)
async def chat(
    body: Annotated[UIChatRequestIn, Body()],
    conversations: ConversationsDep,
    turns: TurnsDep,
    settings: SettingsDep,
) -> EventStreamResponse:
    """The reply streams as the AI SDK's UI message stream. Like every reply, it is written
    to its end even if the client goes away (a fetch abort is a disconnect, not a stop).

    A regenerate, or a message sent with the ``messageId`` of an edited one, branches the
    conversation at the turn it re-asks (``POST /regenerate`` and ``POST /edit`` do the
    same): the turns after it stay in the branch it leaves, one switch away."""
    project_id = settings.ui_project_id
    prompt = check_prompt(prompt_of(body.messages), settings.max_prompt_chars)
    point = None
    if body.trigger == "regenerate-message" or body.messageId is not None:
        stored = await conversations.history(project_id, body.id) or []
        point = branch_point(body, stored, prompt)
    if point is None:
        reply = await start_reply(conversations, project_id, body.id, prompt)
    else:
        reply = await _start_branch(conversations, project_id, body.id, point.index, point.prompt)
    return EventStreamResponse(
        ui_message_stream(reply.log.read(), reply.id),
        headers=UI_MESSAGE_STREAM_HEADERS,
        on_close=on_close(turns, reply),
    )


@router.get(
    "/chat/{chat_id}/stream",
    response_class=EventStreamResponse,
    status_code=200,
    responses={
        200: _STREAM,
        204: {"description": "No reply is being written in this chat."},
        503: error("The database is not answering (storage_unavailable).", headers=RETRY_AFTER),
    },
    summary="useChat's resume: the reply being written, replayed from its start",
)
async def resume_chat(chat_id: ChatId, turns: TurnsDep, settings: SettingsDep) -> Response:
    """A finished reply answers 204 like no reply at all: the client already has it, or
    reads it from the history, and a replay would show it twice."""
    try:
        reply = await turns.find(settings.ui_project_id, chat_id)
    except StoreUnavailable:
        raise ApiError(
            503,
            "storage_unavailable",
            "The database is not answering; try again in a moment.",
            headers={"Retry-After": "2"},
        ) from None
    if reply is None or reply.done:
        return Response(status_code=204)
    return EventStreamResponse(
        ui_message_stream(reply.log.read(), reply.id), headers=UI_MESSAGE_STREAM_HEADERS
    )


async def _start_branch(
    conversations: ConversationService,
    project_id: str,
    chat_id: str,
    index: int,
    prompt: str | None,
) -> Reply:
    """Start the branch's reply, or answer why it cannot start. The item was read from
    the history before the lease was taken: a conversation that changed or went away
    meanwhile no longer has the turn the client meant."""
    with reply_start_errors():
        try:
            return await conversations.start_branch(project_id, chat_id, index=index, prompt=prompt)
        except BranchInputError as exc:
            raise ApiError(409, "turn_not_found", exc.message) from None
