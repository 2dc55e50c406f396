"""Errors on ``/v1`` in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

OpenAI's SDKs pick their exception class from the status (``BadRequestError`` for 400,
``AuthenticationError`` for 401, ``NotFoundError``, ``ConflictError``, ``RateLimitError``,
``InternalServerError``...), so the statuses are OpenAI's too (``server.error_tables``): a
body that fails validation is a 400 naming the field (``param``), not our API's 422.
"""

from __future__ import annotations

import re
from typing import Any, Final

from starlette.responses import JSONResponse

# Validation errors the request models raise with a code of their own (pydantic's
# ``PydanticCustomError`` type): answered under that code, on /v1 and on our API.
OWN_CODES: Final = frozenset({"empty_prompt", "unsupported_part"})


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
    if error_kind in OWN_CODES:
        return error_kind
    if error_kind == "missing":
        return "missing_required_parameter"
    if error_kind.endswith("_type") or error_kind in ("literal_error", "model_attributes_type"):
        return "invalid_type"
    return "invalid_value"


def openai_validation_error(errors: list[Any]) -> JSONResponse:
    """A body that fails validation: a 400 naming the first field at fault."""
    if not errors:
        return JSONResponse(openai_error_body(400, "invalid_value", "The request is invalid."), 400)
    first = errors[0]
    param = _param(tuple(first.get("loc", ())))
    message = first.get("msg", "is invalid")
    text = f"Invalid value for '{param}': {message}." if param else f"{message}."
    body = openai_error_body(400, _validation_code(first.get("type", "")), text, param)
    return JSONResponse(body, status_code=400)
