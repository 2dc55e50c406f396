"""Which reply a watcher gets when several processes hold one of the same conversation.

Three chatbots in one event loop on one SQLite file stand for three server processes
(the offline model writes the replies). With requests spread over processes, the turns
of one conversation run in different ones, and each keeps its finished reply for the
retention window: a resume must still get the conversation's latest reply, wherever it
is, and the one being written above all.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatbot.domain.events import TurnCompleted
from chatbot.runtime import Chatbot
from chatbot.settings import Settings
from chatbot.turns.replies import Reply


@pytest.fixture
async def bots(tmp_path: Path) -> AsyncIterator[list[Chatbot]]:
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path / "data",
        tracking_enabled=False,
        # Slow enough that a watch arrives while a reply is being written.
        offline_pace_ms=5,
        canned_pace_ms=0,
        reply_retention_s=600,  # every finished reply stays readable during the test
        relay_poll_ms=20,
    )
    started = [await Chatbot.start(settings) for _ in range(3)]
    try:
        yield started
    finally:
        for bot in started:
            await bot.aclose()


async def _turn(bot: Chatbot, prompt: str) -> Reply:
    reply = await bot.conversations.start_reply("proj", "conv", prompt)
    async for _ in reply.log.read():
        pass
    assert isinstance(reply.outcome, TurnCompleted), reply.outcome
    return reply


async def test_a_watch_gets_the_latest_reply_of_the_conversation(bots: list[Chatbot]) -> None:
    first, second, third = bots
    one = await _turn(first, "What is one?")
    two = await _turn(third, "What is two?")
    # The second process holds nothing: the third's reply is later than the first's.
    found = await second.turns.find("proj", "conv")
    assert found is not None and found.id == two.id
    assert found.outcome == two.outcome
    # The first process's own reply is out of date: a later turn was stored elsewhere.
    assert first.turns.reply("proj", "conv") is one
    mine = await first.turns.find("proj", "conv")
    assert mine is not None and mine.id == two.id
    # The third's is its own, and still the latest.
    assert await third.turns.find("proj", "conv") is two


async def test_the_reply_being_written_wins_over_finished_ones(bots: list[Chatbot]) -> None:
    first, second, third = bots
    await _turn(first, "What is one?")
    await _turn(second, "What is two?")
    running = await third.conversations.start_reply(
        "proj", "conv", "Write a long poem about three."
    )
    for watcher in (first, second):
        found = await watcher.turns.find("proj", "conv")
        assert found is not None and found.id == running.id
    copy = await second.turns.find("proj", "conv")
    assert copy is not None
    events = [event async for event in copy.log.read()]
    await running.task
    assert [type(e) for e in events] == [type(e) for e in running.log.events]
    assert "".join(e for e in events if type(e) is str) == "".join(
        e for e in running.log.events if type(e) is str
    )


async def test_a_watcher_reuses_one_copy_for_all_its_readers(bots: list[Chatbot]) -> None:
    first, second, _ = bots
    running = await first.conversations.start_reply(
        "proj", "conv", "Write a long poem about copies."
    )
    copies = await asyncio.gather(*(second.turns.find("proj", "conv") for _ in range(5)))
    assert {c.id for c in copies if c is not None} == {running.id}
    assert len({id(c) for c in copies}) == 1, "one copy, one follower"
    assert len(second.relay.remote.followed) == 1
    assert len(first.relay_answerer.mirrors) == 1
    await running.task
    [copy] = {id(c): c for c in copies if c is not None}.values()
    events = [event async for event in copy.log.read()]
    assert len(events) == len(running.log.events)
    assert second.relay.remote.followed == {}, "the follower ends with the reply"
