"""Request and response bodies of the HTTP API: every JSON shape the server sends lives here.

Routes return these models and let FastAPI serialise them; the streaming adapters build
the same models for their once-per-turn frames, so a shape is defined exactly once.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from typing import Annotated, Final, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    StrictInt,
    StrictStr,
    model_validator,
)
from pydantic_core import PydanticCustomError

from chatbot.domain.errors import TurnError
from chatbot.domain.events import TurnCompleted, TurnOutcome
from server.deps import ID_PATTERN


def _whitespace_class() -> str:
    """A regex class of exactly the characters ``str.isspace`` counts, spelled out.

    Spelled out rather than written ``\\s`` because regex engines disagree on what ``\\s``
    covers (Python's, ECMAScript's and Rust's differ on U+001C..U+001F, U+0085, U+FEFF);
    a client validating against the document must refuse exactly what the server refuses.
    """
    spaces = [c for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    ranges: list[tuple[int, int]] = []
    for c in spaces:
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1] = (ranges[-1][0], c)
        else:
            ranges.append((c, c))

    def char(c: int) -> str:
        return f"\\u{c:04x}"

    return "".join(char(a) if a == b else f"{char(a)}-{char(b)}" for a, b in ranges)


# A prompt needs one character that is not whitespace (the server strips nothing, but a
# prompt of only spaces says nothing and is refused with 422 ``empty_prompt``).
NOT_BLANK_PATTERN = f"[^{_whitespace_class()}]"
NOT_BLANK = re.compile(NOT_BLANK_PATTERN)


def _integral(value: object) -> object:
    """A number with no fraction is an integer to JSON Schema (``232.0`` is ``232``)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# After an integer's own constraints: an integer as JSON counts them, strict (no strings,
# no booleans) but 232.0 is 232. (Put before them, it would hide them from the schema.)
AS_JSON_INTEGER = BeforeValidator(_integral)
# A count or an index as JSON Schema's ``integer``: 3 and 3.0, never "3" or true.
JsonIndex = Annotated[StrictInt, Field(ge=0), AS_JSON_INTEGER]


class PromptIn(BaseModel):
    # Strict: a number or a list is a client bug to report, not a string to coerce.
    # The constraints are documented here and enforced by the routes, which answer them
    # with codes of their own (``empty_prompt``, ``prompt_too_long``, both 422); the
    # document's ``maxLength`` is the limit of the running server (CHATBOT_MAX_PROMPT_CHARS).
    prompt: StrictStr = Field(
        description="The user's message: at least one character that is not whitespace, "
        "at most CHATBOT_MAX_PROMPT_CHARS characters (422 prompt_too_long above that).",
        examples=["Write a poem about rivers"],
        json_schema_extra={"minLength": 1, "pattern": NOT_BLANK_PATTERN},
    )


class BranchMarkOut(BaseModel):
    """An item that has several versions (an edited prompt, a regenerated reply)."""

    version: int = Field(ge=0, description="The version shown, from 0 (the oldest).")
    versions: int = Field(ge=2, description="How many versions the item has.")
    app_id: str = Field(
        description="The Burr app id of the branch that wrote the version shown (its run "
        "in Burr's UI)."
    )


class ChatItemOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["user", "assistant"]
    content: str
    type: Literal["text", "code", "error", "image"]
    interrupted: bool | None = Field(
        default=None,
        description="Present and true on a reply cut short (disconnect, stop, failure).",
    )
    branch: BranchMarkOut | None = Field(
        default=None,
        description="Only in the history (GET /history, POST /branches), and only on an "
        "item with two versions or more.",
    )


# --- branches: edit a prompt, regenerate a reply, switch between versions -----------------
# A Burr app id of a branch: its conversation's id, then ``~n`` for the n-th fork.
BRANCH_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}(~[0-9]{1,9})?$"
_INDEX_DESCRIPTION = "The 0-based index of the item in GET /history."


class RegenerateIn(BaseModel):
    index: JsonIndex = Field(
        description=f"{_INDEX_DESCRIPTION} It must be a reply (an assistant item)."
    )


