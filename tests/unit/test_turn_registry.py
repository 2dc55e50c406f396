"""The registry of running turns, wired as the runtime wires it: a real SQLite store and
relay, the real graph and application factory, a scripted model (the only stand-in).

Admission (capacity, draining), stop and resume are the registry's; the service takes
the lease and loads the application; what a turn leaves behind is read back from the store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from chatbot.conversations.service import ConversationService
from chatbot.domain.errors import REPLY_STOPPED, SHUTTING_DOWN
from chatbot.domain.events import TurnCompleted, TurnInterrupted
from chatbot.graph.builder import build_graph
from chatbot.metrics import Metrics
from chatbot.relay import Relay
from chatbot.relay.rows import RelayTable
from chatbot.store import ConversationStore, open_store
from chatbot.turns.applications import ApplicationFactory
from chatbot.turns.registry import Overloaded, ShuttingDown, TurnPolicy, TurnRegistry
from chatbot.turns.replies import Reply
from chatbot.users.quotas import QuotaLimits, Quotas
from tests.support.fake_model import FakeModel


@dataclass
class Parts:
    model: FakeModel
    store: ConversationStore
    metrics: Metrics
    turns: TurnRegistry
    conversations: ConversationService

    def rejected(self, reason: str) -> float:
        return self.metrics.rejected.labels(reason)._value.get()


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[Parts]:
    store = open_store(f"sqlite:///{tmp_path / 'chatbot.sqlite3'}")
    await store.initialize()
    # The reply holds after its first token until the test releases it.
    model = FakeModel(tokens=["It ", "is ", "so."], hold_after=1)
    metrics = Metrics()
    graph = build_graph(model, max_context_messages=40, canned_pace_s=0)  # type: ignore[arg-type]
    relay = Relay(RelayTable(store.dialect), poll_s=0.01, retention_s=30)
    policy = TurnPolicy(max_running=1, retention_s=30, on_disconnect="continue")
    turns = TurnRegistry(store, metrics, relay, policy)
    apps = ApplicationFactory(graph, store, None)
    conversations = ConversationService(
        store, apps, turns, None, Quotas(store.dialect, QuotaLimits())
    )
    try:
        yield Parts(model, store, metrics, turns, conversations)
    finally:
        model.released.set()
        await turns.aclose()
        await relay.aclose()
        await store.close()


async def first_delta(reply: Reply) -> None:
    async for event in reply.log.read():
        if type(event) is str:
            return


async def test_a_full_process_refuses_the_next_turn_until_one_has_settled(parts: Parts) -> None:
    running = await parts.conversations.start_reply("p", "one", "Why?")
    await first_delta(running)
    with pytest.raises(Overloaded):
        await parts.conversations.start_reply("p", "two", "Why?")
    assert parts.rejected("overloaded") == 1
    assert await parts.conversations.history("p", "two") is None, "a refusal stores nothing"

    parts.model.released.set()
    assert running.task is not None
    await running.task
    assert isinstance(running.outcome, TurnCompleted)
    second = await parts.conversations.start_reply("p", "two", "Why?")
    assert second.task is not None
    await second.task
    assert isinstance(second.outcome, TurnCompleted)


async def test_a_stop_keeps_the_partial_reply_and_frees_the_conversation(parts: Parts) -> None:
    reply = await parts.conversations.start_reply("p", "conv", "Why?")
    await first_delta(reply)

    outcome = await parts.turns.stop("p", "conv")

    assert isinstance(outcome, TurnInterrupted)
    assert outcome.error == REPLY_STOPPED
    assert outcome.partial is not None and outcome.partial["content"] == "It "
    assert reply.done and reply.outcome == outcome
    history = await parts.conversations.history("p", "conv")
    assert history is not None and history[-1] == outcome.partial
    # Nothing runs any more, here or (asked through the relay) anywhere else.
    assert await parts.turns.stop("p", "conv") is None
    assert await parts.turns.find("p", "conv") is reply, "the finished reply is still the latest"


async def test_draining_ends_running_turns_and_refuses_new_ones(parts: Parts) -> None:
    reply = await parts.conversations.start_reply("p", "conv", "Why?")
    await first_delta(reply)

    await parts.turns.drain(0)

    assert isinstance(reply.outcome, TurnInterrupted)
    assert reply.outcome.error == SHUTTING_DOWN
    with pytest.raises(ShuttingDown):
        await parts.conversations.start_reply("p", "other", "Why?")
    assert parts.rejected("shutting_down") == 1
    history = await parts.conversations.history("p", "conv")
    assert history is not None and history[-1]["content"] == "It "
