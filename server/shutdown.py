"""Graceful shutdown: on SIGTERM, finish in-flight replies within a grace period.

uvicorn, on SIGTERM, stops accepting connections and waits for open ones; it has no way
to tell our streams to wrap up. While the app runs, ``relay_shutdown_signals`` puts a
handler in front of uvicorn's for SIGTERM and SIGINT (in every worker process) that first
tells the registry of running turns to drain: it refuses new turns, lets running ones finish for
``CHATBOT_SHUTDOWN_GRACE_S`` and then ends the rest with an ``error`` frame, so each
client learns why and each conversation is stored consistently before the exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def relay_shutdown_signals(on_signal: Callable[[], None]) -> Iterator[None]:
    """Run ``on_signal`` on the event loop at the first SIGTERM/SIGINT, then the old handler."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals can only be handled in the main thread (e.g. under a test client)
        return
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    notified = False

    def handler(sig: int, frame: FrameType | None) -> None:
        nonlocal notified
        if not notified:
            notified = True
            loop.call_soon_threadsafe(on_signal)
        chained = previous[sig]
        if callable(chained):  # uvicorn's own handler: it stops accepting and waits for us
            chained(sig, frame)

    for sig in SIGNALS:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, old)