class EditIn(BaseModel):
    index: JsonIndex = Field(description=f"{_INDEX_DESCRIPTION} It must be a prompt (a user item).")
    # As PromptIn's: maxLength is the running server's CHATBOT_MAX_PROMPT_CHARS.
    prompt: StrictStr = Field(
        description="The new prompt: at least one character that is not whitespace, at "
        "most CHATBOT_MAX_PROMPT_CHARS characters (422 prompt_too_long above that).",
        json_schema_extra={"minLength": 1, "pattern": NOT_BLANK_PATTERN},
    )


class SwitchToVersionIn(BaseModel):
    """Show version ``version`` of item ``index`` (as GET /branches numbers them)."""

    model_config = ConfigDict(extra="forbid")

    index: JsonIndex = Field(description=_INDEX_DESCRIPTION)
    version: JsonIndex = Field(description="The version, from 0 (the oldest).")


class SwitchToBranchIn(BaseModel):
    """Show the branch with this Burr app id (``branch.app_id`` of a history item)."""

    model_config = ConfigDict(extra="forbid")

    app_id: StrictStr = Field(
        pattern=BRANCH_ID_PATTERN,
        description="A branch of this conversation: its id, or its id, ~ and a number.",
    )


SwitchBranchIn = SwitchToVersionIn | SwitchToBranchIn


class VersionOut(BaseModel):
    version: int = Field(ge=0)
    app_id: str = Field(description="The Burr app id of the branch that wrote it.")
    created_at: dt.datetime | None = Field(description="When that branch was made.")
    preview: str = Field(description="The item's first 80 characters.")


class VersionsOut(BaseModel):
    """The versions of one item, oldest first, and the one the conversation shows."""

    index: int = Field(ge=0)
    shown: int = Field(ge=0, description="The version shown.")
    versions: list[VersionOut] = Field(min_length=1)


class TimingsOut(BaseModel):
    first_delta_ms: float | None = Field(
        description="From the request's arrival to the first text; null when there was none."
    )
    total_ms: float


class TurnEndOut(BaseModel):
    """A completed turn: the reply, the mode the graph chose, and how long it took."""

    item: ChatItemOut
    mode: str = Field(description="The response action the graph chose, e.g. generate_poem.")
    timings: TimingsOut

    @classmethod
    def of(cls, outcome: TurnCompleted) -> TurnEndOut:
        timings = outcome.timings
        return cls(
            item=ChatItemOut(**outcome.item),
            mode=outcome.mode,
            timings=TimingsOut(first_delta_ms=timings.first_delta_ms, total_ms=timings.total_ms),
        )


class TurnErrorOut(BaseModel):
    """Why a turn did not complete."""

    code: str = Field(description="Stable, for programs: e.g. upstream_timeout.")
    message: str = Field(description="A sentence for people.")
    retryable: bool = Field(description="Whether sending the same prompt again may work.")

    @classmethod
    def of(cls, error: TurnError) -> TurnErrorOut:
        return cls(code=error.code, message=error.message, retryable=error.retryable)


# --- the frames of POST /response, as Server-Sent Events (`data: <frame>`) ---------------
# The first frame's type: Burr's demo page reads the history under this name.
CHAT_HISTORY: Final = "chat_history"


class ChatHistoryFrame(BaseModel):
    type: Literal[CHAT_HISTORY]  # type: ignore[valid-type]  # a Final str is its literal
    value: list[ChatItemOut]


class DeltaFrame(BaseModel):
    type: Literal["delta"]
    value: str


class EndFrame(BaseModel):
    type: Literal["end"]
    value: TurnEndOut


class ErrorFrame(BaseModel):
    type: Literal["error"]
    value: TurnErrorOut


class ChatFrame(
    RootModel[
        Annotated[
            ChatHistoryFrame | DeltaFrame | EndFrame | ErrorFrame, Field(discriminator="type")
        ]
    ]
):
    """One frame of ``POST /response``: the JSON after one ``data: ``.

    In order: ``chat_history`` (the history before this turn), ``delta``s as the text
    arrives, then one ``end`` or one ``error``.
    """


# --- the extra frames of GET /stream, which a reattaching reader needs --------------------
class PromptFrame(BaseModel):
    """The running turn's prompt (the history frame is the history before it)."""

    type: Literal["prompt"]
    value: str


class StepFrame(BaseModel):
    """The response action that answers, once the graph has chosen it."""

    type: Literal["step"]
    value: str


