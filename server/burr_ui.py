"""Burr's own tracking UI, mounted under ``/burr`` on the chatbot's port.

Three things make this more than ``app.mount``:

* Burr's UI server imports its bundled example apps, and four of them call
  ``OpenAIInstrumentor().instrument()`` at import time, patching the ``openai`` SDK for
  the whole process (it raised context errors while streaming and added CPU to every
  call). Global instrumentation is suppressed during that import; a user who wants
  OpenTelemetry turns it on (``CHATBOT_OTEL_INSTRUMENT_OPENAI=true``).
* Its demo page calls ``/burr/api/v0/streaming_chatbot/…``; the bundled example router
  lives at that path inside Burr's app, so our router is registered in front of the
  mount and wins.
* A mounted app's lifespan does not run by itself; ``burr_ui_lifespan`` runs it inside
  ours (Burr indexes and readies its backend there).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI

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


def mount_burr_ui(
    app: FastAPI, tracking_dir: Path, chat_router: APIRouter, api_prefix: str
) -> FastAPI:
    """Mount Burr's UI at ``/burr``, reading ``tracking_dir``; returns the mounted app."""
    with _no_global_instrumentation():
        from burr.tracking.server import run as burr_server
        from burr.tracking.server.backend import LocalBackend

    if isinstance(burr_server.backend, LocalBackend):
        burr_server.backend.path = str(tracking_dir)
    else:
        logger.info("Burr UI uses its configured backend %s", type(burr_server.backend).__name__)
    ui_app = burr_server.create_burr_ui_app(serve_static=True)
    # In front of the mount: the Burr demo page's calls reach this chatbot.
    app.include_router(chat_router, prefix=BURR_PREFIX + api_prefix, include_in_schema=False)
    app.mount(BURR_PREFIX, ui_app, name="burr-ui")
    return ui_app


@contextlib.asynccontextmanager
async def burr_ui_lifespan(ui_app: FastAPI | None) -> AsyncIterator[None]:
    if ui_app is None:
        yield
        return
    async with ui_app.router.lifespan_context(ui_app):
        yield
