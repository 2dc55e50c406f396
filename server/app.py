"""The FastAPI application factory: API routes, the chat UI, and their shared runtime."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from chatbot.runtime import Chatbot
from chatbot.settings import Settings
from server.access_log import AccessLogMiddleware
from server.errors import install_error_handlers
from server.routes import chat, conversations, meta
from server.ui import mount_ui

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v0/streaming_chatbot"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        chatbot = await Chatbot.start(settings)
        app.state.chatbot = chatbot
        logger.info(
            "model: %s; database: %s; tracking: %s",
            "embedded offline model" if settings.offline else settings.openai_base_url or "OpenAI",
            settings.resolved_database_url.split("@")[-1],
            settings.resolved_tracking_dir if settings.tracking_enabled else "off",
        )
        try:
            yield
        finally:
            await chatbot.aclose()

    app = FastAPI(
        title="Burr streaming chatbot",
        summary="A chatbot proxy whose routing is a Burr state machine, streamed as SSE.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(meta.health_router)
    app.include_router(chat.router, prefix=API_PREFIX)
    app.include_router(conversations.router, prefix=API_PREFIX)
    app.include_router(meta.info_router, prefix=API_PREFIX)
    mount_ui(app, settings.resolved_ui_dist_dir)
    app.add_middleware(AccessLogMiddleware)
    return app
