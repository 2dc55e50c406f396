"""Branches of a conversation: edit a prompt, regenerate a reply, switch between versions.

Editing or regenerating forks a new branch (a Burr application forked from the one
shown) and streams its first reply exactly as ``POST /response`` streams a reply; the
new branch is then the one shown. ``/branches`` lists the versions of an item and
switches the one shown, answering the new history at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query

from chatbot.runtime import HistoryItem, ItemVersion
from server.deps import AppId, ConversationsDep, ProjectId, RequireJson, SettingsDep, TurnsDep
from server.event_stream import EventStreamResponse
from server.openapi import error, event_stream
from server.routes.chat import Route, check_prompt, reply_stream, streamed_prompt_route
from server.routes.documented import (
    BUSY,
    INVALID_JSON,
    NOT_JSON,
    RATE_LIMITED,
    START_REFUSED,
    STORAGE_UNAVAILABLE,
)
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
# A request naming what the conversation does not have, or cannot do there: the schema
# cannot know the conversation, so these are 404 and 409, not 422.
_ITEM_NOT_FOUND = error(
    "There is no such conversation (conversation_not_found), or no item at that index "
    "(item_not_found, with error.details)."
)
_VERSION_NOT_FOUND = error(
    "There is no such conversation (conversation_not_found), no item at that index "
    "(item_not_found), no such version of it (version_not_found) or no such branch of "
    "the conversation (branch_not_found); error.details says which field."
)


def _cannot_branch(kind: str) -> dict:
    return error(
        "A reply is being written in this conversation (conversation_busy), or the item "
        f"there cannot be {kind} (item_not_branchable, with error.details)."
    )


_FORK_ERRORS = {
    400: INVALID_JSON,
    404: _ITEM_NOT_FOUND,
    415: NOT_JSON,
    429: RATE_LIMITED,
    503: START_REFUSED,
}


def _fork_route(
    path: str, *, not_branchable: str, invalid: str, summary: str
) -> Callable[[Route], Route]:
    """A route that forks a branch and streams its first reply as ``POST /response``
    streams one; ``not_branchable`` and ``invalid`` say what its 409 and 422 mean."""
    return streamed_prompt_route(
        router,
        path,
        responses={
            200: _STREAM,
            **_FORK_ERRORS,
            409: _cannot_branch(not_branchable),
            422: error(invalid),
        },
        summary=summary,
    )


async def checked_edit(body: Annotated[EditIn, Body()], settings: SettingsDep) -> EditIn:
    """The edit, its new prompt checked against this server's limits (``check_prompt``)."""
    check_prompt(body.prompt, settings.max_prompt_chars)
    return body


@_fork_route(
    "/regenerate/{project_id}/{app_id}",
    not_branchable="regenerated: it is a prompt, not a reply",
    invalid="The IDs or the body are invalid (invalid_request, with error.details).",
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
    return reply_stream(
        turns,
        await conversations.start_branch(project_id, app_id, index=body.index, prompt=None),
    )


@_fork_route(
    "/edit/{project_id}/{app_id}",
    not_branchable="edited: it is a reply, not a prompt",
    invalid=(
        "The IDs or the body are invalid (invalid_request, with error.details), or the "
        "prompt is only whitespace (empty_prompt) or over CHATBOT_MAX_PROMPT_CHARS "
        "characters (prompt_too_long)."
    ),
    summary="Edit a prompt: a new branch sends the new prompt in its place, streamed",
)
async def edit_prompt(
    project_id: ProjectId,
    app_id: AppId,
    edit: Annotated[EditIn, Depends(checked_edit)],
    conversations: ConversationsDep,
    turns: TurnsDep,
) -> EventStreamResponse:
    """The new branch keeps the items before the prompt, sends the new one, and becomes
    the branch shown; the old prompt and what followed it stay, as the other version."""
    return reply_stream(
        turns,
        await conversations.start_branch(project_id, app_id, index=edit.index, prompt=edit.prompt),
    )


@router.get(
    "/branches/{project_id}/{app_id}",
    response_model=VersionsOut,
    responses={404: _ITEM_NOT_FOUND, 503: STORAGE_UNAVAILABLE},
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
    found = await conversations.versions(project_id, app_id, index)
    return VersionsOut(
        index=found.index,
        shown=found.shown,
        versions=[
            VersionOut(
                version=number,
                app_id=version.branch_id,
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
        400: INVALID_JSON,
        404: _VERSION_NOT_FOUND,
        409: BUSY,
        415: NOT_JSON,
        503: STORAGE_UNAVAILABLE,
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
    if isinstance(body, SwitchToBranchIn):
        return await conversations.switch_branch(project_id, app_id, body.app_id)
    return await conversations.switch_branch(
        project_id, app_id, ItemVersion(body.index, body.version)
    )
