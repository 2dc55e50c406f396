"""The WebSocket channel's messages: pure functions, no I/O."""

from __future__ import annotations

import orjson
import pytest

from chatbot.domain.errors import REPLY_STOPPED
from chatbot.domain.events import StepStarted, Timings, TurnCompleted, TurnInterrupted, TurnStarted
from server.protocols.burr_ui import event_frame
from server.protocols.websocket import (
    MessageRefused,
    event_message,
    parse_message,
    refusal_message,
)
from server.schemas import SocketAuthIn, SocketPromptIn, SocketStopIn

EVENTS = [
    TurnStarted([{"role": "user", "content": "Hi?", "type": "text"}], "Again?"),
    "Morning ",
    'say "data: x"\n',
    TurnCompleted(
        {"role": "assistant", "content": "Morning.", "type": "text"},
        "generate_poem",
        Timings(first_delta_ms=3.5, total_ms=9.0),
    ),
    TurnInterrupted(None, "answer_question", REPLY_STOPPED),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_each_message_is_the_json_of_the_sse_frame(event) -> None:
    frame = event_frame(event)
    assert frame is not None
    assert orjson.loads(event_message(event)) == orjson.loads(frame[len(b"data: ") : -2])


def test_events_the_sse_route_does_not_carry_are_not_sent() -> None:
    assert event_message(StepStarted("generate_poem")) is None
    assert event_message(TurnInterrupted(None, None, None)) is None


def test_the_three_client_messages() -> None:
    assert parse_message('{"type": "prompt", "prompt": "Hi?"}') == SocketPromptIn(
        type="prompt", prompt="Hi?"
    )
    assert parse_message(b'{"type": "stop"}') == SocketStopIn(type="stop")
    assert parse_message('{"type": "auth", "key": "k"}') == SocketAuthIn(type="auth", key="k")


@pytest.mark.parametrize(
    ("data", "code", "reply_to"),
    [
        ("", "invalid_json", None),
        ('{"type": "prompt", "prompt": "x"', "invalid_json", None),
        ("null", "invalid_message", None),
        ('"prompt"', "invalid_message", None),
        ("{}", "invalid_message", None),
        ('{"type": "PROMPT", "prompt": "x"}', "unknown_type", None),
        ('{"type": "prompt", "prompt": null}', "invalid_message", "prompt"),
        ('{"type": "prompt", "prompt": ["x"]}', "invalid_message", "prompt"),
        ('{"type": "auth", "key": 1}', "invalid_message", "auth"),
    ],
)
def test_refusals_say_what_is_wrong(data: str, code: str, reply_to: str | None) -> None:
    with pytest.raises(MessageRefused) as refused:
        parse_message(data)
    assert (refused.value.code, refused.value.reply_to) == (code, reply_to)
    answer = orjson.loads(refusal_message(refused.value))
    assert answer == {
        "type": "error",
        "value": {"code": code, "message": refused.value.message, "retryable": False},
        "reply_to": reply_to,
    }
    assert refused.value.message
