"""The OpenAPI document says what the server does: its limits, its key, its errors, its streams.

Built in process with ``create_app`` (no server needed); that the running server keeps
these promises is what the schemathesis run in tests/integration/test_api_fuzz.py checks.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.app import create_app
from server.openapi_dump import default_document
from server.paths import API_PREFIX
from server.schemas import NOT_BLANK_PATTERN
from server.settings import ServerSettings

ERROR_REF = "#/components/schemas/ErrorOut"
OPENAI_ERROR_REF = "#/components/schemas/OpenAIErrorOut"
OPEN_PATHS = {"/healthz", "/readyz", f"{API_PREFIX}/info"}


def document(**settings: Any) -> dict[str, Any]:
    return create_app(ServerSettings(burr_ui_enabled=False, **settings)).openapi()


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in doc["paths"].items()
        for method, operation in item.items()
    ]


def test_the_prompt_schema_carries_the_limits_the_server_enforces() -> None:
    prompt = document(max_prompt_chars=123)["components"]["schemas"]["PromptIn"]["properties"][
        "prompt"
    ]
    assert prompt["type"] == "string"
    assert prompt["minLength"] == 1
    assert prompt["maxLength"] == 123
    assert prompt["pattern"] == NOT_BLANK_PATTERN


@given(st.text(max_size=6) | st.sampled_from(["\x1c", "\x85", "\u3000", "\ufeff", " \t\n"]))
def test_the_prompt_pattern_refuses_exactly_what_is_only_whitespace(text: str) -> None:
    # Schema validators search the pattern anywhere in the string, as re.search does.
    assert (re.search(NOT_BLANK_PATTERN, text) is not None) == bool(text.strip())


def test_without_a_key_nothing_asks_for_one() -> None:
    doc = document()
    assert "securitySchemes" not in doc["components"]
    for method, path, operation in operations(doc):
        assert "security" not in operation, (method, path)
        assert "401" not in operation["responses"], (method, path)


def test_with_a_key_every_protected_operation_declares_it_and_its_401() -> None:
    doc = document(api_key="secret")
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "CHATBOT_API_KEY",
    }
    assert schemes["sessionCookie"]["in"] == "cookie"
    for method, path, operation in operations(doc):
        if path in OPEN_PATHS:
            assert "security" not in operation, (method, path)
            assert "401" not in operation["responses"], (method, path)
        elif path.startswith("/v1/"):  # API clients: the key as a bearer token only
            assert operation["security"] == [{"bearerAuth": []}]
            assert "401" in operation["responses"]
        else:
            assert operation["security"] == [{"bearerAuth": []}, {"sessionCookie": []}]
            unauthorized = operation["responses"]["401"]
            assert unauthorized["headers"]["WWW-Authenticate"]["required"] is True


def test_with_per_user_keys_the_admins_routes_declare_their_403() -> None:
    doc = document(auth="keys")
    assert (
        "chatbot keys create" in doc["components"]["securitySchemes"]["bearerAuth"]["description"]
    )
    forbidden = {path for _, path, op in operations(doc) if "403" in op["responses"]}
    assert forbidden == {"/metrics"}  # Burr's API, the other admins' route, is Burr's to document
    for _, path, operation in operations(doc):
        if path not in OPEN_PATHS:
            assert "401" in operation["responses"], path


def test_every_error_answer_is_documented_in_the_shape_its_clients_read() -> None:
    doc = document()
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    errors = 0
    for method, path, operation in operations(doc):
        # /v1 answers in OpenAI's shape, everything else in the API's own.
        shape = OPENAI_ERROR_REF if path.startswith("/v1/") else ERROR_REF
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                errors += 1
                assert response["content"] == {"application/json": {"schema": {"$ref": shape}}}, (
                    method,
                    path,
                    status,
                )
        if method == "POST":
            assert "413" in operation["responses"], path  # the body limit applies to every POST
    assert errors > 40


def test_json_body_routes_document_invalid_json_and_other_content_types() -> None:
    for method, path, operation in operations(document()):
        if "requestBody" in operation:
            # OpenAI answers an invalid body with 400, never 422.
            invalid = "400" if path.startswith("/v1/") else "422"
            assert {"400", "415", invalid} <= set(operation["responses"]), (method, path)
            if path.startswith("/v1/"):
                assert "422" not in operation["responses"], (method, path)


@pytest.mark.parametrize(
    ("path", "method", "frame", "frame_types", "ids"),
    [
        (
            f"{API_PREFIX}/response/{{project_id}}/{{app_id}}",
            "post",
            "ChatFrame",
            {"chat_history", "delta", "end", "error"},
            False,
        ),
        (
            f"{API_PREFIX}/stream/{{project_id}}/{{app_id}}",
            "get",
            "ResumeFrame",
            {"chat_history", "prompt", "step", "delta", "end", "error"},
            True,
        ),
        (
            "/api/chat",
            "post",
            "UIMessagePartOut",
            {
                "start",
                "data-route",
                "text-start",
                "text-delta",
                "text-end",
                "message-metadata",
                "error",
                "finish",
                "abort",
            },
            False,
        ),
    ],
)
def test_each_stream_documents_the_frame_of_every_event(
    path: str, method: str, frame: str, frame_types: set[str], ids: bool
) -> None:
    doc = document()
    event = doc["paths"][path][method]["responses"]["200"]["content"]["text/event-stream"]
    data = event["schema"]["properties"]["data"]
    if "anyOf" in data:  # a stream that ends with a sentinel: [DONE]
        sentinel, data = data["anyOf"]
        assert sentinel == {"const": "[DONE]"}
    assert data["contentMediaType"] == "application/json"
    assert data["contentSchema"] == {"$ref": f"#/components/schemas/{frame}"}
    assert ("id" in event["schema"]["properties"]) is ids
    union = doc["components"]["schemas"][frame]
    assert set(union["discriminator"]["mapping"]) == frame_types


def test_a_streamed_completion_is_chunks_or_an_error_then_done() -> None:
    answer = document()["paths"]["/v1/chat/completions"]["post"]["responses"]["200"]
    assert answer["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ChatCompletionOut"
    }
    sentinel, data = answer["content"]["text/event-stream"]["schema"]["properties"]["data"]["anyOf"]
    assert sentinel == {"const": "[DONE]"}
    assert data["contentSchema"] == {
        "anyOf": [
            {"$ref": "#/components/schemas/ChatCompletionChunkOut"},
            {"$ref": OPENAI_ERROR_REF},
        ]
    }
    assert answer["headers"]["X-Conversation-Id"]["required"] is True


def test_the_dumped_document_is_the_default_servers_whatever_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHATBOT_MAX_PROMPT_CHARS", "7")
    monkeypatch.setenv("CHATBOT_API_KEY", "from-the-environment")
    doc = default_document()
    assert doc["components"]["schemas"]["PromptIn"]["properties"]["prompt"]["maxLength"] == (
        ServerSettings.model_fields["max_prompt_chars"].default
    )
    assert "securitySchemes" not in doc["components"]


def test_a_prompt_over_its_max_length_is_documented_as_a_422_not_a_413() -> None:
    doc = document()
    for route in ("response", "reply", "edit"):
        responses = doc["paths"][f"{API_PREFIX}/{route}/{{project_id}}/{{app_id}}"]["post"][
            "responses"
        ]
        assert "prompt_too_long" in responses["422"]["description"], route
        assert "prompt_too_long" not in responses["413"]["description"], route


@pytest.mark.parametrize(
    ("path", "method", "not_there", "conflict"),
    [
        ("/branches/{project_id}/{app_id}", "get", {"item_not_found"}, set()),
        (
            "/branches/{project_id}/{app_id}",
            "post",
            {"item_not_found", "version_not_found", "branch_not_found"},
            {"conversation_busy"},
        ),
        ("/edit/{project_id}/{app_id}", "post", {"item_not_found"}, {"item_not_branchable"}),
        ("/regenerate/{project_id}/{app_id}", "post", {"item_not_found"}, {"item_not_branchable"}),
    ],
)
def test_what_a_conversation_does_not_have_is_documented_as_404_or_409(
    path: str, method: str, not_there: set[str], conflict: set[str]
) -> None:
    responses = document()["paths"][API_PREFIX + path][method]["responses"]
    for code in not_there:
        assert code in responses["404"]["description"], (path, code)
    for code in conflict:
        assert code in responses["409"]["description"], (path, code)
    assert "out of range" not in responses.get("422", {}).get("description", "")


def test_an_ai_sdk_message_has_parts_and_a_user_message_has_text_and_no_file() -> None:
    message = document()["components"]["schemas"]["UIMessageIn"]
    assert message["properties"]["parts"]["minItems"] == 1
    assert message["if"] == {"properties": {"role": {"const": "user"}}, "required": ["role"]}
    parts = message["then"]["properties"]["parts"]
    text = parts["contains"]["properties"]
    assert text["type"] == {"const": "text"} and text["text"]["pattern"] == NOT_BLANK_PATTERN
    assert parts["items"] == {
        "not": {"properties": {"type": {"const": "file"}}, "required": ["type"]}
    }


def test_an_openai_user_message_has_content_that_is_not_blank() -> None:
    message = document()["components"]["schemas"]["MessageIn"]
    assert message["if"] == {"properties": {"role": {"const": "user"}}, "required": ["role"]}
    assert message["then"]["required"] == ["content"]
    text, parts = message["then"]["properties"]["content"]["anyOf"]
    assert text == {"type": "string", "pattern": NOT_BLANK_PATTERN}
    assert parts["type"] == "array" and "contains" in parts
    assert {"type": "null"} not in message["then"]["properties"]["content"]["anyOf"]


def test_indices_are_json_integers() -> None:
    schemas = document()["components"]["schemas"]
    for model, field in [
        ("EditIn", "index"),
        ("RegenerateIn", "index"),
        ("SwitchToVersionIn", "index"),
        ("SwitchToVersionIn", "version"),
    ]:
        assert schemas[model]["properties"][field]["type"] == "integer", (model, field)
        assert schemas[model]["properties"][field]["minimum"] == 0, (model, field)
