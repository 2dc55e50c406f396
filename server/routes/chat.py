"""The three routes of the contract (response, history, create) plus a non-streaming reply."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends

from chatbot.domain.errors import INTERNAL_ERROR
from chatbot.domain.events import TurnCompleted
from chatbot.runtime import ConversationNotFound, HistoryItem
from chatbot.turns.registry import TurnRegistry
from chatbot.turns.replies import Reply
from server.deps import AppId, ConversationsDep, ProjectId, RequireJson, SettingsDep, TurnsDep
from server.errors import ApiError, ReplyFailed
from server.event_stream import EventStreamResponse
from server.limits import rate_limit
from server.openapi import error, event_stream
from server.protocols.burr_ui import burr_ui_frames
from server.routes.documented import NOT_FOUND, PROMPT_ERRORS, STORAGE_UNAVAILABLE
from server.schemas import NOT_BLANK, ChatFrame, ChatItemOut, PromptIn, TurnEndOut

router = APIRouter(tags=["chat"])
Route = TypeVar("Route", bound=Callable[..., Any])


def check_prompt(prompt: str, max_chars: int) -> str:
    """The prompt, or a 422 saying what is wrong with it (its length is the document's
    ``maxLength``, so a prompt over it is a request the schema refuses)."""
    if not NOT_BLANK.search(prompt):
        raise ApiError(422, "empty_prompt", "The prompt is empty.")
    if len(prompt) > max_chars:
        raise ApiError(
            422,
            "prompt_too_long",
            f"The prompt has {len(prompt)} characters; the limit is {max_chars}.",
        )
    return prompt


async def checked_prompt(body: Annotated[PromptIn, Body()], settings: SettingsDep) -> str:
    """The body's prompt, checked against this server's limits (``check_prompt``)."""
    return check_prompt(body.prompt, settings.max_prompt_chars)


# A prompt route's body (``PromptIn``), as the prompt it carries once checked.
Prompt = Annotated[str, Depends(checked_prompt)]


def streamed_prompt_route(
    router: APIRouter, path: str, *, responses: dict[int | str, dict[str, Any]], summary: str
) -> Callable[[Route], Route]:
    """``router.post`` for a route that takes a prompt (a JSON body, rate limited) and
    answers with its reply as Server-Sent Events: ``/response``, ``/edit``,
    ``/regenerate`` and the AI SDK's ``/chat``."""
    return router.post(
        path,
        response_class=EventStreamResponse,
        status_code=200,
        dependencies=[RequireJson, Depends(rate_limit)],
        responses=responses,
        summary=summary,
    )


def reply_stream(turns: TurnRegistry, reply: Reply) -> EventStreamResponse:
    """A reply as the Burr demo page's stream (``/response``, ``/edit``, ``/regenerate``)."""
    return EventStreamResponse(burr_ui_frames(reply.log.read()), on_close=on_close(turns, reply))


@streamed_prompt_route(
    router,
    "/response/{project_id}/{app_id}",
    responses={
        200: event_stream(
            ChatFrame,
            "Server-Sent Events, each `data: <ChatFrame>`: chat_history, the deltas, "
            "then end or error. No id:, event: or comment lines, no [DONE].",
            ids=False,
        ),
        **PROMPT_ERRORS,
    },
    summary="Send a prompt; the reply streams back as Server-Sent Events",
)
async def chat_response(
    project_id: ProjectId,
    app_id: AppId,
    prompt: Prompt,
    conversations: ConversationsDep,
    turns: TurnsDep,
) -> EventStreamResponse:
    """Frames: ``chat_history``, then ``delta``s, then ``end`` (or ``error``).

    A client that goes away does not stop the reply (unless CHATBOT_ON_DISCONNECT=cancel):
    it is written and stored all the same, and ``GET /stream`` reattaches to it.
    """
    return reply_stream(turns, await conversations.start_reply(project_id, app_id, prompt))


def on_close(turns: TurnRegistry, reply: Reply) -> Callable[[], Awaitable[None]]:
    """What a response does when it ends: tell the registry if its client left mid-reply."""

    async def closed() -> None:
        if not reply.done:
            turns.client_left(reply)

    return closed


@router.post(
    "/reply/{project_id}/{app_id}",
    response_model=TurnEndOut,
    response_model_exclude_unset=True,
    dependencies=[RequireJson, Depends(rate_limit)],
    responses={
        **PROMPT_ERRORS,
        502: error(
            "The reply did not complete; error.code says why: the upstream model failed "
            "(e.g. upstream_timeout), or the reply was stopped (reply_stopped) or its "
            "conversation deleted (conversation_deleted) meanwhile."
        ),
        503: error(
            "The reply could not start (overloaded, server_shutting_down, "
            "storage_unavailable; with Retry-After), could not be stored (storage_error) or "
            "was cut short by a shutdown (server_shutting_down)."
        ),
    },
    summary="Send a prompt and get the whole reply at once (for clients that cannot stream)",
)
async def chat_reply(
    project_id: ProjectId, app_id: AppId, prompt: Prompt, conversations: ConversationsDep
) -> TurnEndOut:
    reply = await conversations.start_reply(project_id, app_id, prompt)
    async for _ in reply.log.read():
        pass
    outcome = reply.outcome
    if isinstance(outcome, TurnCompleted):
        return TurnEndOut.of(outcome)
    raise ReplyFailed(getattr(outcome, "error", None) or INTERNAL_ERROR)


@router.get(
    "/history/{project_id}/{app_id}",
    response_model=list[ChatItemOut],
    response_model_exclude_none=True,
    responses={404: NOT_FOUND, 503: STORAGE_UNAVAILABLE},
    summary="The conversation's chat history",
)
async def chat_history(
    project_id: ProjectId, app_id: AppId, conversations: ConversationsDep
) -> list[HistoryItem]:
    """The items of the branch the conversation shows; an item with several versions
    (edited, regenerated) says which one is shown, and how many there are, in ``branch``."""
    history = await conversations.history_view(project_id, app_id)
    if history is None:
        raise ConversationNotFound(project_id, app_id)
    return history


@router.post(
    "/create/{project_id}/{app_id}",
    response_model=str,
    responses={503: STORAGE_UNAVAILABLE},
    summary="Create a conversation (idempotent); answers its ID",
)
async def create_conversation(
    project_id: ProjectId, app_id: AppId, conversations: ConversationsDep
) -> str:
    await conversations.create(project_id, app_id)
    return app_id
