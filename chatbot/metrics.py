"""Process metrics in the Prometheus format, one registry per runtime (``chatbot.runtime``).

Only per-turn events are recorded here, never per-token ones, so the hot path pays nothing.
Every metric is defined here; the gauges that read a part's size (running turns, replies
held, relay copies) get their function from the part that owns what they count.
"""

from __future__ import annotations

import asyncio
from functools import partial

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


def _running_tasks() -> int:
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:  # no running loop (scraped from a thread)
        return 0


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # Every metric goes into this runtime's registry, never the process-wide default.
        counter = partial(Counter, registry=self.registry)
        gauge = partial(Gauge, registry=self.registry)
        self.active_turns = gauge("chatbot_active_turns", "Turns (streams) in progress.")
        self.turns = counter("chatbot_turns", "Finished turns by outcome.", ["outcome"])
        self.first_delta = Histogram(
            "chatbot_first_delta_seconds",
            "Time from request to first delta.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.rejected = counter(
            "chatbot_rejected_requests", "Prompts refused before a turn started.", ["reason"]
        )
        self.upstream_retries = counter(
            "chatbot_upstream_retries",
            "Upstream calls tried again after a failure the user never saw, by call "
            "(classifier, reply) and reason (the failure's error code).",
            ["call", "reason"],
        )
        self.turns_saved_by_retry = counter(
            "chatbot_turns_saved_by_retry",
            "Turns whose model reply completed after at least one upstream retry in the turn.",
        )
        gauge("chatbot_asyncio_tasks", "Tasks on the event loop.").set_function(_running_tasks)
        self.live_turn_objects = gauge(
            "chatbot_live_turn_objects",
            "Turn objects not yet freed, finished or not (a handful may await the cycle "
            "collector; a steady climb is a leak).",
        )
        self.replies_kept = gauge(
            "chatbot_replies_kept",
            "Replies readable from memory: running, or finished within the retention window.",
        )
        self.relay_mirrors = gauge(
            "chatbot_relay_mirrors",
            "Replies of this process copied out for readers in other processes.",
        )
        self.relay_followed = gauge(
            "chatbot_relay_followed",
            "Replies of other processes this process is copying in for its readers.",
        )
