"""Errors on ``/v1`` in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

OpenAI's SDKs pick their exception class from the status (``BadRequestError`` for 400,
``AuthenticationError`` for 401, ``NotFoundError``, ``ConflictError``, ``RateLimitError``,
``InternalServerError``...), so the statuses are OpenAI's too: a body that fails
validation is a 400 naming the field (``param``), not our API's 422.

The rest of the API keeps its own shape (``server.errors``). The exception handlers
choose by path: ``install_openai_error_handlers`` wraps the ones already installed, and
middleware that answers before routing (auth, body size) calls ``send_error_for``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import Scope, Send

from chatbot.domain.errors import TurnError
from server.errors import ApiError, send_error
from server.paths import OPENAI_PREFIX


class OpenAIApiError(ApiError):
    """An ``ApiError`` that also names the request field at fault, as OpenAI's ``param``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, code, message, headers=headers)
        self.param = param


def is_openai_path(path: str) -> bool:
    return path == OPENAI_PREFIX or path.startswith(OPENAI_PREFIX + "/")


def error_type(status: int) -> str:
    """OpenAI's ``type`` for a status."""
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def openai_error_body(
    status: int, code: str | None, message: str, param: str | None = None
) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": error_type(status), "param": param, "code": code}
    }


def openai_error_response(
    status: int,
    code: str | None,
    message: str,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        openai_error_body(status, code, message, param), status_code=status, headers=headers
    )


def turn_error_status(error: TurnError) -> int:
    """The status for a turn that failed before its reply started (upstream 429 stays 429)."""
    if error.code == "upstream_rate_limited":
        return 429
    if error.code == "upstream_timeout":
        return 504
    if error.code.startswith("upstream_"):
        return 502  # the model behind this server failed: a bad gateway, not a bad request
    if error.code in ("storage_error", "server_shutting_down"):
        return 503
    if error.code in ("reply_stopped", "conversation_deleted"):
        return 409
    return 500


def turn_error(error: TurnError, headers: dict[str, str]) -> OpenAIApiError:
    """The HTTP error of a turn that failed before any text (its headers kept)."""
    if error.retry_after_s is not None:
        headers = {**headers, "Retry-After": str(max(1, round(error.retry_after_s)))}
    return OpenAIApiError(turn_error_status(error), error.code, error.message, headers=headers)


# --- the exception handlers, by path --------------------------------------------------
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


# Labels pydantic puts in an error's location for the branch of a union it tried.
_BRANCH_LABEL = re.compile(r"str|int|float|bool|none|(list|dict)\[.*\]|[A-Z]\w*In|[\w-]+-\w+")


def _param(location: tuple[Any, ...]) -> str | None:
    """A pydantic error location as OpenAI names a field: ``messages[0].content``."""
    parts = list(location[1:] if location and location[0] == "body" else location)
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        elif name and _BRANCH_LABEL.fullmatch(str(part)):
            continue  # not a field
        else:
            name += f".{part}" if name else str(part)
    return name or None


def _validation_code(error_kind: str) -> str:
    if error_kind == "missing":
        return "missing_required_parameter"
    if error_kind.endswith("_type") or error_kind in ("literal_error", "model_attributes_type"):
        return "invalid_type"
    return "invalid_value"


async def _api_error(_: Request, exc: ApiError) -> Response:
    return openai_error_response(
        exc.status, exc.code, exc.message, getattr(exc, "param", None), exc.headers
    )


async def _validation_error(_: Request, exc: RequestValidationError) -> Response:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return openai_error_response(400, "invalid_json", "The request body is not valid JSON.")
    if not errors:
        return openai_error_response(400, "invalid_value", "The request is invalid.")
    first = errors[0]
    param = _param(tuple(first.get("loc", ())))
    message = first.get("msg", "is invalid")
    text = f"Invalid value for '{param}': {message}." if param else f"{message}."
    return openai_error_response(400, _validation_code(first.get("type", "")), text, param)


async def _http_error(_: Request, exc: StarletteHTTPException) -> Response:
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else "The request failed."
    return openai_error_response(
        exc.status_code, code, message, headers=getattr(exc, "headers", None)
    )


Handler = Callable[[Request, Any], Awaitable[Response]]


def _by_path(openai: Handler, other: Handler) -> Handler:
    async def handle(request: Request, exc: Any) -> Response:
        if is_openai_path(request.url.path):
            return await openai(request, exc)
        return await other(request, exc)

    return handle


def install_openai_error_handlers(app: FastAPI) -> None:
    """On ``/v1``, errors take OpenAI's shape; elsewhere the handlers installed before run."""
    for exc_class, handler in (
        (ApiError, _api_error),
        (RequestValidationError, _validation_error),
        (StarletteHTTPException, _http_error),
    ):
        app.add_exception_handler(exc_class, _by_path(handler, app.exception_handlers[exc_class]))


async def send_error_for(
    scope: Scope,
    send: Send,
    status: int,
    code: str,
    message: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Answer from ASGI middleware (before routing) in the shape the path's clients read."""
    if not is_openai_path(scope["path"]):
        await send_error(send, status, code, message, headers)
        return
    payload = orjson.dumps(openai_error_body(status, code, message))
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *(headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})
