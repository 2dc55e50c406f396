"""The reply stream's watchdog: one timer for the read timeout and the deadline."""

from __future__ import annotations

import asyncio

import pytest

from chatbot.domain.errors import TurnError
from chatbot.llm.watchdog import StreamWatchdog


async def test_a_silent_stream_ends_as_a_timeout() -> None:
    never = asyncio.Event()
    with pytest.raises(TurnError) as caught:
        with StreamWatchdog(read_timeout_s=0.1, deadline_in_s=None):
            await never.wait()  # a read that never comes
    assert caught.value.code == "upstream_timeout"
    assert caught.value.retryable


async def test_reads_keep_it_quiet_with_one_timer_per_read_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reads inside the read timeout never fire it, and the timer is set once per timeout
    period, not once per read."""
    loop = asyncio.get_running_loop()
    armed: list[float] = []
    call_at = loop.call_at

    def counting_call_at(when: float, callback, *args, **kwargs):  # type: ignore[no-untyped-def]
        if getattr(callback, "__self__", None).__class__ is StreamWatchdog:
            armed.append(when)
        return call_at(when, callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_at", counting_call_at)
    with StreamWatchdog(read_timeout_s=0.3, deadline_in_s=None) as watch:
        for _ in range(40):  # 40 reads over about 0.8 s
            await asyncio.sleep(0.02)
            watch.fed()
    assert 1 <= len(armed) <= 8, armed  # about 0.8 / 0.3 + 1 on an idle machine


async def test_the_deadline_stops_a_trickle_that_never_goes_silent() -> None:
    with pytest.raises(TurnError) as caught:
        with StreamWatchdog(read_timeout_s=60.0, deadline_in_s=0.2) as watch:
            while True:
                await asyncio.sleep(0.02)
                watch.fed()
    assert caught.value.code == "upstream_timeout"
    assert "longer than the server allows" in caught.value.message


async def test_the_consumers_time_is_not_the_upstreams_silence() -> None:
    """While the reader is paused at a yield, a slow consumer neither counts as silence nor
    gets cancelled."""
    with StreamWatchdog(read_timeout_s=0.1, deadline_in_s=None) as watch:
        watch.fed()
        watch.pause()
        await asyncio.sleep(0.4)  # the consumer, four read timeouts long
        watch.resume()
        watch.fed()
        watch.finished()


async def test_a_deadline_passing_while_paused_is_raised_by_resume_not_in_the_consumer() -> None:
    with StreamWatchdog(read_timeout_s=60.0, deadline_in_s=0.1) as watch:
        watch.pause()
        await asyncio.sleep(0.3)  # would be a CancelledError here if the consumer were hit
        with pytest.raises(TurnError) as caught:
            watch.resume()
    assert caught.value.code == "upstream_timeout"


async def test_another_cancellation_stays_a_cancellation() -> None:
    """A stop (the task cancelled by someone else) is not turned into a timeout."""

    async def reader() -> None:
        with StreamWatchdog(read_timeout_s=0.05, deadline_in_s=None):
            await asyncio.Event().wait()

    task = asyncio.create_task(reader())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_finished_lifts_the_deadline() -> None:
    with StreamWatchdog(read_timeout_s=60.0, deadline_in_s=0.1) as watch:
        watch.finished()
        await asyncio.sleep(0.3)  # draining after the end, past the old deadline
