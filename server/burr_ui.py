"""Burr's own tracking UI, mounted under ``/burr`` on the chatbot's port.

Four things make this more than Burr's ``mount_burr_ui`` helper:

* Loading Burr's UI server costs about as much as the rest of start-up together: it
  imports its five bundled example apps (with their SDKs) and builds its app twice. Burr's
  helper does that when it mounts, that is before the server can answer anything. Here
  ``/burr`` is a small ASGI app that builds Burr's (with Burr's own factory,
  ``create_burr_ui_app``) on the first request under it, on a worker thread, and runs
  Burr's lifespan then. Chat requests never wait for it.
* Four of those example apps call ``OpenAIInstrumentor().instrument()`` at import time,
  patching the ``openai`` SDK for the whole process (it raised context errors while
  streaming and added CPU to every call). Global instrumentation is suppressed during
  that import; a user who wants OpenTelemetry turns it on
  (``CHATBOT_OTEL_INSTRUMENT_OPENAI=true``).
* Its demo page calls ``/burr/api/v0/streaming_chatbot/…``; the bundled example router
  lives at that path inside Burr's app, so our router is registered in front of the
  mount and wins.
* ``/burr`` without the slash redirects to the UI instead of falling through to the
  chat UI's 404.
* With tracking in the database, Burr's UI reads it through ``server.burr_backend``
  (Burr's backend interface) in place of Burr's local files.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import RedirectResponse
from starlette.types import Receive, Scope, Send

if TYPE_CHECKING:
    from burr.tracking.server.backend import BackendBase
    from starlette.types import ASGIApp

# What Burr's UI reads, made when it is first loaded: a backend, or None for Burr's own
# local backend on the tracking directory.
BackendFactory = Callable[[], "BackendBase | None"]

logger = logging.getLogger(__name__)

BURR_PREFIX = "/burr"


@contextlib.contextmanager
def _no_global_instrumentation() -> Iterator[None]:
    try:
        from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
    except ImportError:
        yield
        return
    original = BaseInstrumentor.instrument

    def skip(self: Any, **kwargs: Any) -> None:
        logger.debug("skipped import-time instrumentation by %s", type(self).__name__)

    BaseInstrumentor.instrument = skip  # type: ignore[method-assign]
    try:
        yield
    finally:
        BaseInstrumentor.instrument = original  # type: ignore[method-assign]


def instrument_openai() -> None:
    """Opt-in OpenTelemetry instrumentation of the ``openai`` SDK."""
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument()


def build_burr_ui_app(tracking_dir: Path, backend: BackendBase | None = None) -> FastAPI:
    """Import Burr's UI server and build its app, reading ``backend`` or else the files in
    ``tracking_dir`` (blocking: slow)."""
    with _no_global_instrumentation():
        from burr.tracking.server import run as burr_server
        from burr.tracking.server.backend import LocalBackend

    if backend is not None:
        burr_server.backend = backend  # what Burr's routes and lifespan call, at call time
    elif isinstance(burr_server.backend, LocalBackend):
        burr_server.backend.path = str(tracking_dir)
    else:
        logger.info("Burr UI uses its configured backend %s", type(burr_server.backend).__name__)
    return burr_server.create_burr_ui_app(serve_static=True)


class LazyBurrUI:
    """The ASGI app at ``/burr``: Burr's UI app, built and started on first use.

    Concurrent first requests share one build. Burr's lifespan (its backend's start-up)
    runs once the app is built and is closed by ``aclose`` at shutdown.
    """

    def __init__(self, tracking_dir: Path, backend: BackendFactory | None = None) -> None:
        self.tracking_dir = tracking_dir
        self._backend = backend
        self._app: FastAPI | None = None
        self._loading: asyncio.Task[FastAPI] | None = None
        self._lifespans = contextlib.AsyncExitStack()

    @property
    def loaded(self) -> bool:
        return self._app is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app: ASGIApp = self._app if self._app is not None else await self.load()
        await app(scope, receive, send)

    async def load(self) -> FastAPI:
        """Burr's UI app, building and starting it if this is the first call."""
        if self._app is not None:
            return self._app
        if self._loading is None:
            self._loading = asyncio.get_running_loop().create_task(self._build())
        loading = self._loading
        try:
            # Shielded: a client that goes away must not cancel the build others wait for.
            return await asyncio.shield(loading)
        except Exception:
            if self._loading is loading:
                self._loading = None  # a later request tries again
            raise

    async def _build(self) -> FastAPI:
        logger.info("loading Burr's UI (first request under %s)", BURR_PREFIX)
        backend = self._backend() if self._backend is not None else None
        ui_app = await asyncio.to_thread(build_burr_ui_app, self.tracking_dir, backend)
        await self._lifespans.enter_async_context(ui_app.router.lifespan_context(ui_app))
        self._app = ui_app
        return ui_app

    async def aclose(self) -> None:
        if self._loading is not None and not self._loading.done():
            with contextlib.suppress(Exception):
                await self._loading
        await self._lifespans.aclose()


def mount_burr_ui(
    app: FastAPI,
    tracking_dir: Path,
    chat_router: APIRouter,
    api_prefix: str,
    backend: BackendFactory | None = None,
) -> LazyBurrUI:
    """Mount Burr's UI at ``/burr``, reading ``backend`` or ``tracking_dir``, and our router
    where its demo page calls; the UI itself is loaded on its first request."""
    ui = LazyBurrUI(tracking_dir, backend)

    @app.get(BURR_PREFIX, include_in_schema=False)
    async def burr_without_slash(request: Request) -> RedirectResponse:
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"{request.scope.get('root_path', '')}{BURR_PREFIX}/{query}")

    # In front of the mount: the Burr demo page's calls reach this chatbot.
    app.include_router(chat_router, prefix=BURR_PREFIX + api_prefix, include_in_schema=False)
    app.mount(BURR_PREFIX, ui, name="burr-ui")
    return ui


@contextlib.asynccontextmanager
async def burr_ui_lifespan(ui: LazyBurrUI | None) -> AsyncIterator[None]:
    """Close Burr's UI (its lifespan, if it was ever loaded) when the server stops."""
    try:
        yield
    finally:
        if ui is not None:
            await ui.aclose()
