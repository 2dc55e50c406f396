"""The OpenAPI document, exact: what each route declares, plus what wraps every route.

Routes declare their own answers (``error`` and ``event_stream`` below keep those
declarations short). What the middleware and the framework add to every request is
documented here, once, from the same settings that configure them:

* 401 and the security schemes, on the paths the API key protects, when a key is set;
* 413 on every method with a body, from the body-size limit;
* 422 in the API's own error shape, where FastAPI would document its default one;
* the prompts' ``maxLength``, which is this server's ``CHATBOT_MAX_PROMPT_CHARS``.

So ``/openapi.json`` describes the server that serves it; ``server.openapi_dump``
prints the document of a server with the default settings (the one the UI's types are
generated from).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from server.authentication import SESSION_COOKIE, is_admin_only, is_protected
from server.limits import BODYLESS_METHODS
from server.paths import OPENAI_PREFIX
from server.schemas import ErrorOut
from server.settings import ServerSettings

_REF = "#/components/schemas/{model}"
_ERROR_CONTENT = {"application/json": {"schema": {"$ref": _REF.format(model="ErrorOut")}}}
# Models the document refers to by name though no route returns them as JSON: the error
# shape, and each stream's frames (``event_stream`` adds those as routes declare them).
_REFERENCED_MODELS: list[type[BaseModel]] = [ErrorOut]
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}


def error(description: str, *, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    """One documented error answer: the ``ErrorOut`` shape, and the headers it always has.

    The content is spelled out (not ``model=ErrorOut``) because FastAPI would give a
    route's extra answers the route's own media type: ``text/event-stream`` on a stream.
    """
    response: dict[str, Any] = {"description": description, "content": _ERROR_CONTENT}
    if headers:
        response["headers"] = headers
    return response


def event_stream(
    frames: type[BaseModel] | tuple[type[BaseModel], ...],
    description: str,
    *,
    ids: bool = False,
    sentinel: str | None = None,
) -> dict[str, Any]:
    """A ``text/event-stream`` answer whose every event's ``data`` is one of ``frames`` as
    JSON, or the ``sentinel`` that ends some dialects' streams (``[DONE]``).

    OpenAPI 3.1 has no item schema for streams; as schema validators of SSE read it
    (and as 3.2's ``itemSchema`` says), the schema is that of one parsed event:
    ``data`` (JSON, described by ``contentSchema``), ``event`` and, if sent, ``id``.
    """
    models = frames if isinstance(frames, tuple) else (frames,)
    references = [_reference(model) for model in models]
    data: dict[str, Any] = {
        "type": "string",
        "contentMediaType": "application/json",
        "contentSchema": references[0] if len(references) == 1 else {"anyOf": references},
    }
    if sentinel is not None:
        data = {"anyOf": [{"const": sentinel}, data]}
    properties: dict[str, Any] = {
        "data": data,
        "event": {
            "const": "message",
            "description": "No event: lines; every frame is a default message event.",
        },
    }
    if ids:
        properties["id"] = {
            "type": "string",
            "pattern": r"^.+\.[0-9]+$",
            "description": "<reply>.<index>: send it back as Last-Event-ID to resume after it.",
        }
    schema = {"type": "object", "required": ["data"], "properties": properties}
    if not ids:
        schema["not"] = {"required": ["id"]}
    return {
        "description": description,
        "content": {"text/event-stream": {"schema": schema}},
    }


def _reference(model: type[BaseModel]) -> dict[str, str]:
    if model not in _REFERENCED_MODELS:
        _REFERENCED_MODELS.append(model)
    return {"$ref": _REF.format(model=model.__name__)}


def operation_id(route: APIRoute) -> str:
    """The route function's name (``chat_response``): what a generated client calls it.

    FastAPI's default glues the path and the method on (``chat_response_api_v0_…_post``).
    """
    return route.name


def operation_id_with(suffix: str) -> Callable[[APIRoute], str]:
    """Ids for a router included a second time, at another prefix: ``chat_<suffix>``."""

    def named(route: APIRoute) -> str:
        return f"{route.name}_{suffix}"

    return named


def install_openapi(app: FastAPI, settings: ServerSettings) -> None:
    """Serve the exact document at ``/openapi.json`` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_document(app, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def build_document(app: FastAPI, settings: ServerSettings) -> dict[str, Any]:
    document = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    _add_referenced_models(schemas)
    for prompt_body in ("PromptIn", "EditIn"):
        schemas[prompt_body]["properties"]["prompt"]["maxLength"] = settings.max_prompt_chars
    for path, method, operation in _operations(document):
        responses = operation["responses"]
        if path.startswith(OPENAI_PREFIX):
            _document_openai_operation(operation, settings)
            continue
        _replace_default_422(responses)
        if method.upper() not in BODYLESS_METHODS:
            responses.setdefault(
                "413",
                error(
                    f"The body is over the {settings.max_body_bytes}-byte limit "
                    "(CHATBOT_MAX_BODY_BYTES)."
                ),
            )
        if settings.auth_required and is_protected(path):
            operation["security"] = [{"bearerAuth": []}, {"sessionCookie": []}]
            responses["401"] = error(
                "No valid API key: send 'Authorization: Bearer <key>' or the session cookie "
                "of POST /session.",
                headers={"WWW-Authenticate": {"required": True, "schema": {"const": "Bearer"}}},
            )
            per_user = settings.resolved_tracking == "database"
            if settings.per_user_keys and is_admin_only(path, burr_per_user=per_user):
                responses["403"] = error("A user who is not an admin (forbidden).")
    if settings.auth_required:
        document["components"]["securitySchemes"] = {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": (
                    "A user's key from `chatbot keys create`, or CHATBOT_API_KEY"
                    if settings.per_user_keys
                    else "CHATBOT_API_KEY"
                ),
            },
            "sessionCookie": {
                "type": "apiKey",
                "in": "cookie",
                "name": SESSION_COOKIE,
                "description": "Set by POST /session for browsers, which cannot add a header "
                "to every request (Burr's UI).",
            },
        }
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    document["components"]["schemas"] = dict(sorted(schemas.items()))
    return document


def _document_openai_operation(operation: dict[str, Any], settings: ServerSettings) -> None:
    """``/v1`` routes document their own errors, in OpenAI's shape (401 included, kept only
    when a key is set); a body it cannot validate is a 400 there, as at OpenAI, never
    FastAPI's default 422."""
    responses = operation["responses"]
    default = responses.get("422", {}).get("content", {}).get("application/json", {})
    if default.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
        del responses["422"]
    if settings.auth_required:
        operation["security"] = [{"bearerAuth": []}]
    else:
        responses.pop("401", None)  # as everywhere: no key, no 401


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                yield path, method, item[method]


def _replace_default_422(responses: dict[str, Any]) -> None:
    """FastAPI documents its own validation body; our handler answers ``ErrorOut``."""
    default = responses.get("422")
    if default is None:
        return
    schema = default.get("content", {}).get("application/json", {}).get("schema", {})
    if schema.get("$ref", "").endswith("/HTTPValidationError"):
        responses["422"] = error(
            "The request is invalid (code invalid_request); error.details says where and why."
        )


def _add_referenced_models(schemas: dict[str, Any]) -> None:
    _, top = models_json_schema(
        [(model, "serialization") for model in _REFERENCED_MODELS], ref_template=_REF
    )
    for name, schema in top.get("$defs", {}).items():
        schemas.setdefault(name, schema)