class ResumeFrame(
    RootModel[
        Annotated[
            ChatHistoryFrame | PromptFrame | StepFrame | DeltaFrame | EndFrame | ErrorFrame,
            Field(discriminator="type"),
        ]
    ]
):
    """One frame of ``GET /stream``: ``chat_history``, ``prompt``, ``step`` (once chosen),
    the ``delta``s, then ``end`` or ``error``; all but the history carry an SSE ``id:``."""


# --- the WebSocket channel: what a client sends, and the answer to a message refused ------
class SocketPromptIn(BaseModel):
    type: Literal["prompt"]
    prompt: StrictStr = Field(description="The user's message.")


class SocketStopIn(BaseModel):
    """Stop the reply being written in the socket's conversation (as ``POST /stop``)."""

    type: Literal["stop"]


class SocketAuthIn(BaseModel):
    """The API key, for clients that cannot set a header (browsers); the first message."""

    type: Literal["auth"]
    key: StrictStr


SocketMessageIn = Annotated[
    SocketPromptIn | SocketStopIn | SocketAuthIn, Field(discriminator="type")
]


class SocketErrorFrame(BaseModel):
    """A client message the server did not act on. Unlike a turn's own ``error`` frame it
    ends nothing: a reply that is streaming goes on to its ``end``."""

    type: Literal["error"] = "error"
    value: TurnErrorOut
    reply_to: str | None = Field(
        description="The type of the message refused (prompt, stop, auth); "
        "null when it could not be read."
    )


class StoppedOut(BaseModel):
    """What ``POST /stop`` stopped: the reply as kept (marked interrupted), if it had text."""

    app_id: str
    mode: str | None = Field(description="The response action that was writing, if chosen.")
    item: ChatItemOut | None

    @classmethod
    def of(cls, app_id: str, outcome: TurnOutcome) -> StoppedOut:
        partial = getattr(outcome, "partial", None)
        return cls(
            app_id=app_id,
            mode=outcome.mode,
            item=ChatItemOut(**partial) if partial is not None else None,
        )


class ConversationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    app_id: str
    title: str
    turns: int
    created_at: dt.datetime
    updated_at: dt.datetime


class ConversationPage(BaseModel):
    items: list[ConversationOut]
    total: int
    limit: int
    offset: int


class SignedOut(BaseModel):
    # Where the browser goes next, to end its session at the OpenID provider too.
    logout_url: str | None


class UserOut(BaseModel):
    id: str
    admin: bool


class InfoOut(BaseModel):
    project_id: str
    burr_ui_url: str | None
    burr_app_url_template: str | None
    auth_required: bool
    # Who the request's key or session belongs to (null: none presented, or not valid).
    user: UserOut | None
    # With OpenID Connect: where a browser signs in (then ?next=<path> to come back).
    sign_in_url: str | None = None
    offline_model: bool
    chat_model: str
    classifier_model: str


class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    status: Literal["ready"]


class InvalidPart(BaseModel):
    location: list[str] = Field(description='Where, e.g. ["body", "prompt"] or ["path", "app_id"].')
    message: str


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, for programs: e.g. conversation_busy.")
    message: str = Field(description="A sentence for people.")
    details: list[InvalidPart] | None = Field(
        default=None,
        description="On 422 invalid_request, and on the 404 and 409 of a request naming an "
        "item, a version or a branch: each part of the request at fault, and why.",
    )


class ErrorOut(BaseModel):
    """Every 4xx and 5xx answer of the API (``/v1`` has OpenAI's shape instead)."""

    error: ErrorDetail


# --- the Vercel AI SDK's UI message stream (POST /api/chat) --------------------------------
# Bodies come from the AI SDK's chat transport, which adds the app's own `body` fields and
# keeps UI-only fields on messages and parts: unknown keys are allowed and not read.
class UIMessagePartIn(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={  # the validator below, documented
            "if": {"properties": {"type": {"const": "text"}}, "required": ["type"]},
            "then": {"properties": {"text": {"type": "string"}}, "required": ["text"]},
        },
    )

    type: StrictStr = Field(description="text, file, step-start, data-…: only text is read.")
    text: StrictStr | None = Field(default=None, description="Required on a text part.")

    @model_validator(mode="after")
    def _text_parts_have_text(self) -> UIMessagePartIn:
        if self.type == "text" and self.text is None:
            raise ValueError("a text part needs a 'text' string")
        return self


