"""Browser sessions: trade a key for an HttpOnly cookie (``server.authentication``).

Burr's UI, served on the same origin, cannot send our Authorization header; with the
cookie its API calls are authorised too. The route itself sits behind the key check.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from server.authentication import SESSION_COOKIE, bearer_key
from server.deps import AuthenticatorDep

router = APIRouter(tags=["auth"])


@router.post(
    "/session", status_code=204, response_class=Response, summary="Start a browser session"
)
async def start_session(request: Request, authenticator: AuthenticatorDep) -> Response:
    response = Response(status_code=204)
    key = bearer_key(request.headers.raw)
    # Without a key (auth off, or a request the cookie already authorised) nothing changes.
    session = await authenticator.session_for(key) if key else None
    if session is not None:
        response.set_cookie(
            SESSION_COOKIE,
            session,
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
