"""The Burr demo page's frames from turn events: pure functions, no I/O."""

from __future__ import annotations

import orjson
import pytest

from chatbot.domain.errors import SHUTTING_DOWN, TurnError
from chatbot.domain.events import (
    StepStarted,
    Timings,
    TurnCompleted,
    TurnFailed,
    TurnInterrupted,
    TurnStarted,
)
from server.protocols.burr_ui import burr_ui_frames, event_frame

REPLY = {"role": "assistant", "content": "Hi.", "type": "text"}


def payload(frame: bytes) -> dict:
    assert frame.startswith(b"data: ") and frame.endswith(b"\n\n")
    assert b"\nid:" not in frame and not frame.startswith(b":")
    return orjson.loads(frame[len(b"data: ") : -2])


def test_history_frame_carries_the_items_as_stored() -> None:
    history = [{"role": "user", "content": "Hi?", "type": "text"}]
    assert payload(event_frame(TurnStarted(history, "x"))) == {
        "type": "chat_history",
        "value": history,
    }


def test_delta_frame_is_exactly_the_contract_bytes() -> None:
    assert event_frame("Morning ") == b'data: {"type":"delta","value":"Morning "}\n\n'


def test_text_that_looks_like_a_frame_marker_is_escaped() -> None:
    frame = event_frame("say data: hello")
    assert frame.count(b"data: ") == 1
    assert payload(frame)["value"] == "say data: hello"


def test_end_frame_has_item_mode_and_timings_and_nothing_else() -> None:
    outcome = TurnCompleted(REPLY, "generate_poem", Timings(first_delta_ms=None, total_ms=12.5))
    assert event_frame(outcome) == (
        b'data: {"type":"end","value":{"item":{"role":"assistant","content":"Hi.","type":"text"},'
        b'"mode":"generate_poem","timings":{"first_delta_ms":null,"total_ms":12.5}}}\n\n'
    )


def test_failure_becomes_an_error_frame() -> None:
    error = TurnError("upstream_timeout", "Too slow.", retryable=True)
    assert payload(event_frame(TurnFailed(error, "answer_question"))) == {
        "type": "error",
        "value": {"code": "upstream_timeout", "message": "Too slow.", "retryable": True},
    }


def test_a_stopped_turn_says_why_and_a_disconnected_one_says_nothing() -> None:
    stopped = TurnInterrupted(partial=None, mode=None, error=SHUTTING_DOWN)
    assert payload(event_frame(stopped))["value"]["code"] == "server_shutting_down"
    assert event_frame(TurnInterrupted(partial=None, mode=None)) is None


def test_the_routing_step_is_not_a_frame_of_this_dialect() -> None:
    assert event_frame(StepStarted("generate_poem")) is None


@pytest.mark.parametrize("deltas", [[], ["a", "b"]])
async def test_frames_come_in_contract_order(deltas: list[str]) -> None:
    async def events():
        yield TurnStarted([], "p")
        yield StepStarted("answer_question")
        for delta in deltas:
            yield delta
        yield TurnCompleted(REPLY, "answer_question", Timings(1.0, 2.0))

    frames = [payload(f) async for f in burr_ui_frames(events())]
    assert [f["type"] for f in frames] == ["chat_history", *["delta"] * len(deltas), "end"]
