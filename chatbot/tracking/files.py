"""Burr tracking that never blocks the event loop.

Burr's ``LocalTrackingClient`` writes (and serialises the whole state into) a JSON line
synchronously inside every hook, on the thread that runs the application: our event
loop. With long conversations and many streams that is disk I/O and CPU in the hot path
of every other stream. ``OffloopTrackingClient`` keeps Burr's file format (so Burr's UI
reads it unchanged) but takes the timestamps in the hook and does the serialising and
writing on one background thread, in submission order.

It also keeps the bytes logged per turn from growing with the conversation. Burr logs
the whole state at the end of every step, chat history included: four copies of the
conversation per turn, so a 200-turn conversation left 76 MB of log. Here a step's
logged state carries, in place of ``chat_history``, the messages that step added
(``chat_history_added``) and the history's length after it (``chat_history_length``);
a field holding an earlier message (``response``, until the next reply) points to it.
Burr's UI still shows every step, its state, the messages it added and the stream
timings; the full conversation is in the database.

One more correction: Burr's async runner hands a synchronous step's ``post_run_step``
the state the step started from, so the ``prompt`` step's logged state lacked the
prompt it stored. Such a step's end entry is written with the state the next step
starts from, which is the one it produced.
"""

from __future__ import annotations

import datetime
import logging
import os
import queue
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from burr.common.types import ParentPointer
from burr.core import State, serde
from burr.core.application import SEQUENCE_ID, ApplicationGraph
from burr.tracking.client import LocalTrackingClient
from burr.tracking.common.models import (
    ApplicationMetadataModel,
    ApplicationModel,
    BeginEntryModel,
    EndEntryModel,
    PointerModel,
)

from chatbot.domain.chat_items import ChatHistory

logger = logging.getLogger(__name__)

_INTERNAL_INPUTS = frozenset({"__tracer", "__context"})


class TrackingWriter:
    """A single daemon thread that runs file-writing jobs in the order they were submitted."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pending = 0
        self._idle = threading.Condition(self._lock)
        self._described: tuple[tuple, str] | None = None  # see ``describe``

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="burr-tracking-writer", daemon=True
                )
                self._thread.start()
        self._jobs.put(job)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            except Exception:  # a tracking failure must never take a conversation down
                logger.exception("Burr tracking write failed")
            finally:
                with self._lock:
                    self._pending -= 1
                    if self._pending == 0:
                        self._idle.notify_all()

    def describe(self, graph: ApplicationGraph) -> str:
        """The graph as Burr's UI reads it (``graph.json``), computed once per graph (Burr
        makes an ``ApplicationGraph`` per application: the key is its actions, the same
        objects in every application of one graph, and its entry point); on the writer
        thread only."""
        key = (*map(id, graph.actions), graph.entrypoint.name)
        if self._described is None or self._described[0] != key:
            self._described = (
                key,
                ApplicationModel.from_application_graph(graph).model_dump_json(),
            )
        return self._described[1]

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Block until every submitted job has run (shutdown and tests); False on timeout."""
        with self._lock:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float = 10.0) -> None:
        self.flush(timeout)
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            thread.join(timeout)


def _format_exception(exception: BaseException | None) -> str | None:
    if exception is None:
        return None
    return "".join(traceback.format_exception(exception))


_JSON_SCALARS = (str, int, float, bool, type(None))


def _is_plain_json(value: Any) -> bool:
    if isinstance(value, (*_JSON_SCALARS, ChatHistory)):  # histories hold only our items
        return True
    if isinstance(value, list):
        # Chat items are flat dicts of strings: checking their values is enough.
        return all(
            isinstance(item, dict) and all(isinstance(v, _JSON_SCALARS) for v in item.values())
            if not isinstance(item, _JSON_SCALARS)
            else True
            for item in value
        )
    if isinstance(value, dict):
        return all(isinstance(v, _JSON_SCALARS) for v in value.values())
    return False


HISTORY = "chat_history"
HISTORY_ADDED = "chat_history_added"
HISTORY_LENGTH = "chat_history_length"


class HistoryMark:
    """Where a step's history started: its length and its last item (kept by reference)."""

    __slots__ = ("length", "last")

    def __init__(self, history: Sequence[Any]) -> None:
        self.length = len(history)
        self.last = history[-1] if history else None

    def added_in(self, history: Sequence[Any]) -> list[Any] | None:
        """The items appended since the mark, or None when ``history`` does not extend it."""
        if len(history) < self.length:
            return None
        if self.length:
            last = history[self.length - 1]
            if last is not self.last and last != self.last:
                return None
        return list(history[self.length :])


