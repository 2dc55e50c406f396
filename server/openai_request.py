"""A chat-completions request as a turn: prompt, earlier messages, instructions, sampling.

Also where the request's fields are judged: what this server cannot do (several choices,
tools, structured output, audio, images) is a 400 naming the field, never ignored in
silence; what only tunes sampling or bookkeeping is accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from chatbot.domain.chat_items import ChatItem, assistant_item, user_item
from chatbot.turns.options import TurnOptions
from server.deps import ID_PATTERN
from server.errors import ApiError
from server.openai_schemas import ChatCompletionIn, ContentPartIn, MessageIn

_ID = re.compile(ID_PATTERN)
_INSTRUCTION_ROLES = frozenset({"system", "developer"})
# Content parts this server reads as text; any other part type is refused.
_TEXT_PARTS = frozenset({"text", "refusal"})


@dataclass(frozen=True, slots=True)
class TurnRequest:
    prompt: str
    # The messages before the prompt, as chat items (what a new conversation starts from).
    earlier: tuple[ChatItem, ...]
    options: TurnOptions
    stream: bool
    include_usage: bool


def unsupported(param: str, message: str, code: str = "unsupported_parameter") -> ApiError:
    return ApiError(400, code, message, param=param)


def _check_supported(body: ChatCompletionIn) -> None:
    if body.n is not None and body.n != 1:
        raise unsupported(
            "n", "Only one choice per request is supported (n=1).", "unsupported_value"
        )
    if body.tools:
        raise unsupported("tools", "This model has no tools: 'tools' is not supported.")
    if body.functions:
        raise unsupported("functions", "This model has no tools: 'functions' is not supported.")
    if body.tool_choice not in (None, "none"):
        raise unsupported("tool_choice", "This model has no tools: only 'none' is supported.")
    if body.function_call not in (None, "none"):
        raise unsupported("function_call", "This model has no tools: only 'none' is supported.")
    if body.response_format is not None and body.response_format.type != "text":
        raise unsupported(
            "response_format",
            f"Only text replies are supported, not response_format {body.response_format.type!r}.",
            "unsupported_value",
        )
    if body.audio is not None:
        raise unsupported("audio", "Audio output is not supported.")
    if body.modalities is not None and set(body.modalities) - {"text"}:
        raise unsupported("modalities", "Only the text modality is supported.", "unsupported_value")
    if body.logprobs:
        raise unsupported("logprobs", "Log probabilities are not supported.", "unsupported_value")
    if body.top_logprobs:
        raise unsupported("top_logprobs", "Log probabilities are not supported.")
    if body.stream_options is not None and not body.stream:
        raise ApiError(
            400,
            "invalid_value",
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
        )


def _text(message: MessageIn, index: int) -> str:
    """A message's content as text; image, audio and file parts are refused by name."""
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(_part_text(part, index, j) for j, part in enumerate(content))


def _part_text(part: ContentPartIn, index: int, position: int) -> str:
    if part.type not in _TEXT_PARTS:
        raise unsupported(
            f"messages[{index}].content[{position}].type",
            f"Only text content is supported, not {part.type!r} parts.",
            "unsupported_value",
        )
    text = part.text if part.type == "text" else part.refusal
    if text is None:
        raise ApiError(
            400,
            "missing_required_parameter",
            f"A {part.type!r} content part needs its {part.type!r} field.",
            param=f"messages[{index}].content[{position}].{part.type}",
        )
    return text


def _check_message(message: MessageIn, index: int) -> None:
    if message.role in ("tool", "function"):
        raise unsupported(
            f"messages[{index}].role",
            f"This model has no tools: {message.role!r} messages are not supported.",
            "unsupported_value",
        )
    if message.tool_calls or message.function_call is not None:
        field = "tool_calls" if message.tool_calls else "function_call"
        raise unsupported(
            f"messages[{index}].{field}", "This model has no tools: tool calls are not supported."
        )
    if message.audio is not None:
        raise unsupported(f"messages[{index}].audio", "Audio messages are not supported.")


def _sampling(body: ChatCompletionIn) -> dict[str, Any]:
    """The options the upstream reply call gets, under the names the client used."""
    fields = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "stop")
    sampling = {name: getattr(body, name) for name in fields if getattr(body, name) is not None}
    if "max_tokens" in sampling and "max_completion_tokens" in sampling:
        del sampling["max_tokens"]  # the newer name wins, as it does at OpenAI
    return sampling


def turn_request(body: ChatCompletionIn, max_prompt_chars: int) -> TurnRequest:
    """The turn a valid request asks for, or the 4xx that says what is wrong with it."""
    _check_supported(body)
    instructions: list[str] = []
    dialogue: list[tuple[int, str, str]] = []  # (index, role, text)
    for index, message in enumerate(body.messages):
        _check_message(message, index)
        text = _text(message, index)
        if message.role in _INSTRUCTION_ROLES:
            if text.strip():
                instructions.append(text)
        else:
            dialogue.append((index, message.role, text))
    if not dialogue or dialogue[-1][1] != "user":
        raise ApiError(
            400,
            "invalid_value",
            "The last message (after any system messages) must be the user's prompt.",
            param="messages",
        )
    # Not blank: a user message's text is checked where it is read (MessageIn).
    index, _, prompt = dialogue[-1]
    if len(prompt) > max_prompt_chars:
        raise ApiError(
            413,
            "prompt_too_long",
            f"The prompt has {len(prompt)} characters; the limit is {max_prompt_chars}.",
            param=f"messages[{index}].content",
        )
    return TurnRequest(
        prompt=prompt,
        earlier=tuple(_item(role, text) for _, role, text in dialogue[:-1]),
        options=TurnOptions(instructions="\n\n".join(instructions), sampling=_sampling(body)),
        stream=bool(body.stream),
        include_usage=bool(
            body.stream and body.stream_options and body.stream_options.include_usage
        ),
    )


def _item(role: str, text: str) -> ChatItem:
    return user_item(text) if role == "user" else assistant_item(text)


def named_conversation(
    header: str | None, open_webui_header: str | None, body: ChatCompletionIn
) -> str | None:
    """The conversation the request names: our header, Open WebUI's, then the body.

    An id of ours that is not a valid app id is a 400; Open WebUI's chat id is only a
    hint (its temporary chats have ids that are not ours to store), so an unusable one
    is passed over and the conversation is found from the messages instead.
    """
    ours = _valid(header, "X-Conversation-Id") if header is not None else None
    # Checked even when a header wins: an invalid id is refused wherever it is sent.
    named = (body.metadata or {}).get("conversation_id")
    in_body = _valid(named, "metadata.conversation_id") if named is not None else None
    if ours is not None:
        return ours
    if open_webui_header is not None and _ID.fullmatch(open_webui_header):
        return open_webui_header
    return in_body


def _valid(value: str, param: str) -> str:
    if not _ID.fullmatch(value):
        raise ApiError(
            400,
            "invalid_conversation_id",
            f"{param} must be 1-64 of A-Z a-z 0-9 _ -, not {value[:80]!r}.",
            param=param,
        )
    return value