_TEXT_PART = {
    "properties": {
        "type": {"const": "text"},
        "text": {"type": "string", "pattern": NOT_BLANK_PATTERN},
    },
    "required": ["type", "text"],
}
_FILE_PART = {"properties": {"type": {"const": "file"}}, "required": ["type"]}


class UIMessageIn(BaseModel):
    """One message of the chat. A user's has text, and no file: this chatbot reads text."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={  # the validator below, documented
            "if": {"properties": {"role": {"const": "user"}}, "required": ["role"]},
            "then": {
                "properties": {"parts": {"contains": _TEXT_PART, "items": {"not": _FILE_PART}}}
            },
        },
    )

    id: StrictStr = Field(max_length=256)
    role: Literal["system", "user", "assistant"]
    parts: list[UIMessagePartIn] = Field(min_length=1)

    @model_validator(mode="after")
    def _user_messages_are_text(self) -> UIMessageIn:
        if self.role != "user":
            return self
        if any(part.type == "file" for part in self.parts):
            raise PydanticCustomError(
                "unsupported_part", "This chatbot reads text only, not files."
            )
        texts = [part.text or "" for part in self.parts if part.type == "text"]
        if not any(NOT_BLANK.search(text) for text in texts):
            raise PydanticCustomError(
                "empty_prompt", "A user message needs text that is not only whitespace."
            )
        return self


class UIChatRequestIn(BaseModel):
    """What ``useChat`` (its ``DefaultChatTransport``) posts for a message or a regenerate."""

    model_config = ConfigDict(extra="allow")

    id: StrictStr = Field(
        pattern=ID_PATTERN,
        description="The chat id, used as the conversation's app id: 1-64 of A-Z a-z 0-9 _ -.",
    )
    messages: list[UIMessageIn] = Field(
        min_length=1,
        description="The chat's messages; the last user message is the prompt. The server "
        "keeps the conversation itself, so the earlier ones are only counted.",
    )
    trigger: Literal["submit-message", "regenerate-message"] = "submit-message"
    messageId: StrictStr | None = Field(  # the AI SDK's spelling
        default=None,
        max_length=256,
        description="regenerate-message: the reply to replace; submit-message: the user "
        "message that was edited (absent for a new message).",
    )


class UIMessageMetadataOut(BaseModel):
    """The reply's ``metadata`` on the client: how its turn ended and what answered it."""

    outcome: Literal["completed", "failed", "stopped", "interrupted"]
    mode: str | None = Field(description="The response action the graph chose, if it got there.")
    timings: TimingsOut | None = None
    error: TurnErrorOut | None = None


# The parts of the UI message stream, as the server sends them (server.protocols.ai_sdk
# writes them as bytes; these document each ``data:`` of the stream, ``[DONE]`` aside).
class UIStartMetadataOut(BaseModel):
    prompt: str = Field(
        description="The prompt the reply answers (a reader that reattached has not seen it)."
    )


class UIStartPart(BaseModel):
    type: Literal["start"]
    messageId: str = Field(description="The reply's id.")
    messageMetadata: UIStartMetadataOut


class UIRouteData(BaseModel):
    mode: str = Field(description="The response action the graph chose.")


class UIRoutePart(BaseModel):
    type: Literal["data-route"]
    id: Literal["route"]
    data: UIRouteData


class UITextStartPart(BaseModel):
    type: Literal["text-start"]
    id: str


class UITextDeltaPart(BaseModel):
    type: Literal["text-delta"]
    id: str
    delta: str


class UITextEndPart(BaseModel):
    type: Literal["text-end"]
    id: str


class UIMetadataPart(BaseModel):
    type: Literal["message-metadata"]
    messageMetadata: UIMessageMetadataOut


class UIErrorPart(BaseModel):
    type: Literal["error"]
    errorText: str


class UIFinishPart(BaseModel):
    type: Literal["finish"]


class UIAbortPart(BaseModel):
    type: Literal["abort"]


class UIMessagePartOut(
    RootModel[
        Annotated[
            UIStartPart
            | UIRoutePart
            | UITextStartPart
            | UITextDeltaPart
            | UITextEndPart
            | UIMetadataPart
            | UIErrorPart
            | UIFinishPart
            | UIAbortPart,
            Field(discriminator="type"),
        ]
    ]
):
    """One part of the UI message stream: start, data-route, text-start, the text-deltas,
    text-end, message-metadata, error (failed turns), then finish or abort."""
