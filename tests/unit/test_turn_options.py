"""A turn's extras for stateless clients: usage, instructions, sampling, finish reason."""

from __future__ import annotations

import asyncio
from typing import Any

from burr.core import ApplicationBuilder

from chatbot.domain.events import TurnCompleted, TurnEvent, Usage
from chatbot.graph.builder import ENTRYPOINT, build_graph
from chatbot.turns.options import TurnOptions
from chatbot.turns.turn import Turn
from tests.support.fake_model import FakeModel


def run(
    model: FakeModel,
    prompt: str = "Why is the sky blue?",
    options: TurnOptions | None = None,
    state: dict[str, Any] | None = None,
) -> list[TurnEvent]:
    graph = build_graph(model, max_context_messages=40, canned_pace_s=0)  # type: ignore[arg-type]
    app = (
        ApplicationBuilder()
        .with_graph(graph)
        .with_state(**(state or {"chat_history": []}))
        .with_entrypoint(ENTRYPOINT)
        .build()
    )
    turn = Turn(app, prompt, inputs=(options or TurnOptions()).inputs())

    async def collect() -> list[TurnEvent]:
        return [event async for event in turn.events()]

    return asyncio.run(collect())


def outcome(events: list[TurnEvent]) -> TurnCompleted:
    assert isinstance(events[-1], TurnCompleted), events[-1]
    return events[-1]


def test_usage_adds_the_classifier_and_the_reply() -> None:
    model = FakeModel(classifier_usage=Usage(10, 1), reply_usage=Usage(30, 7))
    done = outcome(run(model))
    assert done.usage == Usage(40, 8)
    assert done.state["usage"] == {"prompt_tokens": 40, "completion_tokens": 8}


def test_usage_starts_from_zero_every_turn() -> None:
    model = FakeModel(classifier_usage=Usage(10, 1), reply_usage=Usage(30, 7))
    first = outcome(run(model))
    second = outcome(run(model, state=first.state.get_all()))
    assert second.usage == Usage(40, 8)


def test_a_canned_reply_after_the_classifier_reports_the_classifiers_usage() -> None:
    done = outcome(run(FakeModel(mode="unknown", classifier_usage=Usage(10, 1))))
    assert done.mode == "prompt_for_more"
    assert done.usage == Usage(10, 1)


def test_an_unsafe_prompt_spends_nothing() -> None:
    model = FakeModel(classifier_usage=Usage(10, 1))
    done = outcome(run(model, prompt="how do I build a bomb"))
    assert done.mode == "unsafe_response"
    assert done.usage == Usage(0, 0)
    assert model.classified_messages == []


def test_instructions_reach_the_reply_model_only_and_are_kept() -> None:
    model = FakeModel()
    done = outcome(run(model, options=TurnOptions(instructions="Answer in French.")))
    (reply_messages,) = model.streamed_messages
    assert reply_messages[0]["role"] == "system"
    assert reply_messages[0]["content"].endswith("Answer in French.")
    assert all("French" not in m["content"] for m in model.classified_messages[0])
    assert done.state["instructions"] == "Answer in French."
    # A client that sends none (the chat UI) keeps them; an empty one clears them.
    kept = outcome(run(model, state=done.state.get_all()))
    assert kept.state["instructions"] == "Answer in French."
    assert model.streamed_messages[-1][0]["content"].endswith("Answer in French.")
    cleared = outcome(run(model, options=TurnOptions(instructions=""), state=done.state.get_all()))
    assert not cleared.state["instructions"]
    assert "French" not in model.streamed_messages[-1][0]["content"]


def test_sampling_options_go_to_the_reply_call_and_the_finish_reason_comes_back() -> None:
    model = FakeModel(finish_reason="length")
    done = outcome(run(model, options=TurnOptions(sampling={"max_tokens": 3, "temperature": 0})))
    assert model.stream_options == [{"max_tokens": 3, "temperature": 0}]
    assert done.finish_reason == "length"
    assert outcome(run(FakeModel())).finish_reason == "stop"
