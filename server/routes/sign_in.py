"""Browser sign-in at the OpenID provider (``CHATBOT_AUTH=oidc``): the authorization-code
flow with PKCE, state and nonce, by Authlib's Starlette client (``server.oidc``).

``GET /auth/login`` sends the browser to the provider; the provider sends it back to
``GET /auth/callback``, which checks the answer, keeps the user in the session cookie and
returns the browser to the page it came from. ``POST /auth/logout`` ends the session and
answers where the provider ends its own (RP-initiated logout): without that, the next
sign-in would be silent and signing out would seem to do nothing.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from authlib.integrations.starlette_client import OAuthError, StarletteOAuth2App
from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse

from server.errors import ApiError
from server.oidc import SESSION_USER, OidcConfig, ProviderUnavailable
from server.schemas import SignedOut

router = APIRouter(prefix="/auth", tags=["auth"])
_NEXT = "chatbot_next"


def _client(request: Request) -> StarletteOAuth2App:
    return request.app.state.oidc_client


def _local_path(path: str) -> str:
    """Where to return after sign-in: a path of this site only (never another origin)."""
    return path if path.startswith("/") and not path.startswith(("//", "/\\")) else "/"


@router.get("/login", summary="Sign in at the OpenID provider", response_class=RedirectResponse)
async def sign_in(
    request: Request, next: Annotated[str, Query(max_length=2000)] = "/"
) -> RedirectResponse:
    request.session[_NEXT] = _local_path(next)
    try:
        return await _client(request).authorize_redirect(
            request, str(request.url_for("oidc_callback"))
        )
    except Exception as exc:  # discovery failed: Authlib raises what httpx raised
        raise ApiError(503, "unavailable", "The sign-in provider is not answering.") from exc


@router.get(
    "/callback",
    name="oidc_callback",
    summary="Where the OpenID provider returns the browser",
    response_class=RedirectResponse,
)
async def callback(request: Request) -> RedirectResponse:
    config: OidcConfig = request.app.state.authenticator.oidc.config
    try:
        token = await _client(request).authorize_access_token(request)
    except OAuthError as exc:
        reason = exc.description or exc.error
        raise ApiError(401, "sign_in_failed", f"Sign-in failed: {reason}.") from exc
    except (ProviderUnavailable, OSError) as exc:
        raise ApiError(503, "unavailable", "The sign-in provider is not answering.") from exc
    caller = config.caller(token.get("userinfo") or {})
    if caller is None:
        raise ApiError(401, "sign_in_failed", f"The ID token has no {config.user_claim!r} claim.")
    next_path = request.session.pop(_NEXT, "/")
    request.session[SESSION_USER] = {"id": caller.user_id, "admin": caller.admin}
    return RedirectResponse(next_path, status_code=303)


@router.post("/logout", summary="Sign out")
async def sign_out(request: Request) -> SignedOut:
    request.session.clear()
    provider = request.app.state.authenticator.oidc
    try:
        end = (await provider.metadata()).get("end_session_endpoint")
    except ProviderUnavailable:
        end = None
    if not end:
        return SignedOut(logout_url=None)
    query = {
        "client_id": provider.config.client_id,
        "post_logout_redirect_uri": str(request.base_url),
    }
    return SignedOut(logout_url=f"{end}?{urlencode(query)}")
