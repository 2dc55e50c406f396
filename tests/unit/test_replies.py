"""The reply log: any number of readers, from any point, none disturbing another."""

from __future__ import annotations

import asyncio

from chatbot.turns.replies import ReplyLog


async def test_readers_from_any_point_get_the_rest_live() -> None:
    log = ReplyLog()
    log.append("a")
    log.append("b")
    late = asyncio.create_task(_collect(log, 1))
    early = asyncio.create_task(_collect(log, 0))
    await asyncio.sleep(0)
    log.append("c")
    log.finish()
    assert await early == ["a", "b", "c"]
    assert await late == ["b", "c"]


async def test_a_reader_that_is_cancelled_does_not_disturb_the_others() -> None:
    log = ReplyLog()
    leaving = asyncio.create_task(_collect(log, 0))
    staying = asyncio.create_task(_collect(log, 0))
    await asyncio.sleep(0)  # both wait for the first event
    leaving.cancel()
    await asyncio.sleep(0)
    log.append("x")  # must not fail on the cancelled reader's wait
    log.finish()
    assert await staying == ["x"]
    assert leaving.cancelled()


async def test_a_finished_log_is_read_at_once() -> None:
    log = ReplyLog()
    log.append("only")
    log.finish()
    assert await _collect(log, 0) == ["only"]
    assert [pair async for pair in log.read_indexed(0)] == [(0, "only")]
    assert await _collect(log, 1) == []


async def _collect(log: ReplyLog, start: int) -> list:
    return [event async for event in log.read(start)]
