"""The OpenAI-compatible API: the whole graph served as one model, ``burr-chatbot``.

A client sets its base URL to ``http://host:port/v1`` and talks to the graph as to any
chat model. Each request is a turn of a conversation of the chat UI's project, found
from the request (``chatbot.conversations.continuation``), so it shows in the chat UI, in
``/conversations`` and in Burr's UI like any other; its id comes back in
``X-Conversation-Id`` and the chosen mode in ``X-Chatbot-Mode``.

The response waits for the graph to choose its step before it starts: the mode can then
go in a header, and a failure before any text (the classifier's) is an HTTP error the
SDKs raise as their typed exceptions. After that, a failure is an error event.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Final

from fastapi import APIRouter, Body, Depends, Header, Response

from chatbot.domain.errors import INTERNAL_ERROR
from chatbot.domain.events import OUTCOMES, StepStarted, TurnCompleted, TurnEvent
from server.deps import (
    ID_PATTERN,
    ConversationsDep,
    DefaultProject,
    RequireJson,
    SettingsDep,
    TurnsDep,
)
from server.errors import ApiError, ReplyFailed
from server.event_stream import EventStreamResponse
from server.limits import rate_limit
from server.openai_request import named_conversation, turn_request
from server.openai_schemas import (
    ChatCompletionChunkOut,
    ChatCompletionIn,
    ChatCompletionOut,
    ModelListOut,
    ModelOut,
    OpenAIErrorOut,
)
from server.openapi import event_stream
from server.protocols.openai import ChunkFrames, CompletionIds, chunk_frames, completion
from server.routes.chat import on_close

MODEL_ID: Final = "burr-chatbot"
CONVERSATION_HEADER: Final = "X-Conversation-Id"
MODE_HEADER: Final = "X-Chatbot-Mode"
OPEN_WEBUI_CHAT_HEADER: Final = "X-OpenWebUI-Chat-Id"
# The graph does not change while the server runs; its "model" dates from the start.
_CREATED: Final = int(time.time())
MODEL: Final = ModelOut(id=MODEL_ID, created=_CREATED, owned_by="burr-chatbot")

router = APIRouter(tags=["openai"])


def _error(description: str) -> dict[str, Any]:
    return {"model": OpenAIErrorOut, "description": description}


_ERRORS: Final = {
    400: _error("Invalid or unsupported request; `param` names the field."),
    401: _error("Missing or wrong API key (when CHATBOT_API_KEY is set)."),
    404: _error("No such model (`model_not_found`)."),
    409: _error("A reply is already being written in this conversation."),
    413: _error("The prompt or the body is too large."),
    415: _error("The body is not JSON."),
    429: _error("Too many requests (see Retry-After), or the upstream's rate limit."),
    500: _error("An internal error before the reply started."),
    502: _error("The model behind this server failed before the reply started."),
    503: _error("Overloaded or shutting down (see Retry-After)."),
    504: _error("The model behind this server did not answer in time."),
}


def check_model(model: str, param: str = "model") -> None:
    if model != MODEL_ID:
        raise ApiError(
            404,
            "model_not_found",
            f"The model {model!r} does not exist; this server has one model, {MODEL_ID!r}.",
            param=param,
        )


@router.get("/models", response_model=ModelListOut, responses={401: _ERRORS[401]})
async def list_models() -> ModelListOut:
    """The one model: the whole Burr graph (classifier and responders)."""
    return ModelListOut(data=[MODEL])


@router.get(
    "/models/{model_id:path}",
    response_model=ModelOut,
    responses={401: _ERRORS[401], 404: _ERRORS[404]},
)
async def get_model(model_id: str) -> ModelOut:
    check_model(model_id, param="model_id")
    return MODEL


@router.post(
    "/chat/completions",
    response_model=ChatCompletionOut,
    dependencies=[RequireJson, Depends(rate_limit)],
    responses={
        200: {
            **event_stream(
                (ChatCompletionChunkOut, OpenAIErrorOut),
                "A chat.completion, or with `stream: true` a text/event-stream of "
                "chat.completion.chunk events ending with `data: [DONE]` (a failure "
                'mid-stream is one `data: {"error": ...}` event instead).',
                sentinel="[DONE]",
            ),
            "headers": {
                CONVERSATION_HEADER: {
                    "description": "The conversation this request went to.",
                    "required": True,
                    "schema": {"type": "string", "pattern": ID_PATTERN},
                },
                MODE_HEADER: {
                    "description": "The response action the graph chose.",
                    "required": True,
                    "schema": {"type": "string"},
                },
            },
        },
        **_ERRORS,
    },
    summary="Create a chat completion: one turn of the Burr graph",
)
async def chat_completions(
    body: Annotated[ChatCompletionIn, Body()],
    response: Response,
    conversations: ConversationsDep,
    turns: TurnsDep,
    settings: SettingsDep,
    project_id: DefaultProject,
    conversation_id: Annotated[
        str | None,
        Header(
            alias=CONVERSATION_HEADER,
            description="Continue this conversation (it is created if it does not exist).",
            # Documented, checked by named_conversation (400 invalid_conversation_id).
            json_schema_extra={"pattern": ID_PATTERN},
        ),
    ] = None,
    open_webui_chat_id: Annotated[
        str | None,
        Header(
            alias=OPEN_WEBUI_CHAT_HEADER,
            description="Open WebUI's chat id (ENABLE_FORWARD_USER_INFO_HEADERS=true).",
        ),
    ] = None,
) -> Response | ChatCompletionOut:
    check_model(body.model)
    request = turn_request(body, settings.max_prompt_chars)
    named = named_conversation(conversation_id, open_webui_chat_id, body)
    options = request.options
    reply = await conversations.continue_reply(
        project_id, request.prompt, request.earlier, named=named, options=options
    )
    headers = {CONVERSATION_HEADER: reply.conversation_id}
    events = reply.log.read()
    opening = await _until_step(events)
    if not isinstance(opening, StepStarted):  # failed (or was stopped) before any text
        raise ReplyFailed(getattr(opening, "error", None) or INTERNAL_ERROR, headers)
    headers[MODE_HEADER] = opening.action
    ids = CompletionIds(
        completion_id=f"chatcmpl-{uuid.uuid4().hex}",
        created=int(time.time()),
        model=MODEL_ID,
        conversation_id=reply.conversation_id,
    )
    if request.stream:
        frames = ChunkFrames(ids, include_usage=request.include_usage)
        return EventStreamResponse(
            chunk_frames(events, frames, already=[opening]),
            on_close=on_close(turns, reply),
            headers=headers,
        )
    async for _ in events:
        pass
    outcome = reply.outcome
    if not isinstance(outcome, TurnCompleted):
        raise ReplyFailed(getattr(outcome, "error", None) or INTERNAL_ERROR, headers)
    response.headers.update(headers)
    return completion(outcome, ids)


async def _until_step(events: AsyncIterator[TurnEvent]) -> TurnEvent:
    """Read up to the step that answers, or the outcome of a turn that ended before it."""
    async for event in events:
        if isinstance(event, (StepStarted, *OUTCOMES)):
            return event
    raise RuntimeError("a turn's events ended without an outcome")
