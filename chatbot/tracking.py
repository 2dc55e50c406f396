"""Burr tracking that never blocks the event loop.

Burr's ``LocalTrackingClient`` writes (and serialises the whole state into) a JSON line
synchronously inside every hook, on the thread that runs the application: our event
loop. With long conversations and many streams that is disk I/O and CPU in the hot path
of every other stream. ``OffloopTrackingClient`` keeps Burr's file format (so Burr's UI
reads it unchanged) but takes the timestamps in the hook and does the serialising and
writing on one background thread, in submission order.
"""

from __future__ import annotations

import datetime
import logging
import os
import queue
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from burr.core import State, serde
from burr.tracking.client import LocalTrackingClient
from burr.tracking.common.models import BeginEntryModel, EndEntryModel

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


class OffloopTrackingClient(LocalTrackingClient):
    """``LocalTrackingClient`` whose writes happen on a ``TrackingWriter`` thread."""

    def __init__(self, project: str, storage_dir: str | Path, writer: TrackingWriter) -> None:
        super().__init__(project=project, storage_dir=str(storage_dir))
        self._writer = writer

    def copy(self) -> OffloopTrackingClient:
        return OffloopTrackingClient(self.project_id, self.raw_storage_dir, self._writer)

    # Opening the log and writing graph/metadata files happens on the writer thread too;
    # every later job for this client is queued behind it, so the file is open in time.
    def post_application_create(self, **kwargs: Any) -> None:
        parent = super().post_application_create
        self._writer.submit(lambda: parent(**kwargs))

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
        name = action.name
        visible = {k: v for k, v in inputs.items() if k not in _INTERNAL_INPUTS}

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
        end_time = datetime.datetime.now()
        name = action.name

        def job() -> None:
            self._write_line(
                EndEntryModel(
                    end_time=end_time,
                    action=name,
                    result=serde.serialize(result, **self.serde_kwargs),
                    sequence_id=sequence_id,
                    exception=_format_exception(exception),
                    state=state.serialize(**self.serde_kwargs),
                )
            )

        self._writer.submit(job)

    def close(self) -> None:
        """Close this client's log file once its queued writes are done."""

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
