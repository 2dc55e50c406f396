"""Request and response bodies of the HTTP contract (see DESIGN.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr


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
        default=None, description="Present and true on a reply cut short by a disconnect."
    )


class Timings(BaseModel):
    first_delta_ms: float | None
    total_ms: float


class ReplyOut(BaseModel):
    item: ChatItemOut
    mode: str = Field(description="The response action the graph chose, e.g. generate_poem.")
    timings: Timings


class ConversationOut(BaseModel):
    app_id: str
    title: str
    turns: int
    created_at: str
    updated_at: str


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
