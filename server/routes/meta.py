"""Health, readiness and what the browser UI needs to know about this server."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import PlainTextResponse

from chatbot.domain.owners import LOCAL
from server.authentication import CALLER
from server.deps import ConversationsDep, MetricsDep, SettingsDep
from server.errors import ApiError
from server.openapi import error
from server.paths import BURR_PREFIX
from server.schemas import HealthOut, InfoOut, ReadyOut, UserOut

health_router = APIRouter(tags=["health"])
metrics_router = APIRouter(tags=["health"])
info_router = APIRouter(tags=["meta"])


@health_router.get("/healthz", summary="Liveness: the process is serving requests")
async def healthz() -> HealthOut:
    return HealthOut(status="ok")


@health_router.get(
    "/readyz",
    responses={503: error("The database is not answering (not_ready).")},
    summary="Readiness: the database answers",
)
async def readyz(conversations: ConversationsDep) -> ReadyOut:
    try:
        await conversations.ping()
    except Exception as exc:
        raise ApiError(503, "not_ready", f"The database is not answering: {exc}") from exc
    return ReadyOut(status="ready")


@info_router.get("/info", response_model=InfoOut, summary="Settings the chat UI reads at start")
async def info(request: Request, settings: SettingsDep) -> InfoOut:
    burr = BURR_PREFIX if settings.burr_ui_enabled else None
    caller = request.scope.get(CALLER, None if settings.auth_required else LOCAL)
    # Burr's UI addresses an app as project / partition key / app; ours are partitioned by
    # project, as the conversations are stored: under the caller's own project.
    stored = caller.project(settings.ui_project_id) if caller else "{project_id}"
    return InfoOut(
        project_id=settings.ui_project_id,
        burr_ui_url=burr,
        burr_app_url_template=f"{burr}/project/{stored}/{stored}/{{app_id}}" if burr else None,
        auth_required=settings.auth_required,
        user=UserOut(id=caller.user_id, admin=caller.admin) if caller else None,
        sign_in_url="/auth/login" if settings.auth_oidc else None,
        offline_model=settings.offline,
        chat_model=settings.chat_model,
        classifier_model=settings.classifier_model,
    )


@metrics_router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="Prometheus metrics: active streams, turns by outcome, first-delta latency",
)
async def metrics(metrics: MetricsDep) -> PlainTextResponse:
    return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
