"""The exception handlers: every error answered in the shape of the protocol it reached.

One handler per exception type, registered once on the app; each picks the protocol
family from the request's path (``/v1``: OpenAI's; ``/api/chat``: the AI SDK's; else
ours), reads the status from that family's table (``server.error_tables``) and writes
the family's body. FastAPI's own validation and HTTP errors go the same way, so a client
never has to read two shapes. Middleware that answers before routing (the API key, the
body limit) calls ``send_error_for``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import Scope, Send

from server import error_tables
from server.error_tables import DOMAIN_ERRORS, ErrorTable
from server.errors import ApiError, ReplyFailed, describe, retry_after
from server.openai_errors import OWN_CODES, openai_error_body, openai_validation_error
from server.paths import is_ai_sdk_path, is_openai_path

_HTTP_CODES: Final = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "unavailable",
}


def error_body(code: str, message: str, details: Any = None, param: str | None = None) -> Any:
    """Our API's shape (``param`` is OpenAI's and not sent here)."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


def _openai_body(code: str, message: str, details: Any, param: str | None, status: int) -> Any:
    return openai_error_body(status, code, message, param)


@dataclass(frozen=True, slots=True)
class Family:
    """A protocol family: its table and the body it writes for ``(code, message, ...)``."""

    table: ErrorTable
    body: Callable[[str, str, Any, str | None, int], Any]

    def response(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        details: Any = None,
        param: str | None = None,
    ) -> JSONResponse:
        content = self.body(code, message, details, param, status)
        return JSONResponse(content, status_code=status, headers=headers)


def _ours(code: str, message: str, details: Any, param: str | None, status: int) -> Any:
    return error_body(code, message, details)


OURS: Final = Family(error_tables.API, _ours)
AI_SDK: Final = Family(error_tables.AI_SDK, _ours)
OPENAI: Final = Family(error_tables.OPENAI, _openai_body)


def family_of(path: str) -> Family:
    if is_openai_path(path):
        return OPENAI
    if is_ai_sdk_path(path):
        return AI_SDK
    return OURS


def error_response(family: Family, exc: Exception) -> JSONResponse:
    """The answer to a domain error, a failed reply or an ``ApiError``, in ``family``'s terms."""
    told = describe(exc)
    if isinstance(exc, ApiError):
        status, code, message = exc.status, told.code, told.message or str(exc)
        headers = told.headers
    else:
        failed = isinstance(exc, ReplyFailed)
        answer = (family.table.failure if failed else family.table.refusal)(told.code)
        status, code = answer.status, answer.code or told.code
        message = answer.message or told.message or str(exc)
        wait = told.retry_after_s if told.retry_after_s is not None else answer.retry_after_s
        headers = {**told.headers, **({} if wait is None else retry_after(wait))}
    return family.response(
        status, code, message, headers=headers or None, details=told.details, param=told.param
    )


async def _known_error(request: Request, exc: Exception) -> Response:
    return error_response(family_of(request.url.path), exc)


def _describe_invalid(error: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    message = error.get("msg", "is invalid")
    return f"{location}: {message}" if location else message


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    family = family_of(request.url.path)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return family.response(400, "invalid_json", "The request body is not valid JSON.")
    if family is OPENAI:
        return openai_validation_error(errors)
    details = [
        {"location": [str(p) for p in e.get("loc", ())], "message": e.get("msg", "")}
        for e in errors
    ]
    message = "; ".join(_describe_invalid(e) for e in errors[:3]) or "The request is invalid."
    own = {e.get("type") for e in errors} & OWN_CODES
    code = own.pop() if len(errors) == 1 and own else "invalid_request"
    return family.response(422, code, message, details=details)


def wrong_method_message(method: str, path: str, allow: str) -> str:
    return f"{method} is not allowed on {path}; it answers {allow}."


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405 and headers and "Allow" in headers:
        message = wrong_method_message(request.method, request.url.path, headers["Allow"])
    else:
        message = exc.detail if isinstance(exc.detail, str) else "The request failed."
    return family_of(request.url.path).response(exc.status_code, code, message, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    for exc_class in (ApiError, ReplyFailed, *DOMAIN_ERRORS):
        app.add_exception_handler(exc_class, _known_error)
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]


async def send_error_for(
    scope: Scope,
    send: Send,
    status: int,
    code: str,
    message: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Answer from ASGI middleware (before routing) in the shape the path's clients read."""
    family = family_of(scope["path"])
    payload = orjson.dumps(family.body(code, message, None, None, status))
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *(headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})
