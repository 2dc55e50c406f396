"""One timer per upstream reply stream, for its read timeout and its deadline.

A read timeout in the HTTP client re-arms a timer on every network read (aiohttp
allocates a ``TimerHandle`` per read: per token, on a reply stream), and aiohttp's never
fires while its C parser sits on a malformed chunk-size line: the turn hangs, even once
the upstream has closed the connection. A reply stream is therefore read with no client read
timeout and watched here instead. Each read notes its time on the watchdog (one clock
read); the watchdog's one timer wakes once per read timeout, goes back to sleep while
reads keep coming, and otherwise cancels the task reading the stream, which then raises
``upstream_timeout``, as ``asyncio.timeout`` does (cancel, then uncancel on the way out).
The reply's deadline, which a trickle inside the read timeout would never meet, is
enforced by the same timer.

While the stream's reader is suspended at a ``yield`` (``pause``/``resume``), the task
runs its consumer's code, which a cancellation must never hit: the timer then waits, and
a deadline that passed meanwhile is raised by ``resume``.
"""

from __future__ import annotations

import asyncio
import math
from types import TracebackType

from chatbot.domain.errors import TurnError

_SILENT = "The language model did not answer in time."
_OVERDUE = "The language model's reply took longer than the server allows."


class StreamWatchdog:
    """Use as ``with StreamWatchdog(...) as watch:`` around the request and its reading,
    calling ``watch.fed()`` on every read, ``pause``/``resume`` around each ``yield`` and
    ``watch.finished()`` once the reply is complete (its deadline no longer applies to
    draining what follows)."""

    __slots__ = ("_read_timeout_s", "_deadline", "last_read", "_loop", "_task", "_timer",
                 "_cancelling", "_fired", "_paused", "_cancelled")  # fmt: skip

    def __init__(self, read_timeout_s: float | None, deadline_in_s: float | None) -> None:
        self._read_timeout_s = read_timeout_s
        self._loop = asyncio.get_running_loop()
        now = self._loop.time()
        self._deadline = now + deadline_in_s if deadline_in_s is not None else math.inf
        self.last_read = now
        self._timer: asyncio.TimerHandle | None = None
        self._fired: str | None = None
        self._paused = False
        self._cancelled = False  # whether the timer cancelled the task

    def __enter__(self) -> StreamWatchdog:
        task = asyncio.current_task()
        assert task is not None, "a watchdog watches a task"
        self._task = task
        self._cancelling = task.cancelling()
        self._arm()
        return self

    def fed(self) -> None:
        """A read arrived: the stream is not silent."""
        self.last_read = self._loop.time()

    def pause(self) -> None:
        """The reader hands a delta to its consumer: the task is not reading."""
        self._paused = True

    def resume(self) -> None:
        """The reader reads again; raises ``upstream_timeout`` if the deadline passed."""
        self._paused = False
        if self._fired is not None:
            raise TurnError("upstream_timeout", self._fired)

    def finished(self) -> None:
        """The reply is whole: its deadline no longer applies (the read timeout still
        does, to the draining of what follows)."""
        self._deadline = math.inf

    def _arm(self) -> None:
        when = self._deadline
        if self._read_timeout_s is not None:
            when = min(when, self.last_read + self._read_timeout_s)
        self._timer = self._loop.call_at(when, self._check) if when != math.inf else None

    def _check(self) -> None:
        self._timer = None
        now = self._loop.time()
        if now >= self._deadline:
            self._fired = _OVERDUE
        elif self._paused:  # the consumer's time is not the upstream's silence
            self.last_read = now
            self._arm()
            return
        elif self._read_timeout_s is not None and now - self.last_read >= self._read_timeout_s:
            self._fired = _SILENT
        else:  # reads came since the timer was set: sleep until the next possible silence
            self._arm()
            return
        if not self._paused:  # else ``resume`` raises it, in the reader, not in the consumer
            self._cancelled = True
            self._task.cancel()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._cancelled:
            return
        # Ours was the cancellation unless someone else (a stop, a shutdown) cancelled too.
        if self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            raise TurnError("upstream_timeout", self._fired) from exc
