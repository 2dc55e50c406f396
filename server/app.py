"""The FastAPI application factory: API routes, the chat UI, and their shared runtime."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from chatbot.runtime import Chatbot
from chatbot.tracking.records import TrackingRecords
from server.access_log import AccessLogMiddleware
from server.authentication import Authenticator, AuthMiddleware
from server.burr_ui import (
    BackendFactory,
    LazyBurrUI,
    burr_ui_lifespan,
    instrument_openai,
    mount_burr_ui,
)
from server.error_handlers import install_error_handlers
from server.forwarded import ForwardedClient
from server.limits import BodyLimitMiddleware, RateLimiter
from server.oidc import OIDC_SESSION_COOKIE, OIDC_SESSION_MAX_AGE_S, oidc_client
from server.openapi import install_openapi, operation_id, operation_id_with
from server.paths import API_PREFIX, OPENAI_PREFIX
from server.routes import (
    ai_sdk,
    branches,
    chat,
    conversations,
    meta,
    openai,
    replies,
    session,
    sign_in,
    websocket,
)
from server.security import SecurityHeadersMiddleware
from server.session_cookie import SessionCookie
from server.settings import ServerSettings
from server.shutdown import relay_shutdown_signals
from server.ui import mount_ui

if TYPE_CHECKING:
    from burr.tracking.server.backend import BackendBase

logger = logging.getLogger(__name__)

_DESCRIPTION = f"""\
Every error is `{{"error": {{"code", "message"}}}}` with a stable `code`. Streams are
Server-Sent Events whose every `data:` is one JSON frame; the schema given for a stream
is that of one event, its `data` described by `contentSchema` (`ChatFrame`, `ResumeFrame`).
A method a path does not answer gets 405 with an `Allow` header. This document describes
this server as configured: the prompt's `maxLength`, and the API key (401) if one is set.
The chat routes live under `{API_PREFIX}`."""


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    settings = settings or ServerSettings()

    burr_app: LazyBurrUI | None = None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        chatbot = await Chatbot.start(settings)
        app.state.chatbot = chatbot
        authenticator.bind(chatbot.api_keys)
        logger.info(
            "model: %s; database: %s; tracking: %s",
            "embedded offline model" if settings.offline else settings.openai_base_url or "OpenAI",
            settings.resolved_database_url.split("@")[-1],
            settings.resolved_tracking_dir
            if settings.resolved_tracking == "file"
            else settings.resolved_tracking,
        )
        drain: asyncio.Task[None] | None = None

        def start_drain() -> None:
            nonlocal drain
            if drain is None:
                drain = asyncio.create_task(chatbot.turns.drain(settings.shutdown_grace_s))

        try:
            with relay_shutdown_signals(start_drain):
                async with burr_ui_lifespan(burr_app):
                    yield
        finally:
            if drain is not None:
                await drain
            await chatbot.aclose()
            if authenticator.oidc is not None:
                await authenticator.oidc.aclose()

    app = FastAPI(
        title="Burr streaming chatbot",
        summary="A chatbot proxy whose routing is a Burr state machine, streamed as SSE.",
        description=_DESCRIPTION,
        version="0.1.0",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
    )
    install_openapi(app, settings)
    app.state.settings = settings
    authenticator = app.state.authenticator = Authenticator.from_settings(settings)
    app.state.rate_limiter = (
        RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
        if settings.rate_limit_per_minute
        else None
    )
    install_error_handlers(app)
    app.include_router(meta.health_router)
    app.include_router(meta.metrics_router)
    app.include_router(session.router, prefix=API_PREFIX)
    if authenticator.oidc is not None:
        app.state.oidc_client = oidc_client(authenticator.oidc, settings.oidc_scopes)
        app.include_router(sign_in.router)
    app.include_router(chat.router, prefix=API_PREFIX)
    app.include_router(replies.router, prefix=API_PREFIX)
    app.include_router(branches.router, prefix=API_PREFIX)
    app.include_router(websocket.router, prefix=API_PREFIX)
    app.include_router(conversations.router, prefix=API_PREFIX)
    app.include_router(meta.info_router, prefix=API_PREFIX)
    app.include_router(openai.router, prefix=OPENAI_PREFIX)
    # useChat's default endpoint is /api/chat; the same routes also live under the prefix.
    app.include_router(ai_sdk.router, prefix="/api")
    app.include_router(
        ai_sdk.router,
        prefix=API_PREFIX,
        generate_unique_id_function=operation_id_with("streaming_chatbot"),
    )
    if settings.burr_ui_enabled:
        burr_app = mount_burr_ui(
            app,
            settings.resolved_tracking_dir,
            chat.router,
            api_prefix=API_PREFIX,
            backend=_burr_backend(app, settings, signed_in=authenticator.enabled),
        )
    if settings.otel_instrument_openai:
        instrument_openai()
    mount_ui(app, settings.resolved_ui_dist_dir)
    # Added innermost first: a request meets the access log, headers, CORS, auth, body limit.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if authenticator.enabled:
        app.add_middleware(AuthMiddleware, authenticator=authenticator)
    if authenticator.oidc is not None:
        # Outside the auth check, which reads the signed-in user from the session.
        app.add_middleware(
            SessionCookie,
            secret_key=authenticator.oidc.config.session_secret(),
            session_cookie=OIDC_SESSION_COOKIE,
            max_age=OIDC_SESSION_MAX_AGE_S,
            same_site="lax",
        )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                openai.CONVERSATION_HEADER,
                openai.OPEN_WEBUI_CHAT_HEADER,
            ],
            expose_headers=[openai.CONVERSATION_HEADER, openai.MODE_HEADER],
            allow_credentials=False,
            max_age=600,
        )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(ForwardedClient)  # outermost: it sees the peer that connected
    return app


def _burr_backend(
    app: FastAPI, settings: ServerSettings, *, signed_in: bool
) -> BackendFactory | None:
    """With tracking in the database, what makes Burr's UI read it (when first loaded,
    once the chatbot has opened the database)."""
    if settings.resolved_tracking != "database":
        return None

    def backend() -> BackendBase:
        from server.burr_backend import DatabaseBackend  # imports Burr's UI server: lazily

        return DatabaseBackend(
            TrackingRecords(app.state.chatbot.store.dialect), signed_in=signed_in
        )

    return backend
