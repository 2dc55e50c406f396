"""Serves the built chat UI (``ui/dist``) at ``/``, with client-side routes falling back to it."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from starlette.responses import FileResponse, HTMLResponse
from starlette.staticfiles import StaticFiles

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


def mount_ui(app: FastAPI, dist: Path) -> None:
    index = dist / "index.html"
    assets = dist / "assets"
    if assets.is_dir():
        app.mount("/assets", StaticFiles(directory=assets), name="ui-assets")
    # Top-level files (favicon, manifest…) are listed once here, so serving never stats disk.
    top_level = {p.name: p for p in dist.iterdir() if p.is_file()} if dist.is_dir() else {}
    has_index = index.is_file()

    @app.api_route(
        "/api/{path:path}",
        methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
    )
    async def unknown_api(request: Request, path: str):
        raise ApiError(404, "not_found", f"No API route answers {request.method} /api/{path}.")

    @app.get("/{path:path}", include_in_schema=False)
    async def spa(path: str):
        if path.startswith(_RESERVED):
            raise ApiError(404, "not_found", f"Nothing at /{path}.")
        if path in top_level:
            return FileResponse(top_level[path])
        if has_index:
            return FileResponse(index, headers={"Cache-Control": "no-cache", **UI_HEADERS})
        return HTMLResponse(_NOT_BUILT, headers=UI_HEADERS)
