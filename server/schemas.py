"""Request and response bodies of the HTTP API: every JSON shape the server sends lives here.

Routes return these models and let FastAPI serialise them; the streaming adapters build
the same models for their once-per-turn frames, so a shape is defined exactly once.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator

from chatbot.errors import TurnError
from chatbot.events import TurnCompleted, TurnOutcome
from server.deps import ID_PATTERN


class PromptIn(BaseModel):
    # Strict: a number or a list is a client bug to report, not a string to coerce.
    prompt: StrictStr = Field(
        description="The user's message.", examples=["Write a poem about rivers"]
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
class ChatHistoryFrame(BaseModel):
    type: Literal["chat_history"]
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


ChatFrame = Annotated[
    ChatHistoryFrame | DeltaFrame | EndFrame | ErrorFrame, Field(discriminator="type")
]


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


class InfoOut(BaseModel):
    project_id: str
    burr_ui_url: str | None
    burr_app_url_template: str | None
    auth_required: bool
    offline_model: bool
    chat_model: str
    classifier_model: str


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorDetail


# --- the Vercel AI SDK's UI message stream (POST /api/chat) --------------------------------
# Bodies come from the AI SDK's chat transport, which adds the app's own `body` fields and
# keeps UI-only fields on messages and parts: unknown keys are allowed and not read.
class UIMessagePartIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: StrictStr = Field(description="text, file, step-start, data-…: only text is read.")
    text: StrictStr | None = Field(default=None, description="Required on a text part.")

    @model_validator(mode="after")
    def _text_parts_have_text(self) -> UIMessagePartIn:
        if self.type == "text" and self.text is None:
            raise ValueError("a text part needs a 'text' string")
        return self


class UIMessageIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: StrictStr = Field(max_length=256)
    role: Literal["system", "user", "assistant"]
    parts: list[UIMessagePartIn]


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
