"""A stop through another process gets the stopped reply, however late its answer comes.

Two chatbots in one event loop on one database stand for two server processes; the fake
upstream holds the reply mid-way until it is stopped. Stopping releases the turn's lease
a moment before the holder writes its answer: here that moment is stretched until the
asker has polled the signal three times with the lease gone, which is what a slow write
(SQLite's write lock behind another commit, a loaded machine) does now and then. The
asker must still wait for the answer, not conclude that the turn ended by itself.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatbot.domain.errors import REPLY_STOPPED
from chatbot.domain.events import TurnInterrupted
from chatbot.relay import following
from chatbot.relay.rows import RelayTable, StopAnswer
from chatbot.runtime import Chatbot
from chatbot.settings import Settings
from tests.support.fake_openai import FakeOpenAI, Script
from tests.support.postgres import postgres_server, postgres_url  # noqa: F401 (fixtures)

TOKENS = [f"w{i} " for i in range(20)]
HELD_AFTER = 3
# Asker's polls of the signal, after the lease was released, before the answer is written.
POLLS_BEFORE_THE_ANSWER = 3


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None  # the file in the shared data directory
    return request.getfixturevalue("postgres_url")


@pytest.fixture
async def bots(
    database_url: str | None, tmp_path: Path, fake_openai: FakeOpenAI
) -> AsyncIterator[list[Chatbot]]:
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path / "data",
        database_url=database_url,
        tracking_enabled=False,
        openai_api_key="test-key",
        openai_base_url=fake_openai.base_url,
        relay_poll_ms=10,
    )
    started = [await Chatbot.start(settings) for _ in range(2)]
    try:
        yield started
    finally:
        for bot in started:
            await bot.aclose()


class _LateStopAnswer:
    """The holder's answer to a stop is written only once the asker has polled for it
    ``POLLS_BEFORE_THE_ANSWER`` times since the lease was released (or gave up)."""

    def __init__(self, holder: RelayTable, asker: RelayTable) -> None:
        self.lease_released_first = False
        self._holder = holder
        self._asker = asker
        self._answering = asyncio.Event()
        self._polls = 0
        self._enough = asyncio.Event()
        self._answer_stop = holder.answer_stop
        self._stop_answer = asker.stop_answer
        self._drop_signal = asker.drop_signal

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(self._holder, "answer_stop", self.answer_stop)
        monkeypatch.setattr(self._asker, "stop_answer", self.stop_answer)
        monkeypatch.setattr(self._asker, "drop_signal", self.drop_signal)

    async def answer_stop(self, signal_id: int, outcome: str) -> None:
        activity = await self._holder.activity("proj", "conv", 0)
        self.lease_released_first = not activity.turn_running
        self._answering.set()
        await self._enough.wait()
        await self._answer_stop(signal_id, outcome)

    async def stop_answer(self, signal_id: int) -> StopAnswer | None:
        answer = await self._stop_answer(signal_id)
        if self._answering.is_set():
            self._polls += 1
            if self._polls >= POLLS_BEFORE_THE_ANSWER:
                self._enough.set()
        return answer

    async def drop_signal(self, signal_id: int) -> None:
        self._enough.set()  # the asker stopped waiting
        await self._drop_signal(signal_id)


async def test_a_stop_answered_after_the_lease_is_released_still_names_the_reply(
    bots: list[Chatbot], fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    holder, asker = bots
    # The asker looks at the lease on every poll: it would give up at its second look.
    monkeypatch.setattr(following, "QUIET_CHECK_S", 0.0)
    late = _LateStopAnswer(holder.relay_rows, asker.relay_rows)
    late.install(monkeypatch)
    gate = threading.Event()
    fake_openai.on_stream(
        Script(tokens=TOKENS, token_delay=0.001, gate_after=HELD_AFTER, gate=gate)
    )
    try:
        reply = await holder.conversations.start_reply("proj", "conv", "Long?")
        # Read up to the hold by text, never by counting deltas: tokens that reach the
        # server in one upstream read leave as one delta, so the held tokens may be fewer
        # deltas than tokens, and waiting for a third delta would wait for the gate.
        held = "".join(TOKENS[:HELD_AFTER])
        seen = ""
        async for event in reply.log.read():
            if isinstance(event, str):
                seen += event
                if len(seen) >= len(held):
                    break
        assert seen == held
        assert asker.turns.reply("proj", "conv") is None  # the asker must go through the relay

        outcome = await asyncio.wait_for(asker.turns.stop("proj", "conv"), 60)
    finally:
        gate.set()

    assert late.lease_released_first, "the race this test is about did not happen"
    assert isinstance(outcome, TurnInterrupted), outcome
    assert outcome.error is not None and outcome.error.code == REPLY_STOPPED.code
    assert outcome.partial["content"] == "".join(TOKENS[:HELD_AFTER])
    assert outcome.partial.get("interrupted") is True
    await asyncio.wait_for(reply.task, 60)
    assert isinstance(reply.outcome, TurnInterrupted) and reply.outcome.partial == outcome.partial
    history = await asker.conversations.history("proj", "conv")
    assert history is not None and history[-1] == outcome.partial
