"""One error table per protocol: every domain error is answered, each in its protocol's shape.

In process: a FastAPI app with the server's own exception handlers and routes that raise
(the server's routes are tested against a real server in tests/integration).
"""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from chatbot.domain import errors as domain_errors
from chatbot.domain.branch_tree import BranchInputError
from chatbot.domain.errors import STORAGE_ERROR, TurnError
from chatbot.runtime import ConversationNotFound, Overloaded, ShuttingDown
from chatbot.store import ConversationBusy, StoreUnavailable
from server import error_tables
from server.error_handlers import install_error_handlers
from server.error_tables import DOMAIN_ERRORS
from server.errors import ApiError, ReplyFailed
from server.protocols.websocket import refusal_of

BRANCH_CODES = [
    domain_errors.ITEM_NOT_FOUND,
    domain_errors.VERSION_NOT_FOUND,
    domain_errors.BRANCH_NOT_FOUND,
    domain_errors.ITEM_NOT_BRANCHABLE,
    domain_errors.INVALID_REQUEST,
]
# Where each family is served (server.paths).
PREFIXES = {"ours": "/api/v0/streaming_chatbot", "ai_sdk": "/api/chat", "openai": "/v1"}


def raising(exc: Exception) -> TestClient:
    """A client of an app whose every path raises ``exc`` through the server's handlers."""
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/{path:path}")
    async def fail(path: str) -> None:
        raise exc

    return TestClient(app)


def test_every_domain_error_carries_a_code_every_table_answers() -> None:
    codes = [cls.code for cls in DOMAIN_ERRORS if cls is not BranchInputError]  # type: ignore[attr-defined]
    assert len(set(codes)) == len(codes) == len(DOMAIN_ERRORS) - 1
    for table in (error_tables.API, error_tables.AI_SDK, error_tables.OPENAI):
        for code in [*codes, *BRANCH_CODES]:
            assert table.refusal(code).status >= 400, code


@pytest.mark.parametrize(
    ("exc", "status", "code", "retry_after"),
    [
        (ConversationNotFound("p", "c"), 404, "conversation_not_found", None),
        (ConversationBusy("lease held by pid 7"), 409, "conversation_busy", None),
        (StoreUnavailable("connection refused"), 503, "storage_unavailable", "2"),
        (Overloaded(), 503, "overloaded", "1"),
        (ShuttingDown(), 503, "server_shutting_down", "5"),
        (
            BranchInputError("item_not_found", "There is no item 9.", ("body", "index")),
            404,
            None,
            None,
        ),
        (
            BranchInputError("version_not_found", "No version 3.", ("body", "version")),
            404,
            None,
            None,
        ),
        (
            BranchInputError("branch_not_found", "Not a branch.", ("body", "app_id")),
            404,
            None,
            None,
        ),
        (BranchInputError("item_not_branchable", "A reply.", ("body", "index")), 409, None, None),
    ],
)
def test_our_api_answers_a_domain_error_with_its_code_status_and_retry_after(
    exc: Exception, status: int, code: str | None, retry_after: str | None
) -> None:
    answer = raising(exc).get(f"{PREFIXES['ours']}/anything")
    assert answer.status_code == status
    assert answer.headers.get("retry-after") == retry_after
    error = answer.json()["error"]
    assert error["code"] == (code or exc.code)  # type: ignore[attr-defined]
    # A database's or a lease's own words never reach a client.
    assert "refused" not in error["message"] and "pid" not in error["message"]
    if isinstance(exc, BranchInputError):
        assert error["details"] == [{"location": list(exc.location), "message": exc.message}]


def test_the_same_error_takes_each_protocols_shape() -> None:
    client = raising(StoreUnavailable("connection refused"))
    ours = client.get(f"{PREFIXES['ours']}/x")
    openai = client.get(f"{PREFIXES['openai']}/chat/completions")
    assert ours.json() == {
        "error": {
            "code": "storage_unavailable",
            "message": "The database is not answering; try again in a moment.",
        }
    }
    assert openai.status_code == 503 and openai.headers["retry-after"] == "2"
    assert openai.json() == {
        "error": {
            "message": "The database is not answering; try again in a moment.",
            "type": "server_error",
            "param": None,
            "code": "storage_unavailable",
        }
    }


def test_the_ai_sdk_names_a_turn_it_cannot_branch_turn_not_found() -> None:
    exc = BranchInputError("item_not_branchable", "Item 2 is a prompt.", ("body", "index"))
    answer = raising(exc).get(f"{PREFIXES['ai_sdk']}")
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "turn_not_found"
    assert raising(exc).get("/api/v0/streaming_chatbot/chat").json()["error"]["code"] == (
        "turn_not_found"
    )


@pytest.mark.parametrize(
    ("error", "ours", "openai"),
    [
        (TurnError("upstream_timeout", "Too slow."), 502, 504),
        (TurnError("upstream_rate_limited", "Slow down.", retry_after_s=3.2), 502, 429),
        (TurnError("upstream_unreachable", "Down."), 502, 502),
        (STORAGE_ERROR, 503, 503),
        (TurnError("reply_stopped", "Stopped."), 502, 409),
        (TurnError("internal_error", "Bug."), 502, 500),
    ],
)
def test_a_reply_that_failed_before_any_text_has_each_protocols_status(
    error: TurnError, ours: int, openai: int
) -> None:
    client = raising(ReplyFailed(error, {"X-Conversation-Id": "c1"}))
    for prefix, status in ((PREFIXES["ours"], ours), (PREFIXES["openai"], openai)):
        answer = client.get(f"{prefix}/x")
        assert answer.status_code == status, prefix
        assert answer.headers["x-conversation-id"] == "c1"
        assert answer.headers.get("retry-after") == ("4" if error.retry_after_s else None)
        assert error.code in answer.text and error.message in answer.text


def test_an_api_error_keeps_its_own_status_headers_and_param() -> None:
    exc = ApiError(429, "rate_limited", "Wait.", headers={"Retry-After": "7"}, param="model")
    client = raising(exc)
    ours, openai = client.get(f"{PREFIXES['ours']}/x"), client.get(f"{PREFIXES['openai']}/x")
    assert (ours.status_code, ours.headers["retry-after"]) == (429, "7")
    assert ours.json() == {"error": {"code": "rate_limited", "message": "Wait."}}
    assert openai.json()["error"] == {
        "message": "Wait.",
        "type": "rate_limit_error",
        "param": "model",
        "code": "rate_limited",
    }


@pytest.mark.parametrize(
    ("exc", "code", "retryable"),
    [
        (ConversationBusy(), "conversation_busy", True),
        (StoreUnavailable("down"), "storage_unavailable", True),
        (Overloaded(), "overloaded", True),
        (ConversationNotFound("p", "c"), "conversation_not_found", False),
        (ApiError(429, "rate_limited", "Wait."), "rate_limited", True),
        (ApiError(422, "prompt_too_long", "Too long."), "prompt_too_long", False),
        (ApiError(409, "nothing_to_stop", "Nothing."), "nothing_to_stop", False),
        (ApiError(503, "stop_unconfirmed", "Not yet."), "conversation_busy", True),
    ],
)
def test_a_socket_hears_the_code_and_whether_to_retry(
    exc: Exception, code: str, retryable: bool
) -> None:
    refused = refusal_of(exc, "prompt")
    assert (refused.code, refused.retryable, refused.reply_to) == (code, retryable, "prompt")
    assert refused.message and "down" not in refused.message
