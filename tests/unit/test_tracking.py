"""Tracking writes happen off the event loop, in order, in Burr's own format, and log each
step's new messages rather than the whole history."""

from __future__ import annotations

import functools
import json
import threading
import time
import weakref
from datetime import datetime
from pathlib import Path

import pytest
from burr.core import ApplicationBuilder, State, action

from chatbot.domain.chat_items import ChatHistory, as_history, assistant_item, user_item
from chatbot.tracking import writer as writer_module
from chatbot.tracking.client import OffloopTrackingClient
from chatbot.tracking.files import FileSink
from chatbot.tracking.writer import TrackingWriter


@action(reads=["n"], writes=["n"])
def bump(state: State) -> tuple[dict, State]:
    return {"n": state["n"] + 1}, state.update(n=state["n"] + 1)


def _app(tracker: OffloopTrackingClient):
    return (
        ApplicationBuilder()
        .with_actions(bump=bump)
        .with_transitions(("bump", "bump"))
        .with_entrypoint("bump")
        .with_state(n=0)
        .with_identifiers(app_id="app")
        .with_tracker(tracker)
        .build()
    )


def test_hooks_return_while_the_writer_is_blocked(tmp_path: Path) -> None:
    sink = FileSink(tmp_path)
    writer = TrackingWriter(end_batch=sink.end_batch)
    release = threading.Event()
    writer.submit(lambda: release.wait(10))  # the disk is "stuck"
    tracker = OffloopTrackingClient("proj", sink, writer)
    app = _app(tracker)
    app.step()
    app.step()  # both steps ran their hooks while nothing could be written
    log = tmp_path / "proj" / "app" / "log.jsonl"
    assert not log.exists() or log.read_text() == ""
    release.set()
    assert writer.flush(10)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(line["type"], line["sequence_id"]) for line in lines] == [
        ("begin_entry", 0),
        ("end_entry", 0),
        ("begin_entry", 1),
        ("end_entry", 1),
    ]
    assert lines[-1]["state"]["n"] == 2
    writer.close()


def test_a_closed_applications_log_is_complete_without_waiting_for_its_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A batch that would otherwise collect for an hour: only the close can end it.
    monkeypatch.setattr(writer_module, "LINGER_S", 3600.0)
    sink = FileSink(tmp_path)
    writer = TrackingWriter(end_batch=sink.end_batch)
    tracker = OffloopTrackingClient("proj", sink, writer)
    app = _app(tracker)
    app.step()
    tracker.close()
    log = tmp_path / "proj" / "app" / "log.jsonl"
    deadline = time.monotonic() + 10  # liveness, not speed: an hour is the alternative
    while time.monotonic() < deadline and len(_lines(log)) < 2:
        time.sleep(0.01)
    assert [line["type"] for line in _lines(log)] == ["begin_entry", "end_entry"]
    writer.close()


def test_the_writer_keeps_nothing_of_a_job_once_its_batch_is_written() -> None:
    # A job that held a failed step's exception kept the whole turn alive (through the
    # traceback) while the thread waited for the next batch.
    class Held:
        pass

    writer = TrackingWriter()
    held = Held()
    alive = weakref.ref(held)
    writer.submit(functools.partial(id, held))  # the first job of its batch
    writer.submit(functools.partial(id, held))  # and the last
    del held
    assert writer.flush(10)
    assert alive() is None  # freed by reference counting, with no collector run
    writer.close()


