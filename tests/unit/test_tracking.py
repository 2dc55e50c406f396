"""Tracking writes happen off the event loop, in order, in Burr's own format."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path

from burr.core import ApplicationBuilder, State, action

from chatbot.tracking import OffloopTrackingClient, TrackingWriter


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
    writer = TrackingWriter()
    release = threading.Event()
    writer.submit(lambda: release.wait(10))  # the disk is "stuck"
    tracker = OffloopTrackingClient("proj", tmp_path, writer)
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


def test_timestamps_are_taken_when_the_step_runs_not_when_written(tmp_path: Path) -> None:
    writer = TrackingWriter()
    release = threading.Event()
    writer.submit(lambda: release.wait(10))
    app = _app(OffloopTrackingClient("proj", tmp_path, writer))
    app.step()
    released_at = datetime.now()  # the step is over; nothing has been written yet
    release.set()
    writer.flush(10)
    begin, end = [json.loads(x) for x in (tmp_path / "proj/app/log.jsonl").read_text().splitlines()]
    assert datetime.fromisoformat(begin["start_time"]) <= released_at
    assert datetime.fromisoformat(end["end_time"]) <= released_at
    writer.close()
