"""Browser sessions for servers with an API key: trade the key for an HttpOnly cookie.

Burr's UI, served on the same origin, cannot send our Authorization header; with the
cookie its API calls are authorised too. The route itself sits behind the key check.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from server.deps import SettingsDep
from server.security import SESSION_COOKIE, session_token

router = APIRouter(tags=["auth"])


@router.post(
    "/session", status_code=204, response_class=Response, summary="Start a browser session"
)
async def start_session(request: Request, settings: SettingsDep) -> Response:
    response = Response(status_code=204)
    if settings.auth_required:
        assert settings.api_key is not None
        response.set_cookie(
            SESSION_COOKIE,
            session_token(settings.api_key.get_secret_value()),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
    return response


@router.delete("/session", status_code=204, response_class=Response, summary="End the session")
async def end_session() -> Response:
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