def _lines(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_timestamps_are_taken_when_the_step_runs_not_when_written(tmp_path: Path) -> None:
    sink = FileSink(tmp_path)
    writer = TrackingWriter(end_batch=sink.end_batch)
    release = threading.Event()
    writer.submit(lambda: release.wait(10))
    app = _app(OffloopTrackingClient("proj", sink, writer))
    app.step()
    released_at = datetime.now()  # the step is over; nothing has been written yet
    release.set()
    writer.flush(10)
    begin, end = [json.loads(x) for x in (tmp_path / "proj/app/log.jsonl").read_text().splitlines()]
    assert datetime.fromisoformat(begin["start_time"]) <= released_at
    assert datetime.fromisoformat(end["end_time"]) <= released_at
    writer.close()


@action(reads=["chat_history"], writes=["chat_history"])
def say(state: State, text: str) -> tuple[dict, State]:
    history = as_history(state["chat_history"]).plus(user_item(text))
    return {}, state.update(chat_history=history)


@action(reads=["chat_history"], writes=["chat_history", "response"])
def reply(state: State) -> tuple[dict, State]:
    item = assistant_item(f"reply to message {len(state['chat_history'])}")
    return {}, state.update(response=item, chat_history=state["chat_history"].plus(item))


@action(reads=["chat_history"], writes=["chat_history"])
def forget_first(state: State) -> tuple[dict, State]:
    return {}, state.update(chat_history=ChatHistory(state["chat_history"][1:]))


@action(reads=["chat_history"], writes=["seen"])
def look(state: State) -> tuple[dict, State]:
    return {}, state.update(seen=len(state["chat_history"]))


def _chat_app(tracker: OffloopTrackingClient, history: ChatHistory):
    return (
        ApplicationBuilder()
        .with_actions(say=say, look=look)
        .with_transitions(("say", "look"), ("look", "say"))
        .with_entrypoint("say")
        .with_state(chat_history=history, seen=0)
        .with_identifiers(app_id="chat")
        .with_tracker(tracker)
        .build()
    )


def _end_entries(log: Path) -> list[tuple[int, dict]]:
    """(bytes, entry) of every end entry in the log, in order."""
    lines = log.read_bytes().splitlines()
    return [
        (len(line), entry) for line in lines if (entry := json.loads(line))["type"] == "end_entry"
    ]


def test_each_step_logs_the_messages_it_added_and_the_history_length(tmp_path: Path) -> None:
    sink = FileSink(tmp_path)
    writer = TrackingWriter(end_batch=sink.end_batch)
    earlier = ChatHistory([user_item("stored 1"), user_item("stored 2")])
    app = _chat_app(OffloopTrackingClient("proj", sink, writer), earlier)
    app.step(inputs={"text": "hello"})
    app.step()
    app.step(inputs={"text": "again"})
    assert writer.flush(10)
    states = [entry["state"] for _, entry in _end_entries(tmp_path / "proj/chat/log.jsonl")]
    assert [s["chat_history_added"] for s in states] == [
        [user_item("hello")],
        [],
        [user_item("again")],
    ]
    assert [s["chat_history_length"] for s in states] == [3, 3, 4]
    assert all("chat_history" not in s for s in states)
    assert [s["seen"] for s in states] == [0, 3, 3]  # other fields are logged as they are
    writer.close()


def test_a_step_that_rewrites_the_history_logs_it_whole(tmp_path: Path) -> None:
    sink = FileSink(tmp_path)
    writer = TrackingWriter(end_batch=sink.end_batch)
    earlier = ChatHistory([user_item("a"), user_item("b")])
    tracker = OffloopTrackingClient("proj", sink, writer)
    app = (
        ApplicationBuilder()
        .with_actions(forget_first=forget_first, say=say)
        .with_transitions(("forget_first", "say"))
        .with_entrypoint("forget_first")
        .with_state(chat_history=earlier)
        .with_identifiers(app_id="chat")
        .with_tracker(tracker)
        .build()
    )
    app.step()
    assert writer.flush(10)
    [(_, entry)] = _end_entries(tmp_path / "proj/chat/log.jsonl")
    assert entry["state"]["chat_history"] == [user_item("b")]
    assert "chat_history_added" not in entry["state"]
    writer.close()


def test_logged_bytes_per_step_do_not_grow_with_the_history(tmp_path: Path) -> None:
    sink = FileSink(tmp_path)
    writer = TrackingWriter(end_batch=sink.end_batch)
    app = _chat_app(OffloopTrackingClient("proj", sink, writer), ChatHistory())
    for n in range(300):
        app.step(inputs={"text": f"message {n:04d} " + "x" * 200})
        app.step()
    assert writer.flush(10)
    sizes = [size for size, entry in _end_entries(tmp_path / "proj/chat/log.jsonl")]
    assert len(sizes) == 600
    # Step 600 sees 300 messages of ~230 bytes; logging them would be ~70 KB a line.
    early, late = sum(sizes[:20]), sum(sizes[-20:])
    assert late <= 1.1 * early, (early, late)
    writer.close()


async def test_a_synchronous_step_run_by_burrs_async_runner_logs_the_state_it_produced(
    tmp_path: Path,
) -> None:
    """Burr's ``astep`` hands a sync action's post_run_step the state from before the step."""
    sink = FileSink(tmp_path)
    writer = TrackingWriter(end_batch=sink.end_batch)
    tracker = OffloopTrackingClient("proj", sink, writer)
    app = _chat_app(tracker, ChatHistory())
    await app.astep(inputs={"text": "hello"})  # `say` is synchronous
    await app.astep()
    tracker.close()
    assert writer.flush(10)
    ends = [entry for _, entry in _end_entries(tmp_path / "proj/chat/log.jsonl")]
    assert [e["action"] for e in ends] == ["say", "look"]
    assert ends[0]["state"]["chat_history_added"] == [user_item("hello")]
    assert ends[0]["state"]["chat_history_length"] == 1
    assert ends[0]["state"]["__SEQUENCE_ID"] == ends[0]["sequence_id"] == 0
    assert ends[0]["state"]["__PRIOR_STEP"] == "say"
    # The last step has no next one: it is written at close, with the state Burr gave.
    assert ends[1]["state"]["chat_history_added"] == []
    assert ends[1]["state"]["__SEQUENCE_ID"] == 1
    writer.close()


def test_a_field_holding_an_earlier_message_points_to_it(tmp_path: Path) -> None:
    sink = FileSink(tmp_path)
    writer = TrackingWriter(end_batch=sink.end_batch)
    app = (
        ApplicationBuilder()
        .with_actions(say=say, reply=reply)
        .with_transitions(("say", "reply"), ("reply", "say"))
        .with_entrypoint("say")
        .with_state(chat_history=ChatHistory())
        .with_identifiers(app_id="chat")
        .with_tracker(OffloopTrackingClient("proj", sink, writer))
        .build()
    )
    for text in ("one", "two"):
        app.step(inputs={"text": text})
        app.step()
    assert writer.flush(10)
    states = [entry["state"] for _, entry in _end_entries(tmp_path / "proj/chat/log.jsonl")]
    first_reply = assistant_item("reply to message 1")
    # The step that added the reply logs it; the next turn's step points to it.
    assert states[1]["response"] == first_reply
    assert states[1]["chat_history_added"] == [first_reply]
    assert states[2]["response"] == {"chat_history_item": 1}
    assert states[2]["chat_history_added"] == [user_item("two")]
    assert states[3]["response"] == assistant_item("reply to message 3")
    writer.close()
