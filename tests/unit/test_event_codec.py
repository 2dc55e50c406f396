"""Turn events to JSON and back: every kind, every optional field, through real JSON text."""

from __future__ import annotations

import orjson
import pytest

from chatbot.domain.chat_items import ChatHistory, assistant_item, interrupted_item, user_item
from chatbot.domain.errors import REPLY_STOPPED, TurnError
from chatbot.domain.events import (
    StepStarted,
    Timings,
    TurnCompleted,
    TurnEvent,
    TurnFailed,
    TurnInterrupted,
    TurnStarted,
    Usage,
)
from chatbot.relay.event_codec import decode_event, encode_event

HISTORY = ChatHistory([user_item("Hi?"), assistant_item("Hello.")])
UPSTREAM = TurnError(
    "upstream_rate_limited", "Too many requests.", True, status=429, retry_after_s=1.5
)

EVENTS: list[TurnEvent] = [
    TurnStarted(HISTORY, "Why is the sky blue?"),
    TurnStarted(ChatHistory(), "first prompt, empty history"),
    StepStarted("answer_question"),
    "plain delta",
    "",
    'quotes " and \\ and data: and \n newlines and ünïcode 🌈',
    TurnCompleted(
        assistant_item("```py\nprint(1)\n```", "code"),
        "generate_code",
        Timings(12.5, 340.0),
        Usage(10, 20),
    ),
    TurnCompleted(assistant_item("No text timing."), "prompt_for_more", Timings(None, 5.0)),
    TurnFailed(UPSTREAM, "answer_question", interrupted_item("Half a")),
    TurnFailed(TurnError("internal_error", "Boom.", False), None),
    TurnInterrupted(interrupted_item("Partial"), "generate_poem", REPLY_STOPPED),
    TurnInterrupted(None, None),
]


def _through_json(event: TurnEvent) -> TurnEvent:
    return decode_event(orjson.loads(orjson.dumps(encode_event(event))))


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_every_event_survives_the_round_trip(event: TurnEvent) -> None:
    back = _through_json(event)
    assert type(back) is type(event)
    if isinstance(event, TurnFailed | TurnInterrupted):
        # TurnError compares by identity; its fields must all come back.
        assert back.mode == event.mode and back.partial == event.partial
        if event.error is None:
            assert back.error is None
        else:
            assert vars(back.error) == vars(event.error)
    else:
        assert back == event


def test_a_history_comes_back_as_an_immutable_history() -> None:
    back = _through_json(TurnStarted(HISTORY, "p"))
    assert isinstance(back, TurnStarted)
    assert isinstance(back.history, ChatHistory)
    assert list(back.history) == list(HISTORY)


def test_a_delta_is_a_bare_json_string() -> None:
    assert encode_event("tok") == "tok"
    assert orjson.dumps(encode_event("tok")) == b'"tok"'


def test_every_other_event_is_a_tagged_object() -> None:
    tags = {
        encode_event(e)["type"]  # type: ignore[index]
        for e in EVENTS
        if type(e) is not str
    }
    assert tags == {"started", "step", "completed", "failed", "interrupted"}


@pytest.mark.parametrize(
    "value",
    [
        {"type": "nope"},
        {"no": "type"},
        {"type": "step"},  # its field is missing
        {"type": "failed", "error": None, "mode": None, "partial": None},
        42,
        None,
        ["a list"],
    ],
)
def test_anything_else_is_refused(value: object) -> None:
    with pytest.raises(ValueError):
        decode_event(value)  # type: ignore[arg-type]
