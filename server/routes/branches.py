"""Branches of a conversation: edit a prompt, regenerate a reply, switch between versions.

Editing or regenerating forks a new branch (a Burr application forked from the one
shown) and streams its first reply exactly as ``POST /response`` streams a reply; the
new branch is then the one shown. ``/branches`` lists the versions of an item and
switches the one shown, answering the new history at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query

from chatbot.domain.branch_tree import BranchInputError
from chatbot.runtime import ConversationNotFound, HistoryItem
from chatbot.store import ConversationBusy, StoreUnavailable
from server.deps import AppId, ConversationsDep, ProjectId, RequireJson, SettingsDep, TurnsDep
from server.errors import ApiError
from server.event_stream import EventStreamResponse
from server.limits import rate_limit
from server.openapi import RETRY_AFTER, error, event_stream
from server.protocols.burr_ui import burr_ui_frames
from server.routes.chat import branch_input_error, check_prompt, on_close, reply_start_errors
from server.schemas import (
    ChatFrame,
    ChatItemOut,
    EditIn,
    RegenerateIn,
    SwitchBranchIn,
    SwitchToBranchIn,
    VersionOut,
    VersionsOut,
)

router = APIRouter(tags=["branches"])

_STREAM = event_stream(
    ChatFrame,
    "Server-Sent Events, as POST /response: chat_history (the new branch's history "
    "before its turn), the deltas, then end or error.",
    ids=False,
)
_NOT_FOUND = error("There is no such conversation (conversation_not_found).")
_BUSY = error("A reply is being written in this conversation (conversation_busy).")
_UNAVAILABLE = error("The database is not answering (storage_unavailable).", headers=RETRY_AFTER)
_FORK_ERRORS = {
    400: error("The body is not valid JSON (code invalid_json)."),
    404: _NOT_FOUND,
    409: _BUSY,
    415: error("The body is sent with a Content-Type other than application/json."),
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


@router.post(
    "/regenerate/{project_id}/{app_id}",
    response_class=EventStreamResponse,
    status_code=200,
    dependencies=[RequireJson, Depends(rate_limit)],
    responses={
        200: _STREAM,
        **_FORK_ERRORS,
        422: error(
            "The IDs or the body are invalid, the index is out of range, or the item "
            "there is a prompt, not a reply (invalid_request, with error.details)."
        ),
    },
    summary="Regenerate a reply: a new branch answers its prompt again, streamed",
)
async def regenerate_reply(
    project_id: ProjectId,
    app_id: AppId,
    body: Annotated[RegenerateIn, Body()],
    conversations: ConversationsDep,
    turns: TurnsDep,
) -> EventStreamResponse:
    """The new branch keeps the items before the reply's prompt, sends that prompt again,
    and becomes the branch shown; the reply it replaces stays, as version of its item."""
    with reply_start_errors():
        reply = await conversations.start_branch(
            project_id, app_id, index=body.index, prompt=None
        )
    return EventStreamResponse(burr_ui_frames(reply.log.read()), on_close=on_close(turns, reply))


@router.post(
    "/edit/{project_id}/{app_id}",
    response_class=EventStreamResponse,
    status_code=200,
    dependencies=[RequireJson, Depends(rate_limit)],
    responses={
        200: _STREAM,
        **_FORK_ERRORS,
        413: error(
            "The prompt is over CHATBOT_MAX_PROMPT_CHARS characters (prompt_too_long), "
            "or the body is over CHATBOT_MAX_BODY_BYTES (payload_too_large)."
        ),
        422: error(
            "The IDs or the body are invalid, the index is out of range, or the item "
            "there is a reply, not a prompt (invalid_request, with error.details); or the "
            "prompt is only whitespace (empty_prompt)."
        ),
    },
    summary="Edit a prompt: a new branch sends the new prompt in its place, streamed",
)
async def edit_prompt(
    project_id: ProjectId,
    app_id: AppId,
    body: Annotated[EditIn, Body()],
    conversations: ConversationsDep,
    turns: TurnsDep,
    settings: SettingsDep,
) -> EventStreamResponse:
    """The new branch keeps the items before the prompt, sends the new one, and becomes
    the branch shown; the old prompt and what followed it stay, as the other version."""
    prompt = check_prompt(body.prompt, settings.max_prompt_chars)
    with reply_start_errors():
        reply = await conversations.start_branch(
            project_id, app_id, index=body.index, prompt=prompt
        )
    return EventStreamResponse(burr_ui_frames(reply.log.read()), on_close=on_close(turns, reply))


@contextmanager
def branch_errors() -> Iterator[None]:
    """What reading or switching branches answers when it cannot."""
    try:
        yield
    except ConversationNotFound as exc:
        raise ApiError(404, "conversation_not_found", str(exc)) from None
    except BranchInputError as exc:
        raise branch_input_error(exc) from None
    except ConversationBusy:
        raise ApiError(
            409,
            "conversation_busy",
            "A reply is being written in this conversation; switch when it has ended.",
        ) from None
    except StoreUnavailable:
        raise ApiError(
            503,
            "storage_unavailable",
            "The database is not answering; try again in a moment.",
            headers={"Retry-After": "2"},
        ) from None


@router.get(
    "/branches/{project_id}/{app_id}",
    response_model=VersionsOut,
    responses={
        404: _NOT_FOUND,
        422: error(
            "The IDs or the index are invalid, or the index is out of range "
            "(invalid_request, with error.details)."
        ),
        503: _UNAVAILABLE,
    },
    summary="The versions of an item of the history, and the one shown",
)
async def list_versions(
    project_id: ProjectId,
    app_id: AppId,
    conversations: ConversationsDep,
    index: Annotated[int, Query(ge=0, le=1_000_000, description="The item's index.")],
) -> VersionsOut:
    """Versions are numbered from 0 in the order they were made (the original is 0); an
    item never edited or regenerated has one."""
    with branch_errors():
        found = await conversations.versions(project_id, app_id, index)
    return VersionsOut(
        index=found.index,
        shown=found.shown,
        versions=[
            VersionOut(
                version=number,
                app_id=version.app_id,
                created_at=version.created_at,
                preview=version.preview,
            )
            for number, version in enumerate(found.versions)
        ],
    )


@router.post(
    "/branches/{project_id}/{app_id}",
    response_model=list[ChatItemOut],
    response_model_exclude_none=True,
    dependencies=[RequireJson],
    responses={
        400: error("The body is not valid JSON (code invalid_json)."),
        404: _NOT_FOUND,
        409: _BUSY,
        415: error("The body is sent with a Content-Type other than application/json."),
        422: error(
            "The IDs or the body are invalid, the index or the version is out of range, "
            "or app_id is no branch of this conversation (invalid_request, with "
            "error.details)."
        ),
        503: _UNAVAILABLE,
    },
    summary="Show another version of an item; answers the history now shown",
)
async def switch_branch(
    project_id: ProjectId,
    app_id: AppId,
    body: Annotated[SwitchBranchIn, Body()],
    conversations: ConversationsDep,
) -> list[HistoryItem]:
    """Switching to a version shows, of the branches holding it, the one shown last, so
    switching back restores what was there. The choice is stored: a reload, another
    process, the next prompt all see it. The answer is what GET /history answers next."""
    with branch_errors():
        if isinstance(body, SwitchToBranchIn):
            return await conversations.switch_branch(project_id, app_id, branch=body.app_id)
        return await conversations.switch_branch(
            project_id, app_id, index=body.index, version=body.version
        )
