"""The relay's batching, without a database: what a holder writes, what a reader rebuilds."""

from __future__ import annotations

import asyncio
import random

import pytest

from chatbot.domain.chat_items import ChatHistory, assistant_item, user_item
from chatbot.domain.errors import REPLY_STOPPED
from chatbot.domain.events import StepStarted, Timings, TurnCompleted, TurnInterrupted, TurnStarted
from chatbot.relay.batches import Mirror, apply_batch, decode_events, rank, turn_number
from chatbot.relay.rows import MirroredBatch
from chatbot.turns.replies import Reply, ReplyLog

HISTORY = ChatHistory(
    [user_item("One?"), assistant_item("1."), user_item("Two?"), assistant_item("2.")]
)


def _reply(log: ReplyLog | None = None) -> Reply:
    return Reply("p", "a", None, log or ReplyLog(), "r1")


def _take(mirror: Mirror, now: float) -> MirroredBatch | None:
    """The next batch, written at ``now``."""
    batch = mirror.next_batch()
    if batch is not None:
        mirror.written(batch, now)
    return batch


def _events(batches: list[MirroredBatch]) -> list:
    return [event for batch in batches for event in decode_events(batch.payload)]


def test_the_first_batch_is_the_backlog_then_only_what_is_new() -> None:
    log = ReplyLog()
    for event in (TurnStarted(HISTORY, "Three?"), StepStarted("answer_question"), "a", "b"):
        log.append(event)
    mirror = Mirror(_reply(log))
    backlog = _take(mirror, 1.0)
    assert backlog is not None
    assert (backlog.first_index, backlog.next_index, backlog.done) == (0, 4, False)
    assert (backlog.project_id, backlog.app_id, backlog.reply_id) == ("p", "a", "r1")
    assert decode_events(backlog.payload) == log.events
    assert _take(mirror, 1.1) is None  # nothing new: nothing to write

    log.append("c")
    log.append("d")
    batch = _take(mirror, 1.2)
    assert batch is not None
    assert (batch.first_index, batch.next_index, batch.done) == (4, 6, False)
    assert decode_events(batch.payload) == ["c", "d"]
    assert not mirror.finished


def test_the_outcome_ends_the_mirror_with_one_batch_marked_done() -> None:
    log = ReplyLog()
    log.append(TurnStarted(HISTORY, "Three?"))
    mirror = Mirror(_reply(log))
    _take(mirror, 0.0)
    outcome = TurnCompleted(assistant_item("3."), "answer_question", Timings(1.0, 2.0))
    log.append("3.")
    log.append(outcome)
    log.finish()
    last = _take(mirror, 5.0)
    assert last is not None and last.done
    assert (last.first_index, last.next_index) == (1, 3)
    assert decode_events(last.payload) == ["3.", outcome]
    assert mirror.finished and mirror.finished_at == 5.0
    assert _take(mirror, 6.0) is None


def test_a_batch_that_was_not_written_is_offered_again_with_what_came_since() -> None:
    log = ReplyLog()
    log.append(TurnStarted(HISTORY, "Three?"))
    mirror = Mirror(_reply(log))
    _take(mirror, 0.0)
    log.append("a")
    failed = mirror.next_batch()  # its write failed: not confirmed
    assert failed is not None and (failed.first_index, failed.next_index) == (1, 2)
    log.append("b")
    retried = mirror.next_batch()
    assert retried is not None and (retried.first_index, retried.next_index) == (1, 3)
    assert decode_events(retried.payload) == ["a", "b"]
    mirror.written(retried, 1.0)
    assert mirror.next_batch() is None


def test_a_mirror_of_an_empty_log_still_writes_a_first_batch() -> None:
    mirror = Mirror(_reply())
    first = _take(mirror, 0.0)
    assert first is not None
    assert (first.first_index, first.next_index, first.done) == (0, 0, False)
    assert decode_events(first.payload) == []
    assert _take(mirror, 0.1) is None


def test_a_finished_reply_is_mirrored_whole_in_one_batch() -> None:
    log = ReplyLog()
    events = [TurnStarted(HISTORY, "x"), "y", TurnInterrupted(None, None, REPLY_STOPPED)]
    for event in events:
        log.append(event)
    log.finish()
    mirror = Mirror(_reply(log))
    only = _take(mirror, 0.0)
    assert only is not None and only.done and only.next_index == 3
    assert _take(mirror, 0.0) is None


async def test_batches_taken_at_random_moments_rebuild_the_log_exactly() -> None:
    """Whatever the timing of appends and takes, the batches cover every event once, and
    a reader that reads overlapping batches (a re-read) still repeats nothing."""
    rng = random.Random(3)
    for _ in range(50):
        source = ReplyLog()
        mirror = Mirror(_reply(source))
        written: list[MirroredBatch] = []
        events = [TurnStarted(HISTORY, "q"), StepStarted("answer_question")]
        events += [f"t{i} " for i in range(rng.randint(0, 40))]
        events.append(TurnInterrupted(None, "answer_question"))
        for event in events:
            source.append(event)
            if rng.random() < 0.3:
                if (batch := _take(mirror, 0.0)) is not None:
                    written.append(batch)
        source.finish()
        while (batch := _take(mirror, 0.0)) is not None:
            written.append(batch)
        assert [b.first_index for b in written[1:]] == [b.next_index for b in written[:-1]]
        assert _events(written) == events
        assert [b.done for b in written] == [False] * (len(written) - 1) + [True]

        copy = ReplyLog()
        reader = asyncio.create_task(_collect(copy))
        for index, batch in enumerate(written):
            # The reader reads from where its copy ends, and sometimes gets an earlier
            # batch again (read twice over a slow poll).
            if index and rng.random() < 0.5:
                assert apply_batch(copy, written[index - 1]) is False
            apply_batch(copy, batch)
            await asyncio.sleep(0)
        assert copy.done and copy.events == events
        assert await reader == events


def test_a_batch_that_leaves_a_gap_is_refused() -> None:
    copy = ReplyLog()
    gap = MirroredBatch("p", "a", "r1", 2, 3, False, '["x"]')
    with pytest.raises(ValueError):
        apply_batch(copy, gap)
    assert copy.events == []


def test_turn_numbers_and_ranks_order_the_replies_of_a_conversation() -> None:
    earlier = ReplyLog()
    earlier.append(TurnStarted(HISTORY[:2], "Two?"))
    earlier.finish()
    later = ReplyLog()
    later.append(TurnStarted(HISTORY, "Three?"))
    assert turn_number(_reply(earlier)) == 2
    assert turn_number(_reply(later)) == 3
    assert rank(_reply(later)) > rank(_reply(earlier))
    later.finish()
    running_same_turn = ReplyLog()
    running_same_turn.append(TurnStarted(HISTORY, "Three, again?"))
    assert rank(_reply(running_same_turn)) == rank(_reply(later)) + 1


async def _collect(log: ReplyLog) -> list:
    return [event async for event in log.read(0)]
