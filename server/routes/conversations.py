"""Conversations as a resource: list a project's conversations, delete one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from chatbot.store import ConversationBusy
from server.deps import AppId, ConversationsDep, ProjectId
from server.errors import ApiError
from server.openapi import error
from server.schemas import ConversationOut, ConversationPage

router = APIRouter(tags=["conversations"])


@router.get(
    "/conversations/{project_id}",
    response_model=ConversationPage,
    summary="A project's conversations, most recently active first",
)
async def list_conversations(
    project_id: ProjectId,
    conversations: ConversationsDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ConversationPage:
    items, total = await conversations.list(project_id, limit, offset)
    return ConversationPage(
        items=[ConversationOut.model_validate(item) for item in items],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.delete(
    "/conversations/{project_id}/{app_id}",
    status_code=204,
    response_class=Response,
    responses={
        404: error("There is no such conversation (conversation_not_found)."),
        409: error("A reply is being written in it on another server (conversation_busy)."),
    },
    summary="Delete a conversation, its stored states and its tracking log",
)
async def delete_conversation(
    project_id: ProjectId, app_id: AppId, conversations: ConversationsDep
) -> Response:
    """A reply streaming in it on this server is stopped first."""
    try:
        deleted = await conversations.delete(project_id, app_id)
    except ConversationBusy:
        raise ApiError(
            409,
            "conversation_busy",
            "A reply is streaming in this conversation on another server; try again when it ends.",
        ) from None
    if not deleted:
        raise ApiError(
            404, "conversation_not_found", f"There is no conversation {app_id!r} in {project_id!r}."
        )
    return Response(status_code=204)
