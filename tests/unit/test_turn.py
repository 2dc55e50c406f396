"""Every outcome of a turn, in-process: the real graph, a scripted model, an in-memory store."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from burr.core import ApplicationBuilder

from chatbot.domain.errors import INTERNAL_ERROR, SHUTTING_DOWN, STORAGE_ERROR
from chatbot.domain.events import (
    StepStarted,
    TurnCompleted,
    TurnEvent,
    TurnFailed,
    TurnInterrupted,
    TurnStarted,
)
from chatbot.graph.builder import ENTRYPOINT, build_graph
from chatbot.metrics import Metrics
from chatbot.turns.live_turn import LiveTurn
from chatbot.turns.turn import Turn
from tests.support.fake_model import FakeModel, MemoryLease, MemoryStore

EARLIER = [
    {"role": "user", "content": "Hi?", "type": "text"},
    {"role": "assistant", "content": "Hello.", "type": "text"},
]
USER = {"role": "user", "content": "Why is the sky blue?", "type": "text"}


def make_turn(model: FakeModel, history: list[dict[str, Any]] | None = None) -> Turn:
    graph = build_graph(model, max_context_messages=40, canned_pace_s=0)  # type: ignore[arg-type]
    app = (
        ApplicationBuilder()
        .with_graph(graph)
        .with_state(chat_history=list(EARLIER if history is None else history))
        .with_entrypoint(ENTRYPOINT)
        .build()
    )
    return Turn(app, USER["content"])


class Harness:
    def __init__(self, model: FakeModel, store: MemoryStore | None = None) -> None:
        self.store = store or MemoryStore()
        self.lease = MemoryLease()
        self.metrics = Metrics()
        self.settled: list[LiveTurn] = []
        self.turn = LiveTurn(
            make_turn(model),
            project_id="p",
            conversation_id="a",
            store=self.store,  # type: ignore[arg-type]
            lease=self.lease,
            tracker=None,
            metrics=self.metrics,
            spawn=asyncio.get_running_loop().create_task,
            on_settled=self.settled.append,
        )

    def counted(self, label: str) -> float:
        return self.metrics.turns.labels(label)._value.get()


async def collect(events: Any) -> list[TurnEvent]:
    return [event async for event in events]


async def test_a_turn_tells_history_step_deltas_then_completion() -> None:
    events = await collect(make_turn(FakeModel()).events())
    assert isinstance(events[0], TurnStarted)
    assert list(events[0].history) == EARLIER
    assert events[1] == StepStarted("answer_question")
    assert events[2:-1] == ["It ", "is ", "so."]
    outcome = events[-1]
    assert isinstance(outcome, TurnCompleted)
    assert outcome.item == {"role": "assistant", "content": "It is so.", "type": "text"}
    assert outcome.mode == "answer_question"
    assert outcome.timings.first_delta_ms is not None
    assert outcome.timings.total_ms >= outcome.timings.first_delta_ms
    assert list(outcome.state["chat_history"]) == [*EARLIER, USER, outcome.item]


async def test_the_mode_decides_the_step_and_the_item_type() -> None:
    events = await collect(make_turn(FakeModel(mode="generate_code")).events())
    assert StepStarted("generate_code") in events
    assert events[-1].item["type"] == "code"


async def test_a_failure_before_any_text_keeps_the_prompt_and_an_error_item() -> None:
    events = await collect(make_turn(FakeModel(fail_after=0)).events())
    outcome = events[-1]
    assert isinstance(outcome, TurnFailed)
    assert outcome.error.code == "upstream_stream_cut"
    assert outcome.partial is None
    assert not [e for e in events if type(e) is str]
    history = list(outcome.state["chat_history"])
    assert history == [
        *EARLIER,
        USER,
        {"role": "assistant", "content": "The reply was cut off.", "type": "error"},
    ]


async def test_a_failure_after_text_keeps_what_the_user_saw_then_the_error() -> None:
    events = await collect(make_turn(FakeModel(fail_after=2)).events())
    outcome = events[-1]
    assert isinstance(outcome, TurnFailed)
    seen = {"role": "assistant", "content": "It is ", "type": "text", "interrupted": True}
    assert outcome.partial == seen
    assert list(outcome.state["chat_history"])[-2:] == [
        seen,
        {"role": "assistant", "content": "The reply was cut off.", "type": "error"},
    ]


async def test_a_bug_in_the_model_is_an_internal_error_not_a_crash() -> None:
    events = await collect(make_turn(FakeModel(fail_after=1, error=KeyError("oops"))).events())
    assert isinstance(events[-1], TurnFailed)
    assert events[-1].error is INTERNAL_ERROR


async def test_stored_states_restart_at_the_prompt_step() -> None:
    events = await collect(make_turn(FakeModel(fail_after=0)).events())
    assert "__PRIOR_STEP" not in events[-1].state.get_all()


async def test_live_turn_stores_before_it_passes_the_outcome_on() -> None:
    harness = Harness(FakeModel())
    seen_stored_at_outcome = []
    async for event in harness.turn.events():
        if isinstance(event, TurnCompleted):
            seen_stored_at_outcome.append(len(harness.store.saved))
    assert seen_stored_at_outcome == [1]
    assert harness.store.last_history[-2:] == [
        USER,
        {"role": "assistant", "content": "It is so.", "type": "text"},
    ]
    assert harness.store.saved[-1][4] == "completed"
    assert harness.lease.released == 1
    assert harness.settled == [harness.turn]
    assert harness.counted("completed") == 1


async def test_live_turn_stores_a_failure_as_failed() -> None:
    harness = Harness(FakeModel(fail_after=1))
    events = await collect(harness.turn.events())
    assert isinstance(events[-1], TurnFailed)
    assert harness.store.saved[-1][4] == "failed"
    assert harness.store.last_history[-1]["type"] == "error"
    assert harness.lease.released == 1
    assert harness.counted("failed") == 1


async def test_a_consumer_that_leaves_mid_reply_leaves_the_partial_reply_stored() -> None:
    harness = Harness(FakeModel(tokens=["one ", "two ", "three"]))
    events = harness.turn.events()
    async for event in events:
        if event == "two ":
            break
    await harness.turn.aclose()
    assert harness.store.last_history[-1] == {
        "role": "assistant",
        "content": "one two ",
        "type": "text",
        "interrupted": True,
    }
    assert isinstance(harness.turn.outcome, type(None))  # nobody was there to hear one
    assert harness.lease.released == 1
    assert harness.counted("interrupted") == 1


async def test_a_turn_nobody_listened_to_stores_nothing_and_frees_the_lease() -> None:
    harness = Harness(FakeModel())
    await harness.turn.aclose()
    assert harness.store.saved == []
    assert harness.lease.released == 1
    assert harness.counted("abandoned") == 1


async def test_a_stopped_turn_keeps_its_partial_reply_and_says_why() -> None:
    model = FakeModel(tokens=["one ", "two ", "three"], hold_after=2)
    harness = Harness(model)
    received: list[TurnEvent] = []

    async def consume() -> None:
        async for event in harness.turn.events():
            received.append(event)
            if event == "two ":
                harness.turn.stop(SHUTTING_DOWN)

    await asyncio.wait_for(consume(), 5)
    outcome = received[-1]
    assert isinstance(outcome, TurnInterrupted)
    assert outcome.error is SHUTTING_DOWN
    assert outcome.partial is not None and outcome.partial["content"] == "one two "
    assert harness.store.last_history[-1]["interrupted"] is True
    assert harness.lease.released == 1
    assert harness.counted("stopped") == 1


async def test_a_turn_that_cannot_be_stored_fails_with_storage_error() -> None:
    harness = Harness(FakeModel(), MemoryStore(fail=True))
    events = await collect(harness.turn.events())
    assert isinstance(events[-1], TurnFailed)
    assert events[-1].error is STORAGE_ERROR
    assert harness.lease.released == 1


@pytest.mark.parametrize("history", [[], EARLIER])
async def test_the_model_sees_earlier_turns_but_never_error_items(history: list) -> None:
    model = FakeModel()
    failing = [*history, USER, {"role": "assistant", "content": "broken", "type": "error"}]
    await collect(make_turn(model, failing).events())
    sent = model.streamed_messages[-1]
    assert all(m["content"] != "broken" for m in sent)
    assert sent[-1] == {"role": "user", "content": USER["content"]}