def _history_for_log(values: dict[str, Any], before: HistoryMark | None) -> None:
    """Replace the history in ``values`` by what the step added and its length.

    Earlier messages are logged once, by the step that added them: another field holding
    one of them (``response`` keeps the last reply until the next turn's) is logged as a
    pointer, ``{"chat_history_item": index}``. A step that rewrote the history instead
    of extending it (none of ours does) keeps it whole, so the log never misstates a
    conversation."""
    history = values.get(HISTORY)
    if not isinstance(history, list) or before is None:
        return
    added = before.added_in(history)
    if added is None:
        return
    del values[HISTORY]
    _point_to_earlier_messages(values, history, before.length)
    values[HISTORY_ADDED] = added
    values[HISTORY_LENGTH] = len(history)


# How many of the latest earlier messages a field is compared with: a reply stays in the
# state for the next turn, a few messages back at most, and the check stays O(1).
_POINTER_REACH = 4


def _point_to_earlier_messages(values: dict[str, Any], history: list[Any], start: int) -> None:
    recent = range(start - 1, max(start - _POINTER_REACH, 0) - 1, -1)
    for key, value in list(values.items()):
        if isinstance(value, dict):
            for index in recent:
                if history[index] is value or history[index] == value:
                    values[key] = {"chat_history_item": index}
                    break


def _state_for_log(
    state: State, before: HistoryMark | None, sequence_id: int, serde_kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The state as this client logs it at the end of step ``sequence_id``. Plain JSON
    values (all of ours) are handed to pydantic as they are, skipping Burr's recursive
    ``serde`` walk."""
    values = state.get_all()
    if SEQUENCE_ID in values:  # a state taken from the next step's start is one ahead
        values[SEQUENCE_ID] = sequence_id
    _history_for_log(values, before)
    if all(_is_plain_json(value) for value in values.values()):
        return values
    return State(values).serialize(**serde_kwargs)  # Burr's field and type serde


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

    def __init__(self, project: str, storage_dir: str | Path, writer: TrackingWriter) -> None:
        super().__init__(project=project, storage_dir=str(storage_dir))
        self._writer = writer
        # The state each running step started from, by sequence id (one at a time).
        self._started: dict[int, _StepStart] = {}
        # A step whose end entry waits for the state it produced (see ``post_run_step``).
        self._awaiting_state: _StepEnd | None = None

    def copy(self) -> OffloopTrackingClient:
        return OffloopTrackingClient(self.project_id, self.raw_storage_dir, self._writer)

    # Opening the log and writing graph/metadata files happens on the writer thread too;
    # every later job for this client is queued behind it, so the file is open in time.
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
        """Burr's files for a new application, as its ``LocalTrackingClient`` lays them out:
        the log opened for appending; the graph, the metadata and the parents' pointers to
        it written once. Burr's own method describes the graph anew each time, reading
        every action's source with ``inspect`` (a tokenizer pass per action per new
        conversation); every application here runs one graph, described once (``describe``)."""

        def create() -> None:
            self._ensure_dir_structure(app_id)
            folder = Path(self.storage_dir, app_id)
            log = folder / self.LOG_FILENAME
            self.f = open(log, "a", encoding="utf-8", errors="replace")  # noqa: SIM115 (Burr closes it)
            graph_file = folder / self.GRAPH_FILENAME
            if graph_file.exists():  # an application created before: nothing more to write
                return
            graph_file.write_text(self._writer.describe(application_graph), encoding="utf-8")
            metadata = ApplicationMetadataModel(
                partition_key=partition_key,
                parent_pointer=PointerModel.from_pointer(parent_pointer),
                spawning_parent_pointer=PointerModel.from_pointer(spawning_parent_pointer),
            )
            (folder / self.METADATA_FILENAME).write_text(
                metadata.model_dump_json(), encoding="utf-8"
            )
            self._log_child_relationships(
                parent_pointer, spawning_parent_pointer, app_id, partition_key=partition_key
            )

        self._writer.submit(create)

    def _append_write_line(self, model: Any) -> None:
        self._writer.submit(lambda: self._write_line(model))

    def _write_line(self, model: Any) -> None:
        if self.f is None:
            return
        self.f.write(model.model_dump_json() + "\n")
        self.f.flush()

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
                    state=_state_for_log(state, end.history, end.sequence_id, self.serde_kwargs),
                )
            )

        self._writer.submit(job)

    def close(self) -> None:
        """Close this client's log file once its queued writes are done."""
        if self._awaiting_state is not None:
            end, self._awaiting_state = self._awaiting_state, None
            self._submit_end(end, end.state_given)

        def job() -> None:
            if self.f is not None:
                self.f.close()
                self.f = None

        self._writer.submit(job)

    def __del__(self) -> None:
        # Every queued job holds a reference to this client, so by now none is pending.
        f = getattr(self, "f", None)
        if f is not None:
            f.close()


def tracking_dir_writable(path: Path) -> None:
    """Create the tracking directory up front so a bad path fails at start-up, not mid-turn."""
    path.mkdir(parents=True, exist_ok=True)
    if not os.access(path, os.W_OK):
        raise PermissionError(f"Burr tracking directory {path} is not writable")
