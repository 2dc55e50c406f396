"""The error answers routes declare in the OpenAPI document, each written once.

What the middleware adds to every route (401 with a key, 413 for the body limit) and
FastAPI's 422 are documented by ``server.openapi``; these are the answers of the routes
themselves, named by the codes ``server.error_tables`` answers them with.
"""

from __future__ import annotations

from typing import Any, Final

from server.openapi import RETRY_AFTER, error

INVALID_JSON: Final = error("The body is not valid JSON (code invalid_json).")
NOT_JSON: Final = error(
    "The body is sent with a Content-Type other than application/json (unsupported_media_type)."
)
RATE_LIMITED: Final = error(
    "Too many prompts from this client (rate_limited; only with "
    "CHATBOT_RATE_LIMIT_PER_MINUTE set).",
    headers=RETRY_AFTER,
)
NOT_FOUND: Final = error("There is no such conversation (conversation_not_found).")
BUSY: Final = error("A reply is being written in this conversation (conversation_busy).")
STORAGE_UNAVAILABLE: Final = error(
    "The database is not answering (storage_unavailable).", headers=RETRY_AFTER
)
START_REFUSED: Final = error(
    "The server is streaming as many replies as it allows (overloaded), shutting down "
    "(server_shutting_down), or its database is not answering (storage_unavailable).",
    headers=RETRY_AFTER,
)
INVALID_PROMPT: Final = error(
    "The IDs or the body are invalid (invalid_request, with error.details), the prompt "
    "is only whitespace (empty_prompt) or over CHATBOT_MAX_PROMPT_CHARS characters "
    "(prompt_too_long)."
)

# What a prompt route can answer besides its reply.
PROMPT_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    400: INVALID_JSON,
    409: BUSY,
    415: NOT_JSON,
    422: INVALID_PROMPT,
    429: RATE_LIMITED,
    503: START_REFUSED,
}
