"""Serves the built chat UI (``ui/dist``) at ``/``, with client-side routes falling back to it."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from starlette.responses import FileResponse, HTMLResponse
from starlette.routing import Match
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from server.error_handlers import wrong_method_message
from server.errors import ApiError
from server.paths import API_PREFIX, OPENAI_PREFIX
from server.security import UI_HEADERS

_NOT_BUILT = f"""<!doctype html><meta charset="utf-8"><title>Chatbot</title>
<p>The chat UI has not been built. Run <code>make run</code> (it builds <code>ui/</code>), or
use the API under <code>{API_PREFIX}</code>; <a href="/docs">/docs</a> lists it.</p>"""

# Paths the SPA fallback must never swallow: an unknown API path is a 404, not the UI.
_RESERVED = (
    "api/",
    "burr",
    "docs",
    "redoc",
    "openapi.json",
    "healthz",
    "readyz",
    OPENAI_PREFIX.lstrip("/"),
)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _methods_elsewhere(app: FastAPI, scope: Scope, fallbacks: tuple[object, ...]) -> set[str]:
    """The methods the real routes answer at this request's path (none: no such path).

    The fallbacks below match any path, so the router never sees that a path exists with
    other methods. Asked here, only once a request has fallen through to them: each
    method is tried against every route but the fallbacks, through the routes' own
    matching (which also sees into included routers).
    """
    routes = [r for r in app.router.routes if getattr(r, "endpoint", None) not in fallbacks]
    return {
        method
        for method in _METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)
    }


def _wrong_method(request: Request, allowed: set[str]) -> ApiError:
    allow = ", ".join(sorted(allowed))
    return ApiError(
        405,
        "method_not_allowed",
        wrong_method_message(request.method, request.url.path, allow),
        headers={"Allow": allow},
    )


def mount_ui(app: FastAPI, dist: Path) -> None:
    index = dist / "index.html"
    assets = dist / "assets"
    if assets.is_dir():
        app.mount("/assets", StaticFiles(directory=assets), name="ui-assets")
    # Top-level files (favicon, manifest…) are listed once here, so serving never stats disk.
    top_level = {p.name: p for p in dist.iterdir() if p.is_file()} if dist.is_dir() else {}
    has_index = index.is_file()

    async def unknown_api(request: Request, path: str):
        """404 for an unknown API path; 405 (with Allow) for a known one and a wrong method."""
        allowed = _methods_elsewhere(app, request.scope, fallbacks)
        if allowed:
            raise _wrong_method(request, allowed)
        raise ApiError(
            404, "not_found", f"No API route answers {request.method} {request.url.path}."
        )

    # Both APIs (ours and the OpenAI-compatible one) answer JSON for any path under them.
    for prefix in ("/api", OPENAI_PREFIX):
        app.add_api_route(
            f"{prefix}/{{path:path}}",
            unknown_api,
            methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            include_in_schema=False,
        )

    @app.get("/{path:path}", include_in_schema=False)
    async def spa(path: str):
        if path.startswith(_RESERVED):
            raise ApiError(404, "not_found", f"Nothing at /{path}.")
        if path in top_level:
            return FileResponse(top_level[path])
        if has_index:
            return FileResponse(index, headers={"Cache-Control": "no-cache", **UI_HEADERS})
        return HTMLResponse(_NOT_BUILT, headers=UI_HEADERS)

    fallbacks = (unknown_api, spa)
