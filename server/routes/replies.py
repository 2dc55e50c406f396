"""A reply as a resource of its conversation: reattach to it from any point, or stop it.

Either works whichever process of the deployment the request reaches: the runtime asks
the one writing the reply when it is not this one (``chatbot.relay``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from chatbot.conversations.service import ConversationService
from chatbot.domain.events import TurnOutcome
from chatbot.runtime import ConversationNotFound
from chatbot.store import ConversationBusy
from chatbot.turns.registry import TurnRegistry
from server.deps import AppId, ConversationsDep, ProjectId, TurnsDep
from server.errors import ApiError, retry_after
from server.event_stream import EventStreamResponse
from server.openapi import RETRY_AFTER, error, event_stream
from server.protocols.burr_ui import resumable_frames
from server.routes.documented import NOT_FOUND, STORAGE_UNAVAILABLE
from server.schemas import ResumeFrame, StoppedOut

router = APIRouter(tags=["chat"])


@router.get(
    "/stream/{project_id}/{app_id}",
    response_class=EventStreamResponse,
    # Explicit: FastAPI cannot read a default from EventStreamResponse, and without one
    # it fails to build /openapi.json at all.
    status_code=200,
    responses={
        200: event_stream(
            ResumeFrame,
            "Server-Sent Events, each `data: <ResumeFrame>`; every frame but the history "
            "has an id: to resume after.",
            ids=True,
        ),
        204: {"description": "No reply is running (or just finished) in this conversation."},
        503: STORAGE_UNAVAILABLE,
    },
    summary="Reattach to the reply being written: its frames from where you left off",
)
async def resume_reply(
    project_id: ProjectId,
    app_id: AppId,
    turns: TurnsDep,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    last_event_id: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Same as the Last-Event-ID header, for clients "
            "that cannot set headers (EventSource sends the header itself).",
        ),
    ] = None,
) -> Response:
    """The same frames as ``POST /response``, each with an ``id:``. Without an id: the
    history, every delta so far, then live ones to the end; with the id of the last
    frame you got: only what came after it."""
    reply = await turns.find(project_id, app_id)
    if reply is None:
        return Response(status_code=204)
    start = reply.resume_index(last_event_id_header or last_event_id)
    return EventStreamResponse(resumable_frames(reply, start))


@router.post(
    "/stop/{project_id}/{app_id}",
    response_model=StoppedOut,
    response_model_exclude_none=True,
    responses={
        404: NOT_FOUND,
        409: error("No reply is being written in it (nothing_to_stop)."),
        503: error(
            "The reply could not be confirmed stopped in time (stop_unconfirmed), or the "
            "database is not answering (storage_unavailable).",
            headers=RETRY_AFTER,
        ),
    },
    summary="Stop the reply being written; what it wrote so far is kept as interrupted",
)
async def stop_reply(
    project_id: ProjectId, app_id: AppId, turns: TurnsDep, conversations: ConversationsDep
) -> StoppedOut:
    return StoppedOut.of(app_id, await stop(turns, conversations, project_id, app_id))


async def stop(
    turns: TurnRegistry, conversations: ConversationService, project_id: str, app_id: str
) -> TurnOutcome:
    """Stop the reply being written in a conversation, whoever started it (``POST /stop``
    and the WebSocket's ``stop``), or raise why there was none to stop."""
    try:
        outcome = await turns.stop(project_id, app_id)
    except ConversationBusy:
        raise ApiError(
            503,
            "stop_unconfirmed",
            "The reply could not be confirmed stopped in time; try again in a moment.",
            headers=retry_after(1),
        ) from None
    if outcome is not None:
        return outcome
    if await conversations.history(project_id, app_id) is None:
        raise ConversationNotFound(project_id, app_id)
    raise ApiError(409, "nothing_to_stop", "No reply is being written in this conversation.")
