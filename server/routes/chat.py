"""The three routes of the contract (response, history, create) plus a non-streaming reply."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Body, Depends

from chatbot.conversations.service import ConversationService
from chatbot.domain.branch_tree import BranchInputError
from chatbot.domain.events import TurnCompleted, TurnFailed, TurnInterrupted
from chatbot.runtime import ConversationNotFound, HistoryItem, Overloaded, ShuttingDown
from chatbot.store import ConversationBusy, StoreUnavailable
from chatbot.turns.registry import TurnRegistry
from chatbot.turns.replies import Reply
from server.deps import AppId, ConversationsDep, ProjectId, RequireJson, SettingsDep, TurnsDep
from server.errors import ApiError
from server.event_stream import EventStreamResponse
from server.limits import rate_limit
from server.openapi import RETRY_AFTER, error, event_stream
from server.protocols.burr_ui import burr_ui_frames
from server.schemas import NOT_BLANK, ChatFrame, ChatItemOut, PromptIn, TurnEndOut

router = APIRouter(tags=["chat"])

# What a prompt route can answer besides its reply (401 and the body limit's 413 are
# documented for every route by server.openapi).
_PROMPT_ERRORS = {
    400: error("The body is not valid JSON (code invalid_json)."),
    409: error("A reply is already being written in this conversation (conversation_busy)."),
    413: error(
        "The prompt is over CHATBOT_MAX_PROMPT_CHARS characters (prompt_too_long), "
        "or the body is over CHATBOT_MAX_BODY_BYTES (payload_too_large)."
    ),
    415: error("The body is sent with a Content-Type other than application/json."),
    422: error(
        "The IDs or the body are invalid (invalid_request, with error.details), "
        "or the prompt is only whitespace (empty_prompt)."
    ),
    429: error(
        "Too many prompts from this client (only with CHATBOT_RATE_LIMIT_PER_MINUTE set).",
        headers=RETRY_AFTER,
    ),
    503: error(
        "The server is streaming as many replies as it allows (overloaded), shutting "
        "down (server_shutting_down), or its database is not answering (storage_unavailable).",
        headers=RETRY_AFTER,
    ),
}
_NOT_FOUND = error("There is no such conversation (conversation_not_found).")


def check_prompt(prompt: str, max_chars: int) -> str:
    """The prompt, or a 4xx saying what is wrong with it."""
    if not NOT_BLANK.search(prompt):
        raise ApiError(422, "empty_prompt", "The prompt is empty.")
    if len(prompt) > max_chars:
        raise ApiError(
            413,
            "prompt_too_long",
            f"The prompt has {len(prompt)} characters; the limit is {max_chars}.",
        )
    return prompt


def branch_input_error(exc: BranchInputError) -> ApiError:
    """A branch request naming what does not apply (422, saying where, as validation does)."""
    details = [{"location": list(exc.location), "message": exc.message}]
    return ApiError(422, exc.code, exc.message, details=details)


@contextmanager
def reply_start_errors() -> Iterator[None]:
    """Why a reply cannot start, as the HTTP error that says so (every protocol's route)."""
    try:
        yield
    except ConversationNotFound as exc:
        raise ApiError(404, "conversation_not_found", str(exc)) from None
    except BranchInputError as exc:
        raise branch_input_error(exc) from None
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
    conversations: ConversationService, project_id: str, app_id: str, prompt: str
) -> Reply:
    """Start a reply (it runs to its end whoever listens), or answer why it cannot start."""
    with reply_start_errors():
        return await conversations.start_reply(project_id, app_id, prompt)


@router.post(
    "/response/{project_id}/{app_id}",
    response_class=EventStreamResponse,
    status_code=200,
    dependencies=[RequireJson, Depends(rate_limit)],
    responses={
        200: event_stream(
            ChatFrame,
            "Server-Sent Events, each `data: <ChatFrame>`: chat_history, the deltas, "
            "then end or error. No id:, event: or comment lines, no [DONE].",
            ids=False,
        ),
        **_PROMPT_ERRORS,
    },
    summary="Send a prompt; the reply streams back as Server-Sent Events",
)
async def chat_response(
    project_id: ProjectId,
    app_id: AppId,
    body: Annotated[PromptIn, Body()],
    conversations: ConversationsDep,
    turns: TurnsDep,
    settings: SettingsDep,
) -> EventStreamResponse:
    """Frames: ``chat_history``, then ``delta``s, then ``end`` (or ``error``).

    A client that goes away does not stop the reply (unless CHATBOT_ON_DISCONNECT=cancel):
    it is written and stored all the same, and ``GET /stream`` reattaches to it.
    """
    prompt = check_prompt(body.prompt, settings.max_prompt_chars)
    reply = await start_reply(conversations, project_id, app_id, prompt)
    return EventStreamResponse(burr_ui_frames(reply.log.read()), on_close=on_close(turns, reply))


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
        **_PROMPT_ERRORS,
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
    project_id: ProjectId,
    app_id: AppId,
    body: Annotated[PromptIn, Body()],
    conversations: ConversationsDep,
    settings: SettingsDep,
) -> TurnEndOut:
    prompt = check_prompt(body.prompt, settings.max_prompt_chars)
    reply = await start_reply(conversations, project_id, app_id, prompt)
    async for _ in reply.log.read():
        pass
    outcome = reply.outcome
    if isinstance(outcome, TurnCompleted):
        return TurnEndOut.of(outcome)
    failure = outcome.error if isinstance(outcome, TurnFailed | TurnInterrupted) else None
    if failure is None:
        raise ApiError(500, "internal_error", "The reply ended without an outcome.")
    status = 503 if failure.code in ("storage_error", "server_shutting_down") else 502
    raise ApiError(status, failure.code, failure.message)


@router.get(
    "/history/{project_id}/{app_id}",
    response_model=list[ChatItemOut],
    response_model_exclude_none=True,
    responses={404: _NOT_FOUND},
    summary="The conversation's chat history",
)
async def chat_history(
    project_id: ProjectId, app_id: AppId, conversations: ConversationsDep
) -> list[HistoryItem]:
    """The items of the branch the conversation shows; an item with several versions
    (edited, regenerated) says which one is shown, and how many there are, in ``branch``."""
    history = await conversations.history_view(project_id, app_id)
    if history is None:
        raise ApiError(
            404, "conversation_not_found", f"There is no conversation {app_id!r} in {project_id!r}."
        )
    return history


@router.post(
    "/create/{project_id}/{app_id}",
    response_model=str,
    summary="Create a conversation (idempotent); answers its ID",
)
async def create_conversation(
    project_id: ProjectId, app_id: AppId, conversations: ConversationsDep
) -> str:
    await conversations.create(project_id, app_id)
    return app_id
