"""The JSON shapes of the OpenAI-compatible API (``/v1``), as OpenAI defines them.

Requests accept what OpenAI's clients send: fields this server does not honour are
either accepted and ignored (they do not change what a reply means) or refused by
``server.openai_request`` with a 400 naming them, never dropped in silence. The schema
documents what is accepted: refused values are outside it (``n`` at most 1, text parts
only...), and the tool and audio fields, refused whatever their value, are left out of it
while the model still reads them, so that the 400 can name them. Responses
carry one field OpenAI's clients ignore, ``chatbot``: the conversation the request went
to and the mode the graph chose.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema, WithJsonSchema
from pydantic_core import PydanticCustomError

from server.deps import ID_PATTERN
from server.schemas import AS_JSON_INTEGER, NOT_BLANK, NOT_BLANK_PATTERN

FinishReason = Literal["stop", "length", "content_filter"]


def _accepted(low: int, high: int) -> WithJsonSchema:
    """The documented range of a field validated wider, so that a value out of it gets
    the 400 that names what is unsupported rather than a plain range error."""
    return WithJsonSchema(
        {"anyOf": [{"type": "integer", "minimum": low, "maximum": high}, {"type": "null"}]}
    )


# --- requests -------------------------------------------------------------------------
class ContentPartIn(BaseModel):
    """One part of a message's content; only text parts are understood."""

    # Documented: each kind of part needs its own field (server.openai_request refuses
    # one without it with a 400 naming it).
    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "oneOf": [
                {
                    "properties": {"type": {"const": kind}, kind: {"type": "string"}},
                    "required": [kind],
                }
                for kind in ("text", "refusal")
            ]
        },
    )

    type: StrictStr = Field(json_schema_extra={"enum": ["text", "refusal"]})
    text: StrictStr | None = None
    refusal: StrictStr | None = None


# A user message's text: a string, or parts, of which one has text that is not blank.
_USER_CONTENT = {
    "anyOf": [
        {"type": "string", "pattern": NOT_BLANK_PATTERN},
        {
            "type": "array",
            "contains": {
                "anyOf": [
                    {
                        "properties": {
                            "type": {"const": kind},
                            kind: {"type": "string", "pattern": NOT_BLANK_PATTERN},
                        },
                        "required": ["type", kind],
                    }
                    for kind in ("text", "refusal")
                ]
            },
        },
    ]
}


class MessageIn(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={  # the validator below, documented
            "if": {"properties": {"role": {"const": "user"}}, "required": ["role"]},
            "then": {"properties": {"content": _USER_CONTENT}, "required": ["content"]},
        },
    )

    role: Literal["system", "developer", "user", "assistant", "tool", "function"] = Field(
        json_schema_extra={"enum": ["system", "developer", "user", "assistant"]}
    )
    content: StrictStr | list[ContentPartIn] | None = Field(default=None, validate_default=True)
    name: StrictStr | None = None
    # Read so that the 400 can name them: this model has no tools and no audio.
    tool_calls: SkipJsonSchema[list[Any] | None] = None
    function_call: SkipJsonSchema[Any] = None
    audio: SkipJsonSchema[Any] = None

    @field_validator("content")
    @classmethod
    def _user_content_has_text(cls, content: Any, info: ValidationInfo) -> Any:
        """A user message says something: text that is not only whitespace. (Parts this
        model does not read, or that lack their text, get their own 400 naming them.)"""
        if info.data.get("role") != "user" or not _only_text_parts(content):
            return content
        if content is None:
            texts: list[str] = []
        else:
            texts = [content] if isinstance(content, str) else _part_texts(content)
        if not any(NOT_BLANK.search(text) for text in texts):
            raise PydanticCustomError(
                "empty_prompt", "A user message needs text that is not only whitespace."
            )
        return content


def _only_text_parts(content: Any) -> bool:
    if content is None or isinstance(content, str):
        return True
    readable = ("text", "refusal")
    return all(part.type in readable and _part_text(part) is not None for part in content)


def _part_text(part: ContentPartIn) -> str | None:
    return part.text if part.type == "text" else part.refusal


def _part_texts(content: list[ContentPartIn]) -> list[str]:
    return [text for part in content if (text := _part_text(part)) is not None]


class StreamOptionsIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: StrictBool | None = None


class ResponseFormatIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: StrictStr = Field(json_schema_extra={"enum": ["text"]})


