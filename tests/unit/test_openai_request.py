"""A chat-completions body as a turn: what is honoured, what is refused and named."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from server.errors import ApiError
from server.openai_errors import _param
from server.openai_request import named_conversation, turn_request
from server.openai_schemas import ChatCompletionIn

USER = {"role": "user", "content": "Write a poem"}


def body(**fields: Any) -> ChatCompletionIn:
    return ChatCompletionIn.model_validate({"model": "burr-chatbot", "messages": [USER], **fields})


def refused(**fields: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        turn_request(body(**fields), max_prompt_chars=1000)
    return caught.value


def test_the_last_user_message_is_the_prompt_and_the_rest_are_earlier_items() -> None:
    request = turn_request(
        body(
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": [{"type": "text", "text": "Hello."}]},
                {"role": "developer", "content": "Use British spelling."},
                {"role": "user", "content": [{"type": "text", "text": "A poem"}]},
            ]
        ),
        max_prompt_chars=1000,
    )
    assert request.prompt == "A poem"
    assert request.earlier == (
        {"role": "user", "content": "Hi", "type": "text"},
        {"role": "assistant", "content": "Hello.", "type": "text"},
    )
    assert request.options.instructions == "Be brief.\n\nUse British spelling."
    assert request.stream is False and request.include_usage is False


def test_no_system_message_means_no_instructions_not_the_stored_ones() -> None:
    assert turn_request(body(), max_prompt_chars=1000).options.instructions == ""


def test_sampling_options_are_forwarded_under_the_clients_names() -> None:
    request = turn_request(
        body(temperature=0.2, top_p=1, max_tokens=50, stop=["\n\n"], seed=7, user="u1"),
        max_prompt_chars=1000,
    )
    assert request.options.sampling == {
        "temperature": 0.2,
        "top_p": 1.0,
        "max_tokens": 50,
        "stop": ["\n\n"],
    }
    both = turn_request(body(max_tokens=50, max_completion_tokens=20), max_prompt_chars=1000)
    assert both.options.sampling == {"max_completion_tokens": 20}


def test_include_usage_needs_stream() -> None:
    request = turn_request(
        body(stream=True, stream_options={"include_usage": True}), max_prompt_chars=1000
    )
    assert request.stream and request.include_usage
    assert refused(stream_options={"include_usage": True}).param == "stream_options"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": 2}, "n"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        ({"tool_choice": "auto"}, "tool_choice"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"logprobs": True}, "logprobs"),
        (
            {"messages": [{"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
            ]}]},
            "messages[0].content[1].type",
        ),
        ({"messages": [USER, {"role": "tool", "content": "42", "tool_call_id": "t"}, USER]},
         "messages[1].role"),
        ({"messages": [{"role": "assistant", "tool_calls": [{"id": "t"}]}, USER]},
         "messages[0].tool_calls"),
    ],
)
def test_what_this_model_cannot_do_is_a_400_naming_the_field(fields: dict, param: str) -> None:
    error = refused(**fields)
    assert (error.status, error.param) == (400, param)


@pytest.mark.parametrize(
    "fields",
    [
        {"n": 1},
        {"tool_choice": "none"},
        {"response_format": {"type": "text"}},
        {"modalities": ["text"]},
        {"logprobs": False},
        {"presence_penalty": 0.5, "frequency_penalty": -1, "seed": 1, "user": "me"},
        {"parallel_tool_calls": False, "store": False, "service_tier": "auto"},
    ],
)
def test_fields_that_do_not_change_a_plain_reply_are_accepted(fields: dict) -> None:
    assert turn_request(body(**fields), max_prompt_chars=1000).prompt == "Write a poem"


@pytest.mark.parametrize(
    ("messages", "param", "status"),
    [
        ([{"role": "assistant", "content": "Hi"}], "messages", 400),
        ([{"role": "system", "content": "Be brief."}], "messages", 400),
        ([{"role": "user", "content": "x" * 1001}], "messages[0].content", 413),
    ],
)
def test_the_prompt_must_be_a_non_empty_last_user_message(
    messages: list, param: str, status: int
) -> None:
    error = refused(messages=messages)
    assert (error.status, error.param) == (status, param)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"messages": []}, "messages"),
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": "0.5"}, "temperature"),
        ({"top_p": -0.1}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
    ],
)
def test_invalid_values_are_named_as_openai_names_params(fields: dict, param: str) -> None:
    with pytest.raises(ValidationError) as caught:
        body(**fields)
    assert _param(("body", *caught.value.errors()[0]["loc"])) == param


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": "   "}],
        [{"role": "user"}],
        [{"role": "user", "content": None}, {"role": "user", "content": "Hi"}],
        [{"role": "user", "content": []}],
        [{"role": "user", "content": [{"type": "text", "text": " "}]}],
    ],
)
def test_a_user_message_without_text_is_refused_as_an_empty_prompt(messages: list) -> None:
    with pytest.raises(ValidationError) as caught:
        body(messages=messages)
    first = caught.value.errors()[0]
    assert first["type"] == "empty_prompt"
    assert _param(("body", *first["loc"])) == "messages[0].content"


def test_parts_this_model_cannot_read_are_named_rather_than_called_empty() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:,"}}
    error = refused(messages=[{"role": "user", "content": [image]}])
    assert (error.code, error.param) == ("unsupported_value", "messages[0].content[0].type")


def test_the_named_conversation_comes_from_headers_then_the_body() -> None:
    request = body(metadata={"conversation_id": "from-body"})
    assert named_conversation("ours", "webui-chat", request) == "ours"
    assert named_conversation(None, "webui-chat", request) == "webui-chat"
    assert named_conversation(None, None, request) == "from-body"
    assert named_conversation(None, None, body()) is None


def test_an_unusable_id_of_ours_is_refused_but_open_webuis_is_only_a_hint() -> None:
    with pytest.raises(ApiError) as caught:
        named_conversation("../etc", None, body())
    assert caught.value.param == "X-Conversation-Id"
    assert named_conversation(None, "local:temporary chat", body()) is None
