"""A Burr tracking client that never blocks the event loop, whatever it writes to.

Burr's ``LocalTrackingClient`` writes (and serialises the whole state into) a JSON line
synchronously inside every hook, on the thread that runs the application: our event
loop. With long conversations and many streams that is I/O and CPU in the hot path of
every other stream. ``OffloopTrackingClient`` keeps Burr's entries (so Burr's UI reads
them unchanged) but takes the timestamps in the hook and hands the serialising and
writing to the process's ``TrackingWriter`` thread, in submission order. Where the
entries go is the sink's business: Burr's files (``files``) or the conversation database
(``database``). Each step logs the messages it added, not the whole history
(``state_log``).

One more correction: Burr's async runner hands a synchronous step's ``post_run_step``
the state the step started from, so the ``prompt`` step's logged state lacked the
prompt it stored. Such a step's end entry is written with the state the next step
starts from, which is the one it produced.
"""

from __future__ import annotations

import datetime
import traceback
from dataclasses import dataclass
from typing import Any

from burr.common.types import ParentPointer
from burr.core import State, serde
from burr.core.application import ApplicationGraph
from burr.tracking.client import LocalTrackingClient
from burr.tracking.common.models import BeginEntryModel, EndEntryModel

from chatbot.tracking.sinks import AppLog, NewApplication, TrackingSink
from chatbot.tracking.state_log import HISTORY, HistoryMark, state_for_log
from chatbot.tracking.writer import TrackingWriter

_INTERNAL_INPUTS = frozenset({"__tracer", "__context"})


def _format_exception(exception: BaseException | None) -> str | None:
    if exception is None:
        return None
    return "".join(traceback.format_exception(exception))


@dataclass(slots=True)
class _StepStart:
    state: State
    history: HistoryMark | None


@dataclass(slots=True)
class _StepEnd:
    end_time: datetime.datetime
    action: str
    result: dict | None
    sequence_id: int
    exception: BaseException | None
    history: HistoryMark | None
    state_given: State  # what Burr handed post_run_step


class OffloopTrackingClient(LocalTrackingClient):
    """``LocalTrackingClient`` whose writes happen on a ``TrackingWriter`` thread."""

    def __init__(self, project: str, sink: TrackingSink, writer: TrackingWriter) -> None:
        # Burr's base class wants a directory; only the file sink ever writes there.
        super().__init__(project=project, storage_dir=str(sink.directory))
        self._sink = sink
        self._writer = writer
        self.f: AppLog | None = None
        # The state each running step started from, by sequence id (one at a time).
        self._started: dict[int, _StepStart] = {}
        # A step whose end entry waits for the state it produced (see ``post_run_step``).
        self._awaiting_state: _StepEnd | None = None

    def copy(self) -> OffloopTrackingClient:
        return OffloopTrackingClient(self.project_id, self._sink, self._writer)

    # Opening the application's log happens on the writer thread too; every later job for
    # this client is queued behind it, so the log is open in time.
    def post_application_create(
        self,
        *,
        app_id: str,
        partition_key: str | None,
        application_graph: ApplicationGraph,
        parent_pointer: ParentPointer | None,
        spawning_parent_pointer: ParentPointer | None,
        **kwargs: Any,
    ) -> None:
        """Open the application's log at the sink. Burr's own method describes the graph
        anew each time, reading every action's source with ``inspect`` (a tokenizer pass per
        action per new conversation); every application here runs one graph, described once
        (``TrackingWriter.describe``), and only for an application the sink has not seen."""
        created = NewApplication(
            project=self.project_id,
            app_id=app_id,
            partition_key=partition_key,
            parent=parent_pointer,
            spawning_parent=spawning_parent_pointer,
            describe=lambda: self._writer.describe(application_graph),
        )

        def create() -> None:
            self.f = self._sink.open(created)

        self._writer.submit(create)

    def _append_write_line(self, model: Any) -> None:
        self._writer.submit(lambda: self._write_line(model))

    def _write_line(self, model: Any) -> None:
        if self.f is not None:
            self.f.append(model)

    def pre_run_step(
        self, *, state: State, action: Any, inputs: dict, sequence_id: int, **future_kwargs: Any
    ) -> None:
        start_time = datetime.datetime.now()
        self._end_awaiting_step(state)
        name = action.name
        visible = {k: v for k, v in inputs.items() if k not in _INTERNAL_INPUTS}
        history = state.get(HISTORY)
        mark = HistoryMark(history) if isinstance(history, list) else None
        self._started[sequence_id] = _StepStart(state, mark)

        def job() -> None:
            self._write_line(
                BeginEntryModel(
                    start_time=start_time,
                    action=name,
                    inputs=serde.serialize(visible, **self.serde_kwargs),
                    sequence_id=sequence_id,
                )
            )

        self._writer.submit(job)

    def post_run_step(
        self,
        *,
        state: State,
        action: Any,
        result: dict | None,
        sequence_id: int,
        exception: BaseException | None,
        **future_kwargs: Any,
    ) -> None:
        started = self._started.pop(sequence_id, None)
        end = _StepEnd(
            end_time=datetime.datetime.now(),
            action=action.name,
            result=result,
            sequence_id=sequence_id,
            exception=exception,
            history=started.history if started is not None else None,
            state_given=state,
        )
        if exception is None and started is not None and state is started.state:
            # Burr's async runner hands a synchronous action's post_run_step the state the
            # step started from, not the one it produced (0.43; fixed upstream after it,
            # apache/burr#895, and then this branch is never taken). The next step starts
            # from the produced state: the entry is written then (or at close, as it is).
            self._awaiting_state = end
            return
        self._submit_end(end, state)

    def _end_awaiting_step(self, state: State) -> None:
        if self._awaiting_state is not None:
            end, self._awaiting_state = self._awaiting_state, None
            self._submit_end(end, state)

    def _submit_end(self, end: _StepEnd, state: State) -> None:
        def job() -> None:
            self._write_line(
                EndEntryModel(
                    end_time=end.end_time,
                    action=end.action,
                    result=serde.serialize(end.result, **self.serde_kwargs),
                    sequence_id=end.sequence_id,
                    exception=_format_exception(end.exception),
                    state=state_for_log(state, end.history, end.sequence_id, self.serde_kwargs),
                )
            )

        self._writer.submit(job)

    def close(self) -> None:
        """Close this client's log file once its queued writes are done, and have them
        done now: the application's log is complete when its turn is over."""
        if self._awaiting_state is not None:
            end, self._awaiting_state = self._awaiting_state, None
            self._submit_end(end, end.state_given)

        def job() -> None:
            if self.f is not None:
                self.f.close()
                self.f = None

        self._writer.submit(job)
        self._writer.hurry()

    def __del__(self) -> None:
        # Every queued job holds a reference to this client, so by now none is pending.
        f = getattr(self, "f", None)
        if f is not None:
            f.close()
