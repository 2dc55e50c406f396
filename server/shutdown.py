"""Graceful shutdown: on SIGTERM, finish in-flight replies within a grace period.

uvicorn, on SIGTERM, stops accepting connections and waits for open ones; it has no way
to tell our streams to wrap up. ``ChatbotServer`` passes the signal on to every
``Chatbot`` in the process, which refuses new turns, lets running ones finish for
``CHATBOT_SHUTDOWN_GRACE_S`` and then ends the rest with an ``error`` frame, so each
client learns why and each conversation is stored consistently before the exit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from types import FrameType

import uvicorn

logger = logging.getLogger(__name__)

_listeners: list[tuple[asyncio.AbstractEventLoop, Callable[[], None]]] = []


def on_shutdown_signal(callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback`` on the running loop when the server is told to stop; returns an undo."""
    entry = (asyncio.get_running_loop(), callback)
    _listeners.append(entry)
    return lambda: _listeners.remove(entry) if entry in _listeners else None


def notify_shutdown() -> None:
    for loop, callback in list(_listeners):
        loop.call_soon_threadsafe(callback)


class ChatbotServer(uvicorn.Server):
    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.should_exit:
            notify_shutdown()
        super().handle_exit(sig, frame)
