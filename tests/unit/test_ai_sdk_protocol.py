"""The AI SDK's UI message stream from turn events, and what a useChat body asks for."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest

from chatbot.domain.branch_points import BranchPoint
from chatbot.domain.chat_items import ChatItem, assistant_item, error_item, user_item
from chatbot.domain.errors import REPLY_STOPPED, SHUTTING_DOWN, TurnError
from chatbot.domain.events import (
    StepStarted,
    Timings,
    TurnCompleted,
    TurnEvent,
    TurnFailed,
    TurnInterrupted,
    TurnStarted,
)
from server.errors import ApiError
from server.protocols.ai_sdk import delta_part, ui_message_stream
from server.protocols.ai_sdk_request import branch_point, prompt_of
from server.schemas import UIChatRequestIn

REPLY = {"role": "assistant", "content": "Hi.", "type": "text"}


async def stream(*events: TurnEvent) -> list[dict | str]:
    async def source() -> AsyncIterator[TurnEvent]:
        for event in events:
            yield event

    parts: list[dict | str] = []
    async for frame in ui_message_stream(source(), "m1"):
        assert frame.startswith(b"data: ") and frame.endswith(b"\n\n")
        assert frame.count(b"\n") == 2, "one part, one line"
        data = frame[len(b"data: ") : -2]
        parts.append("[DONE]" if data == b"[DONE]" else orjson.loads(data))
    return parts


def types(parts: list[dict | str]) -> list[str]:
    return [p if isinstance(p, str) else p["type"] for p in parts]


def test_a_delta_is_exactly_the_protocols_bytes() -> None:
    assert delta_part("Morning ") == (
        b'data: {"type":"text-delta","id":"text","delta":"Morning "}\n\n'
    )
    assert delta_part('two\nlines "quoted"') == (
        b'data: {"type":"text-delta","id":"text","delta":"two\\nlines \\"quoted\\""}\n\n'
    )


async def test_a_completed_turn_is_one_message() -> None:
    parts = await stream(
        TurnStarted([], "p"),
        StepStarted("generate_poem"),
        "a",
        "b",
        TurnCompleted(REPLY, "generate_poem", Timings(first_delta_ms=1.5, total_ms=9.0)),
    )
    no_text = await stream(
        TurnStarted([], "p"),
        StepStarted("answer_question"),
        TurnCompleted(REPLY, "answer_question", Timings(first_delta_ms=None, total_ms=3.0)),
    )
    assert no_text[-3]["messageMetadata"]["timings"] == {"first_delta_ms": None, "total_ms": 3.0}
    assert parts == [
        {"type": "start", "messageId": "m1", "messageMetadata": {"prompt": "p"}},
        {"type": "data-route", "id": "route", "data": {"mode": "generate_poem"}},
        {"type": "text-start", "id": "text"},
        {"type": "text-delta", "id": "text", "delta": "a"},
        {"type": "text-delta", "id": "text", "delta": "b"},
        {"type": "text-end", "id": "text"},
        {
            "type": "message-metadata",
            "messageMetadata": {
                "outcome": "completed",
                "mode": "generate_poem",
                "timings": {"first_delta_ms": 1.5, "total_ms": 9.0},
            },
        },
        {"type": "finish"},
        "[DONE]",
    ]


async def test_a_failure_before_the_step_has_no_text_part() -> None:
    error = TurnError("upstream_timeout", "Too slow.", retryable=True)
    parts = await stream(TurnStarted([], "p"), TurnFailed(error, None))
    assert types(parts) == ["start", "message-metadata", "error", "finish", "[DONE]"]
    assert parts[1]["messageMetadata"] == {
        "outcome": "failed",
        "mode": None,
        "error": {"code": "upstream_timeout", "message": "Too slow.", "retryable": True},
    }
    assert parts[2] == {"type": "error", "errorText": "Too slow."}


async def test_a_failure_mid_reply_closes_its_text_first() -> None:
    error = TurnError("upstream_stream_cut", "Cut off.")
    parts = await stream(
        TurnStarted([], "p"), StepStarted("answer_question"), "a", TurnFailed(error, "x")
    )
    assert types(parts)[4:] == ["text-end", "message-metadata", "error", "finish", "[DONE]"]


@pytest.mark.parametrize(("error", "outcome"), [(REPLY_STOPPED, "stopped"), (None, "interrupted")])
async def test_a_stopped_or_abandoned_turn_ends_with_abort(
    error: TurnError | None, outcome: str
) -> None:
    parts = await stream(
        TurnStarted([], "p"),
        StepStarted("answer_question"),
        "a",
        TurnInterrupted(partial=None, mode="answer_question", error=error),
    )
    assert types(parts)[4:] == ["text-end", "message-metadata", "abort", "[DONE]"]
    assert parts[5]["messageMetadata"] == {"outcome": outcome, "mode": "answer_question"}


async def test_a_turn_ended_by_the_server_is_an_error_the_user_sees() -> None:
    parts = await stream(
        TurnStarted([], "p"), TurnInterrupted(partial=None, mode=None, error=SHUTTING_DOWN)
    )
    assert types(parts) == ["start", "message-metadata", "error", "finish", "[DONE]"]
    assert parts[1]["messageMetadata"]["error"]["code"] == "server_shutting_down"


def request(*messages: dict, **fields: object) -> UIChatRequestIn:
    return UIChatRequestIn.model_validate({"id": "c", "messages": list(messages), **fields})


def user(text: str) -> dict:
    return {"id": text, "role": "user", "parts": [{"type": "text", "text": text}]}


ASSISTANT = {"id": "a", "role": "assistant", "parts": [{"type": "text", "text": "ok"}]}


def test_the_prompt_is_the_text_of_the_last_user_message() -> None:
    message = user("first line")
    message["parts"] += [{"type": "step-start"}, {"type": "text", "text": "second line"}]
    assert prompt_of(request(user("old"), ASSISTANT, message).messages) == (
        "first line\nsecond line"
    )
    with pytest.raises(ApiError) as refused:
        prompt_of(request(user("q"), ASSISTANT).messages)
    assert refused.value.code == "last_message_not_from_user"


def stored_turns(count: int) -> list[ChatItem]:
    """``count`` stored turns: prompts q1, q2, ... each with its reply."""
    return [item for i in range(count) for item in (user_item(f"q{i + 1}"), assistant_item("ok"))]


def client_messages(prompts: list[str]) -> list[dict]:
    """What the client sends: its prompts with a reply between each two, the last one bare."""
    return [m for text in prompts for m in (user(text), ASSISTANT)][:-1]


@pytest.mark.parametrize(
    ("fields", "prompts", "stored", "point"),
    [
        ({}, ["q1", "q2", "q3"], 1, None),  # a new message never branches, whatever the counts
        ({}, ["q1"], 2, None),
        ({"trigger": "regenerate-message"}, ["q1", "q2"], 2, BranchPoint(3, None)),
        ({"trigger": "regenerate-message", "messageId": "a"}, ["q1"], 2, BranchPoint(1, None)),
        ({"trigger": "regenerate-message"}, ["q1", "q2"], 1, None),  # never stored: it runs
        ({"messageId": "q2"}, ["q1", "q2 edited"], 2, BranchPoint(2, "q2 edited")),
        ({"messageId": "q1"}, ["q1 edited"], 3, BranchPoint(0, "q1 edited")),
        ({"messageId": "q1"}, ["q1"], 1, BranchPoint(1, None)),  # saved unchanged: regenerate
        ({"messageId": "q3"}, ["q1", "q2", "q3"], 2, None),  # never stored: it runs
    ],
)
def test_which_requests_branch_and_where(
    fields: dict, prompts: list[str], stored: int, point: BranchPoint | None
) -> None:
    body = request(*client_messages(prompts), **fields)
    assert branch_point(body, stored_turns(stored), prompt_of(body.messages)) == point


def test_a_turn_the_conversation_does_not_have_is_a_conflict() -> None:
    body = request(*client_messages(["q1", "q2", "q3"]), trigger="regenerate-message")
    for stored in (0, 1):
        with pytest.raises(ApiError) as refused:
            branch_point(body, stored_turns(stored), "q3")
        assert (refused.value.status, refused.value.code) == (409, "turn_not_found")


def test_failed_turns_count_as_turns() -> None:
    stored = [user_item("q1"), error_item("The model failed."), *stored_turns(1)]
    body = request(*client_messages(["q1", "q1"]), trigger="regenerate-message")
    assert branch_point(body, stored, "q1") == BranchPoint(3, None)
    body = request(user("q1"), trigger="regenerate-message", messageId="a")
    assert branch_point(body, stored, "q1") == BranchPoint(1, None)
