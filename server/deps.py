"""FastAPI dependencies, in one place: the chatbot runtime, settings and validated IDs.

Every dependency is ``async def`` although none awaits: FastAPI runs a plain ``def``
dependency on a worker thread, and a prompt would pay one thread round trip for each.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from chatbot.runtime import Chatbot
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


async def get_chatbot(request: Request) -> Chatbot:
    return request.app.state.chatbot


async def get_settings(request: Request) -> ServerSettings:
    return request.app.state.settings


ChatbotDep = Annotated[Chatbot, Depends(get_chatbot)]
SettingsDep = Annotated[ServerSettings, Depends(get_settings)]
ProjectId = Annotated[str, Path(pattern=ID_PATTERN, description="Project: 1-64 of A-Z a-z 0-9 _ -")]
AppId = Annotated[
    str, Path(pattern=ID_PATTERN, description="Conversation: 1-64 of A-Z a-z 0-9 _ -")
]
RequireJson = Depends(require_json)
