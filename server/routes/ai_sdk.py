"""``useChat``'s backend: ``POST /api/chat`` and its resume route, in the AI SDK's protocol.

Served at the root (the AI SDK's default ``api`` is ``/api/chat``) and under the API
prefix. A chat id is a conversation of the UI's project (``CHATBOT_UI_PROJECT_ID``), so
the same conversation can be read with ``GET …/history`` and stopped with ``POST …/stop``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Response

from chatbot.last_turn import prompts_in
from chatbot.persistence import StoreUnavailable
from server.deps import ID_PATTERN, ChatbotDep, RequireJson, SettingsDep
from server.errors import ApiError
from server.event_stream import EventStreamResponse
from server.limits import rate_limit
from server.protocols.ai_sdk import UI_MESSAGE_STREAM_HEADERS, ui_message_stream
from server.protocols.ai_sdk_request import prompt_of, replaces_last_turn
from server.routes.chat import check_prompt, on_close, start_reply
from server.schemas import ErrorOut, UIChatRequestIn

router = APIRouter(tags=["ai-sdk"])

_STREAM = {"content": {"text/event-stream": {}}, "description": "The UI message stream."}
_ERRORS = {
    409: {
        "model": ErrorOut,
        "description": "A reply is already being written, or the turn to replace is not "
        "the last one.",
    },
    413: {"model": ErrorOut, "description": "The prompt or the body is too large."},
    415: {"model": ErrorOut, "description": "The body is not JSON."},
    422: {"model": ErrorOut, "description": "The chat id or the messages are invalid."},
    429: {"model": ErrorOut, "description": "Too many prompts from this client."},
    503: {"model": ErrorOut, "description": "Overloaded or shutting down; see Retry-After."},
}
ChatId = Annotated[str, Path(pattern=ID_PATTERN, description="The chat (conversation) id.")]


@router.post(
    "/chat",
    response_class=EventStreamResponse,
    status_code=200,
    dependencies=[RequireJson, Depends(rate_limit)],
    responses={200: _STREAM, **_ERRORS},
    summary="useChat's endpoint: send a message (or regenerate the last reply) and stream it",
)
async def chat(
    body: Annotated[UIChatRequestIn, Body()], bot: ChatbotDep, settings: SettingsDep
) -> EventStreamResponse:
    """The reply streams as the AI SDK's UI message stream. Like every reply, it is written
    to its end even if the client goes away (a fetch abort is a disconnect, not a stop)."""
    project_id = settings.ui_project_id
    prompt = check_prompt(prompt_of(body.messages), settings.max_prompt_chars)
    regenerate = False
    if body.trigger == "regenerate-message" or body.messageId is not None:
        stored = await bot.history(project_id, body.id) or []
        regenerate = replaces_last_turn(body, prompts_in(stored))
    reply = await start_reply(bot, project_id, body.id, prompt, regenerate=regenerate)
    return EventStreamResponse(
        ui_message_stream(reply.log.read(), reply.id),
        headers=UI_MESSAGE_STREAM_HEADERS,
        on_close=on_close(bot, reply),
    )


@router.get(
    "/chat/{chat_id}/stream",
    response_class=EventStreamResponse,
    status_code=200,
    responses={
        200: _STREAM,
        204: {"description": "No reply is being written in this chat."},
    },
    summary="useChat's resume: the reply being written, replayed from its start",
)
async def resume_chat(chat_id: ChatId, bot: ChatbotDep, settings: SettingsDep) -> Response:
    """A finished reply answers 204 like no reply at all: the client already has it, or
    reads it from the history, and a replay would show it twice."""
    try:
        reply = await bot.find_reply(settings.ui_project_id, chat_id)
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