class ChatCompletionIn(BaseModel):
    """``POST /v1/chat/completions``; unknown fields are accepted and ignored."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            # stream_options only with stream: true (a 400 otherwise, as at OpenAI).
            "if": {
                "properties": {"stream_options": {"type": "object"}},
                "required": ["stream_options"],
            },
            "then": {"properties": {"stream": {"const": True}}, "required": ["stream"]},
            "examples": [
                {
                    "model": "burr-chatbot",
                    "messages": [{"role": "user", "content": "Write a poem about rivers"}],
                    "stream": True,
                }
            ],
        },
    )

    model: StrictStr = Field(
        description="The listed model (any other is a 404 model_not_found).",
        json_schema_extra={"enum": ["burr-chatbot"]},
    )
    messages: list[MessageIn] = Field(
        min_length=1,
        description="The conversation; the last message is the user's prompt. System "
        "messages become the conversation's instructions for the reply model.",
    )
    stream: StrictBool | None = False
    stream_options: StreamOptionsIn | None = None
    # Forwarded to the upstream reply call.
    temperature: StrictFloat | None = Field(default=None, ge=0, le=2)
    top_p: StrictFloat | None = Field(default=None, ge=0, le=1)
    max_tokens: Annotated[StrictInt, Field(ge=1), AS_JSON_INTEGER] | None = None
    max_completion_tokens: Annotated[StrictInt, Field(ge=1), AS_JSON_INTEGER] | None = None
    stop: StrictStr | Annotated[list[StrictStr], Field(max_length=4)] | None = None
    # Refused unless they ask for what a plain reply is anyway.
    n: Annotated[
        Annotated[StrictInt, Field(ge=1, le=128), AS_JSON_INTEGER] | None, _accepted(1, 1)
    ] = None
    response_format: ResponseFormatIn | None = None
    modalities: list[Annotated[StrictStr, Field(json_schema_extra={"enum": ["text"]})]] | None = (
        None
    )
    logprobs: Annotated[StrictBool | None, WithJsonSchema({"enum": [False, None]})] = None
    top_logprobs: Annotated[
        Annotated[StrictInt, Field(ge=0, le=20), AS_JSON_INTEGER] | None, _accepted(0, 0)
    ] = None
    # Refused whatever their value (none but "none" for the choices): no tools, no audio.
    tools: SkipJsonSchema[list[Any] | None] = None
    tool_choice: SkipJsonSchema[Any] = None
    functions: SkipJsonSchema[list[Any] | None] = None
    function_call: SkipJsonSchema[Any] = None
    audio: SkipJsonSchema[Any] = None
    # Accepted and ignored: they tune sampling or bookkeeping, not what a reply is.
    presence_penalty: StrictFloat | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: StrictFloat | None = Field(default=None, ge=-2, le=2)
    seed: Annotated[StrictInt, AS_JSON_INTEGER] | None = None
    user: StrictStr | None = None
    metadata: dict[str, StrictStr] | None = Field(
        default=None,
        json_schema_extra={
            "properties": {"conversation_id": {"type": "string", "pattern": ID_PATTERN}}
        },
        description="metadata.conversation_id names the conversation to continue "
        "(after the X-Conversation-Id and X-OpenWebUI-Chat-Id headers).",
    )


# --- responses ------------------------------------------------------------------------
class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelListOut(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatbotOut(BaseModel):
    """The extension OpenAI's clients ignore: where the request went and how it was routed."""

    conversation_id: str = Field(description="The conversation this request continued.")
    mode: str = Field(description="The response action the graph chose, e.g. generate_poem.")


class AssistantMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None


class ChoiceOut(BaseModel):
    index: int = 0
    message: AssistantMessageOut
    logprobs: None = None
    finish_reason: FinishReason


class ChatCompletionOut(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChoiceOut]
    usage: UsageOut
    chatbot: ChatbotOut


class DeltaOut(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoiceOut(BaseModel):
    index: int = 0
    delta: DeltaOut
    logprobs: None = None
    finish_reason: FinishReason | None = None


class ChatCompletionChunkOut(BaseModel):
    """One ``data:`` event of a streamed completion (the stream ends with ``data: [DONE]``).

    ``choices`` is empty only on the usage chunk (``stream_options.include_usage``), the
    last before ``[DONE]``; with that option every other chunk has ``"usage": null``.
    """

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoiceOut]
    usage: UsageOut | None = None
    chatbot: ChatbotOut | None = Field(
        default=None, description="On the first chunk (the role) and the finishing one."
    )


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str = Field(examples=["invalid_request_error"])
    param: str | None = Field(description="The request field at fault, if one is.")
    code: str | None = Field(examples=["model_not_found"])


class OpenAIErrorOut(BaseModel):
    """Every error on ``/v1``, including one sent mid-stream as a ``data:`` event."""

    error: OpenAIErrorDetail
