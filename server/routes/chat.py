"""The three routes of the contract (response, history, create) plus a non-streaming reply."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Body, Depends

from chatbot.chat_items import ChatItem
from chatbot.events import TurnCompleted, TurnFailed, TurnInterrupted
from chatbot.persistence import ConversationBusy, StoreUnavailable
from chatbot.replies import Reply
from chatbot.runtime import Chatbot, Overloaded, ShuttingDown
from server.deps import AppId, ChatbotDep, ProjectId, RequireJson, SettingsDep
from server.errors import ApiError
from server.event_stream import EventStreamResponse
from server.limits import rate_limit
from server.protocols.burr_ui import burr_ui_frames
from server.schemas import ChatItemOut, ErrorOut, PromptIn, TurnEndOut

router = APIRouter(tags=["chat"])

_ERRORS = {
    409: {"model": ErrorOut, "description": "A reply is already streaming for this conversation."},
    413: {"model": ErrorOut, "description": "The prompt or the body is too large."},
    429: {"model": ErrorOut, "description": "Too many prompts from this client."},
    503: {"model": ErrorOut, "description": "Overloaded or shutting down; see Retry-After."},
    422: {"model": ErrorOut, "description": "The IDs or the body are invalid."},
}


def check_prompt(prompt: str, max_chars: int) -> str:
    """The prompt, or a 4xx saying what is wrong with it."""
    if not prompt.strip():
        raise ApiError(422, "empty_prompt", "The prompt is empty.")
    if len(prompt) > max_chars:
        raise ApiError(
            413,
            "prompt_too_long",
            f"The prompt has {len(prompt)} characters; the limit is {max_chars}.",
        )
    return prompt


@contextmanager
def reply_start_errors() -> Iterator[None]:
    """Why a reply cannot start, as the HTTP error that says so (every protocol's route)."""
    try:
        yield
    except Overloaded:
        raise ApiError(
            503,
            "overloaded",
            "The server is streaming as many replies as it allows; try again in a moment.",
            headers={"Retry-After": "1"},
        ) from None
    except ShuttingDown:
        raise ApiError(
            503,
            "server_shutting_down",
            "The server is restarting; try again in a few seconds.",
            headers={"Retry-After": "5"},
        ) from None
    except StoreUnavailable:
        raise ApiError(
            503,
            "storage_unavailable",
            "The database is not answering; try again in a moment.",
            headers={"Retry-After": "2"},
        ) from None
    except ConversationBusy:
        raise ApiError(
            409,
            "conversation_busy",
            "A reply is already being written in this conversation; wait for it to finish "
            "or stop it, then send again.",
        ) from None


async def start_reply(
    bot: ChatbotDep, project_id: str, app_id: str, prompt: str, *, regenerate: bool = False
) -> Reply:
    """Start a reply (it runs to its end whoever listens), or answer why it cannot start."""
    with reply_start_errors():
        return await bot.start_reply(project_id, app_id, prompt, regenerate=regenerate)


@router.post(
    "/response/{project_id}/{app_id}",
    response_class=EventStreamResponse,
    status_code=200,
    dependencies=[RequireJson, Depends(rate_limit)],
    responses={200: {"content": {"text/event-stream": {}}}, **_ERRORS},
    summary="Send a prompt; the reply streams back as Server-Sent Events",
)
async def chat_response(
    project_id: ProjectId,
    app_id: AppId,
    body: Annotated[PromptIn, Body()],
    bot: ChatbotDep,
    settings: SettingsDep,
) -> EventStreamResponse:
    """Frames: ``chat_history``, then ``delta``s, then ``end`` (or ``error``).

    A client that goes away does not stop the reply (unless CHATBOT_ON_DISCONNECT=cancel):
    it is written and stored all the same, and ``GET /stream`` reattaches to it.
    """
    prompt = check_prompt(body.prompt, settings.max_prompt_chars)
    reply = await start_reply(bot, project_id, app_id, prompt)
    return EventStreamResponse(burr_ui_frames(reply.log.read()), on_close=on_close(bot, reply))


def on_close(bot: Chatbot, reply: Reply) -> Callable[[], Awaitable[None]]:
    """What a response does when it ends: tell the runtime if its client left mid-reply."""

    async def closed() -> None:
        if not reply.done:
            bot.client_left(reply)

    return closed


@router.post(
    "/reply/{project_id}/{app_id}",
    response_model=TurnEndOut,
    response_model_exclude_unset=True,
    dependencies=[RequireJson, Depends(rate_limit)],
    responses={502: {"model": ErrorOut, "description": "The model call failed."}, **_ERRORS},
    summary="Send a prompt and get the whole reply at once (for clients that cannot stream)",
)
async def chat_reply(
    project_id: ProjectId,
    app_id: AppId,
    body: Annotated[PromptIn, Body()],
    bot: ChatbotDep,
    settings: SettingsDep,
) -> TurnEndOut:
    prompt = check_prompt(body.prompt, settings.max_prompt_chars)
    reply = await start_reply(bot, project_id, app_id, prompt)
    async for _ in reply.log.read():
        pass
    outcome = reply.outcome
    if isinstance(outcome, TurnCompleted):
        return TurnEndOut.of(outcome)
    error = outcome.error if isinstance(outcome, TurnFailed | TurnInterrupted) else None
    if error is None:
        raise ApiError(500, "internal_error", "The reply ended without an outcome.")
    status = 503 if error.code in ("storage_error", "server_shutting_down") else 502
    raise ApiError(status, error.code, error.message)


@router.get(
    "/history/{project_id}/{app_id}",
    response_model=list[ChatItemOut],
    response_model_exclude_none=True,
    responses={404: {"model": ErrorOut, "description": "No such conversation."}},
    summary="The conversation's chat history",
)
async def chat_history(project_id: ProjectId, app_id: AppId, bot: ChatbotDep) -> list[ChatItem]:
    history = await bot.history(project_id, app_id)
    if history is None:
        raise ApiError(
            404, "conversation_not_found", f"There is no conversation {app_id!r} in {project_id!r}."
        )
    return history


@router.post(
    "/create/{project_id}/{app_id}",
    response_model=str,
    responses={422: _ERRORS[422]},
    summary="Create a conversation (idempotent); answers its ID",
)
async def create_conversation(project_id: ProjectId, app_id: AppId, bot: ChatbotDep) -> str:
    await bot.create(project_id, app_id)
    return app_id
