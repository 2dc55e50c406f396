"""The one thread that writes a process's Burr tracking, in the order it was submitted.

Burr calls its tracking hooks on the thread that runs the application: our event loop.
Hooks here only take their timestamps and queue a job; the serialising and writing happen
on this thread. Jobs run in batches: a batch ends ``LINGER_S`` after its first job (or
at ``flush``), and then the destination's ``end_batch`` writes what its jobs collected in
one go: one database transaction for all of a batch's rows, rather than one for each of
the dozen entries a turn writes as its steps run.

The thread wakes for a batch's first job and then sleeps until the batch ends, running
the batch's jobs then, not as each is queued: a dozen jobs per turn would otherwise wake
it a dozen times, each wake-up a hand-over of the interpreter lock from the event loop
and back. An application's tracking client ends the batch when it closes (``hurry``), so
a turn's log is complete as soon as the turn is over, as it was when jobs ran one by one.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from burr.core.application import ApplicationGraph
from burr.tracking.common.models import ApplicationModel

logger = logging.getLogger(__name__)

# How long a batch collects jobs after its first one.
LINGER_S = 0.25


def _end_of_batch() -> None:
    """A marker job: ``flush`` submits it to end the batch without waiting for the linger."""


class TrackingWriter:
    """A single daemon thread that runs tracking jobs in the order they were submitted."""

    def __init__(self, end_batch: Callable[[], None] | None = None) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._end_batch = end_batch
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pending = 0
        self._idle = threading.Condition(self._lock)
        self._described: tuple[tuple, str] | None = None  # see ``describe``
        # Set by ``flush`` and ``close``: end the batch now, not at its linger's end.
        self._hurry = threading.Event()

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
            first = self._jobs.get()  # a batch starts with its first job
            if first is not None and first is not _end_of_batch:
                self._guarded(first)
                self._hurry.wait(LINGER_S)  # the rest of the batch, queued meanwhile
            self._hurry.clear()
            # Submitted jobs run (``flush`` markers too; ``close``'s None is no submission).
            stop = first is None
            done = 0 if stop else 1
            while True:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    continue
                done += 1
                if job is not _end_of_batch:
                    self._guarded(job)
            # Keep no job past its batch: one left in a local while the thread idles would
            # keep alive what it holds (a failed step's exception, and through its traceback
            # the turn) until the next batch.
            first = job = None
            if self._end_batch is not None:
                self._guarded(self._end_batch)
            with self._lock:
                self._pending -= done
                if self._pending == 0:
                    self._idle.notify_all()
            if stop:
                return

    @staticmethod
    def _guarded(job: Callable[[], None]) -> None:
        try:
            job()
        except Exception:  # a tracking failure must never take a conversation down
            logger.exception("Burr tracking write failed")

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
        """Block until every submitted job has run and its batch is written (shutdown, upkeep
        and tests); False on timeout."""
        with self._lock:
            if self._pending == 0:
                return True
        self._hurry.set()  # before the marker: the batch it ends clears it
        self.submit(_end_of_batch)
        with self._lock:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def hurry(self) -> None:
        """End the batch collecting now, without waiting for its linger (and without
        waiting for it to be written, as ``flush`` does)."""
        self._hurry.set()

    def close(self, timeout: float = 10.0) -> None:
        self.flush(timeout)
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            self._hurry.set()
            thread.join(timeout)
