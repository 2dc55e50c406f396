"""Conversations as a resource: list a project's conversations, delete one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from chatbot.runtime import ConversationNotFound
from server.deps import AppId, ConversationsDep, ProjectId
from server.openapi import error
from server.routes.documented import NOT_FOUND, STORAGE_UNAVAILABLE
from server.schemas import ConversationOut, ConversationPage

router = APIRouter(tags=["conversations"])


@router.get(
    "/conversations/{project_id}",
    response_model=ConversationPage,
    responses={503: STORAGE_UNAVAILABLE},
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
        404: NOT_FOUND,
        409: error("A reply is being written in it on another server (conversation_busy)."),
        503: STORAGE_UNAVAILABLE,
    },
    summary="Delete a conversation, its stored states and its tracking log",
)
async def delete_conversation(
    project_id: ProjectId, app_id: AppId, conversations: ConversationsDep
) -> Response:
    """A reply streaming in it on this server is stopped first."""
    if not await conversations.delete(project_id, app_id):
        raise ConversationNotFound(project_id, app_id)
    return Response(status_code=204)
