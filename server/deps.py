"""FastAPI dependencies, in one place: the runtime's parts, settings, the caller and IDs.

Routes reach conversations through the conversation service and running turns (replies,
stop, resume) through the registry of running turns, never the store.

A route's ``ProjectId`` is already the caller's own: the project as stored for the user
asking (``chatbot.domain.owners``), so no route can reach another user's conversations.

Every dependency is ``async def`` although none awaits: FastAPI runs a plain ``def``
dependency on a worker thread, and a prompt would pay one thread round trip for each.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from chatbot.conversations.service import ConversationService
from chatbot.domain.owners import LOCAL, Caller
from chatbot.metrics import Metrics
from chatbot.turns.registry import TurnRegistry
from server.authentication import CALLER, Authenticator
from server.errors import ApiError
from server.settings import ServerSettings

# Project and app IDs become Burr tracking directories and database keys: letters,
# digits, `_` and `-` only, so no path separator, `..` or control character gets through.
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


async def require_json(request: Request) -> None:
    """Refuse bodies that are not JSON before FastAPI tries to validate them as such."""
    content_type = request.headers.get("content-type")
    # No content type at all is read as JSON (curl -d without -H, the Burr UI's fetch).
    if content_type and content_type.split(";")[0].strip().lower() != "application/json":
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Send the body as JSON (Content-Type: application/json), not {content_type!r}.",
        )


async def get_conversations(request: Request) -> ConversationService:
    return request.app.state.chatbot.conversations


async def get_turns(request: Request) -> TurnRegistry:
    return request.app.state.chatbot.turns


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.chatbot.metrics


async def get_settings(request: Request) -> ServerSettings:
    return request.app.state.settings


async def get_authenticator(request: Request) -> Authenticator:
    return request.app.state.authenticator


async def get_caller(request: Request) -> Caller:
    """The user asking: ``local`` on a server without sign-in."""
    if not request.app.state.authenticator.enabled:
        return LOCAL
    caller = request.scope.get(CALLER)
    if caller is None:  # no credential (the middleware refuses that on every API path)
        raise ApiError(401, "unauthorized", "Sign in first: send 'Authorization: Bearer <key>'.")
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]
_PROJECT_PATH = Path(pattern=ID_PATTERN, description="Project: 1-64 of A-Z a-z 0-9 _ -")


async def owned_project(caller: CallerDep, project_id: Annotated[str, _PROJECT_PATH]) -> str:
    return caller.project(project_id)


async def default_project(caller: CallerDep, request: Request) -> str:
    """The caller's own UI project: the one ``/v1`` and the AI SDK's routes keep chats in."""
    return caller.project(request.app.state.settings.ui_project_id)


ConversationsDep = Annotated[ConversationService, Depends(get_conversations)]
TurnsDep = Annotated[TurnRegistry, Depends(get_turns)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
SettingsDep = Annotated[ServerSettings, Depends(get_settings)]
AuthenticatorDep = Annotated[Authenticator, Depends(get_authenticator)]
ProjectId = Annotated[str, Depends(owned_project)]
DefaultProject = Annotated[str, Depends(default_project)]
AppId = Annotated[
    str, Path(pattern=ID_PATTERN, description="Conversation: 1-64 of A-Z a-z 0-9 _ -")
]
RequireJson = Depends(require_json)
